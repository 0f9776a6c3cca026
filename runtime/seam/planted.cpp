#include "runtime/seam/planted.h"

#include <array>

namespace mephisto {
namespace {

// In enum order (planted_bugs() promises it), so planted_bug_name can index by the enum's value.
constexpr std::array<PlantedBugInfo, 7> kBugs{{
    {PlantedBug::kOffsetsOutsideTransaction, "offsets-outside-transaction",
     "exactly_once: input offsets are committed by the consumer before the transaction commits"},
    {PlantedBug::kNoFencing, "no-fencing",
     "exactly_once: a fresh transactional id per worker and offsets sent without the group's metadata"},
    {PlantedBug::kChangelogReadUncommitted, "changelog-read-uncommitted",
     "table restores and standbys read changelogs read_uncommitted"},
    {PlantedBug::kTableWriteNotRolledBack, "table-write-not-rolled-back",
     "table writes go straight to the store, so an abort leaves them in place"},
    {PlantedBug::kAckBeforeProcessing, "ack-before-processing",
     "an input is acked when it is handed to its agent, before it is processed"},
    {PlantedBug::kCommitBeforeDelivery, "commit-before-delivery",
     "at_least_once: inputs are acked without waiting for the delivery of what they sent"},
    {PlantedBug::kRevokedCommitKept, "revoked-commit-kept",
     "a revoked partition's pending offset is kept and committed later, over the new owner's"},
}};

constexpr bool in_enum_order() {
  for (size_t i = 0; i < kBugs.size(); ++i) {
    if (static_cast<size_t>(kBugs[i].bug) != i + 1) return false;
  }
  return true;
}
static_assert(in_enum_order(), "kBugs lists every planted bug once, in enum order");

}  // namespace

std::span<const PlantedBugInfo> planted_bugs() {
  return kBugs;
}

std::optional<PlantedBug> planted_bug_named(std::string_view name) {
  if (name == "none") return PlantedBug::kNone;
  for (const PlantedBugInfo& info : kBugs) {
    if (info.name == name) return info.bug;
  }
  return std::nullopt;
}

std::string_view planted_bug_name(PlantedBug bug) {
  for (const PlantedBugInfo& info : kBugs) {
    if (info.bug == bug) return info.name;
  }
  return "none";
}

}  // namespace mephisto
