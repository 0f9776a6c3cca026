// The event log's hash is how runs are compared ("same seed, same hash"); it must see every field of every
// event, in order, and be the same on every platform.
#include "sim/event_log.h"

#include <gtest/gtest.h>

namespace mephisto::sim {
namespace {

uint64_t hash_of(const std::vector<Event>& events) {
  EventLog log;
  for (const auto& e : events) log.record(e.time_ms, e.actor, e.kind, e.detail);
  return log.hash();
}

const std::vector<Event> kBase = {
    {0, "worker-1", "start", "incarnation=1 disk=kept"},
    {5, "broker-1", "append", "orders-0 offset=0"},
    {5, "worker-1", "fetch", "orders-0 offset=0 records=1"},
    {12, "fault", "crash", "worker-1"},
};

TEST(EventLog, EmptyLogHashIsTheFnvBasis) {
  EventLog log;
  EXPECT_EQ(log.hash(), 0xcbf29ce484222325ULL);
  EXPECT_EQ(log.count(), 0u);
  EXPECT_TRUE(log.events().empty());
}

TEST(EventLog, GoldenHash) {
  // Pins the encoding (time as 8 little-endian bytes, then each field length-prefixed, FNV-1a 64). If this
  // changes, recorded hashes of every scenario change with it.
  EXPECT_EQ(hash_of(kBase), 0x751ee6d28317c232ULL);
}

TEST(EventLog, KeepsEventsInOrder) {
  EventLog log;
  for (const auto& e : kBase) log.record(e.time_ms, e.actor, e.kind, e.detail);
  ASSERT_EQ(log.events().size(), kBase.size());
  EXPECT_EQ(log.count(), kBase.size());
  EXPECT_EQ(log.dropped(), 0u);
  for (size_t i = 0; i < kBase.size(); ++i) {
    EXPECT_EQ(log.events()[i].time_ms, kBase[i].time_ms);
    EXPECT_EQ(log.events()[i].actor, kBase[i].actor);
    EXPECT_EQ(log.events()[i].kind, kBase[i].kind);
    EXPECT_EQ(log.events()[i].detail, kBase[i].detail);
  }
}

TEST(EventLog, CapBoundsMemoryButNotTheHash) {
  EventLog full, capped(2), none(0);
  for (const auto& e : kBase) {
    full.record(e.time_ms, e.actor, e.kind, e.detail);
    capped.record(e.time_ms, e.actor, e.kind, e.detail);
    none.record(e.time_ms, e.actor, e.kind, e.detail);
  }
  EXPECT_EQ(capped.events().size(), 2u);
  EXPECT_EQ(capped.events()[0].kind, "start");  // the first events are kept
  EXPECT_EQ(capped.dropped(), 2u);
  EXPECT_EQ(none.events().size(), 0u);
  EXPECT_EQ(none.count(), kBase.size());
  EXPECT_EQ(full.hash(), capped.hash());
  EXPECT_EQ(full.hash(), none.hash());
}

TEST(EventLog, SameEventsSameHash) {
  EXPECT_EQ(hash_of(kBase), hash_of(kBase));
}

TEST(EventLog, ChangingAnyFieldOfOneEventChangesTheHash) {
  const uint64_t base = hash_of(kBase);
  for (size_t i = 0; i < kBase.size(); ++i) {
    for (int field = 0; field < 4; ++field) {
      auto changed = kBase;
      Event& e = changed[i];
      switch (field) {
        case 0:
          e.time_ms += 1;
          break;
        case 1:
          e.actor += "x";
          break;
        case 2:
          e.kind += "x";
          break;
        case 3:
          e.detail += "x";
          break;
      }
      EXPECT_NE(hash_of(changed), base) << "event " << i << " field " << field;
    }
  }
}

TEST(EventLog, OrderAndFieldBoundariesMatter) {
  auto swapped = kBase;
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(hash_of(swapped), hash_of(kBase));

  EXPECT_NE(hash_of({{1, "ab", "c", ""}}), hash_of({{1, "a", "bc", ""}}));
  EXPECT_NE(hash_of({{1, "a", "", "b"}}), hash_of({{1, "a", "b", ""}}));
  // A dropped or added event changes it too.
  auto shorter = kBase;
  shorter.pop_back();
  EXPECT_NE(hash_of(shorter), hash_of(kBase));
  EXPECT_NE(hash_of({{0, "", "", ""}}), hash_of({}));
}

}  // namespace
}  // namespace mephisto::sim
