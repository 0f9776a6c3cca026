// AppStats: a worker's counters (Faust's sensors: messages in/out, commits, rebalances, errors). Read them
// with App::stats(); the CLI prints them at shutdown and the simulator's tests assert on them.
#pragma once

#include <cstdint>

namespace mephisto {

struct AppStats {
  int64_t records_received = 0;   // records handed to agent buffers (a record for two agents counts once)
  int64_t events_acked = 0;       // records fully processed (every holder done)
  int64_t records_sent = 0;       // sends queued (topics and channels)
  int64_t records_delivered = 0;  // delivery reports with success
  int64_t send_failures = 0;      // delivery reports with an error (each stops the worker)
  int64_t commits = 0;            // successful offset commits
  int64_t commit_failures = 0;    // rejected or timed-out commits (retried at the next opportunity)
  int64_t rebalances = 0;         // assignments received
  int64_t partitions_revoked = 0;
  int64_t partitions_lost = 0;
  int64_t position_resets = 0;  // positions moved back without a rebalance (out of range: log truncated)
  int64_t records_skipped = 0;        // undecodable records skipped (bad_record_policy=skip)
  int64_t records_dead_lettered = 0;  // undecodable records sent to {id}-dead-letters
  int64_t agent_errors = 0;           // exceptions thrown by agent actors (each event acked, not retried)
  int64_t agent_restarts = 0;         // actor restarts by supervisors
  int64_t timer_errors = 0;           // exceptions thrown by timers, tasks and forwarders
  int64_t timer_runs = 0;             // timer and task bodies run
  int64_t asks = 0;                   // ask() calls
  int64_t ask_timeouts = 0;
  int64_t replies_sent = 0;
  int64_t flow_control_pauses = 0;  // times fetching was paused because an agent buffer was full
  int64_t transactions_committed = 0;  // exactly_once: transactions committed (each also counts in commits)
  int64_t transactions_aborted = 0;    // exactly_once: transactions aborted (the worker then rejoins)
  int64_t table_restores = 0;          // table partitions restored and made active
  int64_t table_records_restored = 0;  // changelog records applied by restores, standbys and global tables
  int64_t table_last_restore_ms = 0;   // how long the last restore took (assignment to active)
};

}  // namespace mephisto
