// Helpers shared by the table benchmarks (bench_table_pipeline, bench_table_failover), on top of
// bench_common.h: preloading an input topic, an App's log lines, stopping an App after a failure, medians.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.h"
#include "runtime/app/app.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/broker_client.h"

namespace mephisto::bench {

inline double process_cpu_s() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Produces `records` records (keys "k0".."k{keys-1}" round robin, values of value_bytes bytes) into `topic`,
// waiting for every delivery report. Runs on a fiber of the loop; other fibers (workers) keep running.
inline void preload(EventLoop& loop, BrokerClient& client, const std::string& topic, int64_t records,
                    int64_t keys, int32_t value_bytes) {
  const double start = wall_s();
  produce_records(loop, client, "bench-table-preload", topic, records, keys, value_bytes);
  std::printf("preloaded %lld records of %d bytes (%lld keys) into %s in %.1f s\n",
              static_cast<long long>(records), value_bytes, static_cast<long long>(keys), topic.c_str(),
              wall_s() - start);
  std::fflush(stdout);
}

// The App's log lines go to stderr, so stdout holds only the figures.
inline void log_to_stderr(App& app, const std::string& prefix) {
  app.set_log_sink([prefix](LogLevel level, const std::string& line) {
    std::fprintf(stderr, "%s[%s] %s\n", prefix.c_str(), log_level_name(level), line.c_str());
  });
}

// Before an App that may still run is destroyed (a failed measurement): stop it, or end the process (its
// fibers would resume on a destroyed App).
inline void stop_before_destroy(EventLoop& loop, App& app, const std::optional<Status>& result) {
  if (result.has_value()) return;
  loop.spawn("stop-on-failure", [&app] { app.stop(); });
  const RealClock clock;
  if (!loop.run([&] { return result.has_value(); }, clock.now_ms() + 60'000)) {
    std::fprintf(stderr, "error: a worker did not stop within 60 s after a failure; exiting\n");
    std::fflush(stdout);
    std::_Exit(1);
  }
}

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace mephisto::bench
