#include "main/demo.h"

#include <chrono>
#include <cstdio>

#include "sim/scenario/smoke.h"

namespace mephisto::cli {

int run_demo(const DemoOptions& options) {
  std::printf(
      "Mephisto demo: 3 simulated brokers, topic 'orders' (6 partitions, RF 3, min ISR 2), %lld records,\n"
      "an idempotent producer and a consumer group of 3 workers (at-least-once commits)\n",
      static_cast<long long>(options.records));
  std::printf(
      "faults: worker-2 crashes at 3 s, broker 1 crashes at 6 s, broker 1 restarts at 12 s, worker-2 "
      "restarts at 15 s (virtual time)\n\n");
  const sim::SmokeOptions smoke{options.seed, options.records, true};
  const auto wall_start = std::chrono::steady_clock::now();
  const sim::SmokeOutcome a = sim::run_smoke(smoke);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::printf("  acknowledged sends      %lld (failed sends: %lld)\n", static_cast<long long>(a.acked),
              static_cast<long long>(a.send_failures));
  std::printf("  consumed (distinct)     %lld\n", static_cast<long long>(a.consumed_distinct));
  std::printf("  duplicates              %lld (allowed: at-least-once)\n",
              static_cast<long long>(a.deliveries - a.consumed_distinct));
  std::printf("  lost writes             %lld\n", static_cast<long long>(a.lost));
  std::printf("  virtual time            %.1f s, wall %.2f s, %llu events\n",
              static_cast<double>(a.virtual_ms) / 1000.0, wall_s, static_cast<unsigned long long>(a.events));
  std::printf("  run hash                %016llx (seed %llu)\n", static_cast<unsigned long long>(a.hash),
              static_cast<unsigned long long>(options.seed));
  bool ok = a.finished && a.lost == 0;
  if (options.check_determinism) {
    const sim::SmokeOutcome b = sim::run_smoke(smoke);
    const bool same = b.hash == a.hash;
    std::printf("  second run hash         %016llx: %s\n", static_cast<unsigned long long>(b.hash),
                same ? "identical (deterministic)" : "DIFFERENT: determinism is broken");
    ok = ok && same;
  }
  std::printf("\nverdict: %s\n", ok ? "PASS: every acknowledged record was consumed" : "FAIL");
  if (!ok)
    std::printf("reproduce: build/bin/mephisto demo --seed %llu --records %lld\n",
                static_cast<unsigned long long>(options.seed), static_cast<long long>(options.records));
  return ok ? 0 : 1;
}

}  // namespace mephisto::cli
