// Replaying recorded worker incarnations (runtime/trace) in the deterministic simulator: the same agents, fed
// the recorded inputs with the recorded batching, assignments and timer firings; their sends and table writes
// compared with the recorded ones (replay_session.h says how). Each incarnation replays on its own: what it
// depended on from outside (its store's contents at open included) is in its trace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/trace/trace_reader.h"
#include "sim/replay/replay_session.h"

namespace mephisto::replay {

struct IncarnationReport {
  std::string writer;  // TraceHeader::writer_name
  std::string worker_id;
  uint64_t incarnation = 0;
  uint64_t events = 0;           // recorded events
  uint64_t inputs_consumed = 0;  // of inputs_total
  uint64_t inputs_total = 0;
  uint64_t sends_matched = 0;  // of sends_recorded
  uint64_t sends_recorded = 0;
  uint64_t sends_beyond_tail = 0;  // made for inputs whose sends the (torn) recording lost
  bool truncated = false;          // the trace's tail was torn (the worker died writing)
  bool complete = false;           // the recorded worker stopped cleanly
  std::vector<Divergence> divergences;
  std::optional<Divergence> first_divergence;
  std::optional<std::string> fatal;  // the replay could not go on (another app, a hash-only trace, stuck)
  std::string worker_result;         // what the replayed run() returned
  int64_t virtual_ms = 0;            // virtual time the replay took
  std::vector<std::string> log;      // the replayed worker's log lines (last ones)
  [[nodiscard]] bool identical() const { return divergences.empty() && !fatal.has_value(); }
};

// Replays one incarnation with the app `definition` (the one named by its header). Errors: kInvalidArg when
// the trace has no payloads for its inputs (recorded with hashes only) or the header's settings do not apply.
Result<IncarnationReport> replay_incarnation(const trace::Incarnation& incarnation,
                                             const AppDefinition& definition, const ReplayOptions& options);

}  // namespace mephisto::replay
