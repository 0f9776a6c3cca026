#include "sim/event_log.h"

#include "runtime/seam/random.h"

namespace mephisto::sim {
namespace {

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

// Folds an integer as 8 little-endian bytes, whatever the host's byte order, so the hash is the same
// everywhere.
uint64_t fold_u64(uint64_t hash, uint64_t value) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return stable_hash(std::string_view(bytes, sizeof(bytes)), hash);
}

// Length-prefixed, so that field boundaries are part of the hash: ("ab", "c") and ("a", "bc") differ.
uint64_t fold_field(uint64_t hash, std::string_view field) {
  return stable_hash(field, fold_u64(hash, field.size()));
}

}  // namespace

EventLog::EventLog(size_t max_kept_events) : max_kept_events_(max_kept_events), hash_(kFnvBasis) {}

void EventLog::record(int64_t time_ms, std::string_view actor, std::string_view kind,
                      std::string_view detail) {
  uint64_t hash = fold_u64(hash_, static_cast<uint64_t>(time_ms));
  hash = fold_field(hash, actor);
  hash = fold_field(hash, kind);
  hash = fold_field(hash, detail);
  hash_ = hash;
  ++count_;
  if (events_.size() < max_kept_events_) {
    events_.push_back(Event{time_ms, std::string(actor), std::string(kind), std::string(detail)});
  }
}

}  // namespace mephisto::sim
