// Planted bugs: deliberate defects in the runtime that the simulator can switch on, one at a time, to prove
// that its checkers find real bugs (`mephisto sim <scenario> --planted NAME`; sim/scenario/README.md).
//
// A planted bug is chosen through Env::planted, which only the simulator's harness sets. App::run refuses an
// Env with a planted bug unless its broker client is the simulator's (BrokerClient::simulated()): no worker
// on real Kafka can run one, whatever its settings or environment say.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mephisto {

enum class PlantedBug : uint8_t {
  kNone = 0,
  // exactly_once: input offsets are committed by the consumer (outside the transaction) as soon as the events
  // are done, before the transaction commits; an abort or a crash then loses the events' outputs and table
  // writes.
  kOffsetsOutsideTransaction,
  // exactly_once: each worker incarnation uses a fresh transactional id and sends its offsets without the
  // group's metadata, so nothing fences a zombie (KIP-447's generation check and the epoch bump never apply).
  kNoFencing,
  // Tables restore and standbys read changelogs read_uncommitted: aborted table writes come back.
  kChangelogReadUncommitted,
  // Table writes go straight to the store, not to the overlay that a committed transaction flushes: an abort
  // (or a delivery failure) leaves them in place.
  kTableWriteNotRolledBack,
  // An input is acked (its offset becomes committable) when it is handed to its agent, before it is
  // processed.
  kAckBeforeProcessing,
  // at_least_once: offsets are committed without waiting for the delivery reports of the records sent while
  // processing them (Faust's behaviour): a crash loses outputs whose inputs are committed.
  kCommitBeforeDelivery,
  // When a partition is revoked, its pending (not yet committed) offset is kept and committed later by the
  // worker that lost it, over the new owner's commits: the group's offset goes backwards.
  kRevokedCommitKept,
};

struct PlantedBugInfo {
  PlantedBug bug;
  std::string_view name;  // as `--planted` takes it, e.g. "offsets-outside-transaction"
  std::string_view what;  // one line
};

// Every planted bug (kNone excluded), in enum order.
[[nodiscard]] std::span<const PlantedBugInfo> planted_bugs();
[[nodiscard]] std::optional<PlantedBug> planted_bug_named(std::string_view name);
[[nodiscard]] std::string_view planted_bug_name(PlantedBug bug);  // "none" for kNone

}  // namespace mephisto
