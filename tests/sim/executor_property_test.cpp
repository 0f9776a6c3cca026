// Properties of the executor over generated programs: whatever mix of spawns, parks, wakes, yields, timers,
// crashes, restarts and clock jumps, the same seed gives the same run (event-log hash), and the run is sane.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "sim/executor.h"

namespace mephisto::sim {
namespace {

// One step of a fiber's script.
struct Op {
  enum Kind { kPark, kParkForever, kYield, kWakeSibling, kSpawn, kTimer, kWaitUntil };
  Kind kind = kPark;
  int64_t amount = 0;  // delay_ms, or which sibling
};

// A fault at a global time.
struct Fault {
  enum Kind { kCrash, kRestart, kRestartWiped, kSkew };
  Kind kind = kCrash;
  int64_t at_ms = 0;
  size_t process = 0;
  int64_t offset_ms = 0;
};

struct Program {
  std::vector<std::vector<std::vector<Op>>> processes;  // process -> fiber -> script
  std::vector<Fault> faults;
};

rc::Gen<Op> gen_op() {
  return rc::gen::build<Op>(
      rc::gen::set(&Op::kind, rc::gen::element(Op::kPark, Op::kParkForever, Op::kYield, Op::kWakeSibling,
                                               Op::kSpawn, Op::kTimer, Op::kWaitUntil)),
      rc::gen::set(&Op::amount, rc::gen::inRange<int64_t>(0, 50)));
}

rc::Gen<Fault> gen_fault() {
  return rc::gen::build<Fault>(
      rc::gen::set(&Fault::kind,
                   rc::gen::element(Fault::kCrash, Fault::kRestart, Fault::kRestartWiped, Fault::kSkew)),
      rc::gen::set(&Fault::at_ms, rc::gen::inRange<int64_t>(0, 300)),
      rc::gen::set(&Fault::process, rc::gen::inRange<size_t>(0, 4)),
      rc::gen::set(&Fault::offset_ms, rc::gen::inRange<int64_t>(-100, 100)));
}

rc::Gen<Program> gen_program() {
  return rc::gen::exec([] {
    Program program;
    const auto processes = *rc::gen::inRange<size_t>(1, 4);
    for (size_t p = 0; p < processes; ++p) {
      program.processes.push_back(
          *rc::gen::resize(12, rc::gen::nonEmpty(rc::gen::container<std::vector<std::vector<Op>>>(
                                   rc::gen::container<std::vector<Op>>(gen_op())))));
    }
    program.faults = *rc::gen::container<std::vector<Fault>>(gen_fault());
    return program;
  });
}

struct RunResult {
  uint64_t hash = 0;
  uint64_t count = 0;
  uint64_t steps = 0;
  int64_t end_ms = 0;
  int violations = 0;  // contract breaches seen from inside the fibers
};

// Interprets one fiber's script. Everything it does derives from the program, the executor's streams and the
// process's stream, so the run depends only on (program, seed).
void run_script(Executor& ex, ProcessContext& ctx, std::shared_ptr<std::vector<FiberId>> siblings,
                const std::vector<Op>& script, int depth, int* violations) {
  Scheduler& s = ctx.scheduler();
  for (size_t i = 0; i < script.size(); ++i) {
    const Op& op = script[i];
    const std::string step = std::to_string(i);
    const int64_t global_before_ms = ex.now_ms();
    switch (op.kind) {
      case Op::kPark: {
        const int64_t deadline_ms = ctx.clock().now_ms() + op.amount;
        const bool woke = s.park_until(deadline_ms);
        // A park ends at its deadline on the process clock, or earlier only if woken.
        if (!woke && ctx.clock().now_ms() < deadline_ms) ++*violations;
        ex.log().record(ex.now_ms(), ctx.name(), woke ? "woke" : "deadline", step);
        break;
      }
      case Op::kParkForever:
        // Only worth it if someone may wake us: otherwise the rest of the script is dead, which is fine too.
        (void)s.park_until(INT64_MAX);
        ex.log().record(ex.now_ms(), ctx.name(), "woke-forever", step);
        break;
      case Op::kYield:
        s.yield();
        ex.log().record(ex.now_ms(), ctx.name(), "yielded", step);
        break;
      case Op::kWakeSibling:
        if (!siblings->empty()) s.wake((*siblings)[static_cast<size_t>(op.amount) % siblings->size()]);
        break;
      case Op::kSpawn:
        if (depth < 2) {
          // The child runs the rest of this script (a shrinking-friendly way to get nested spawns).
          std::vector<Op> rest(script.begin() + static_cast<std::ptrdiff_t>(i) + 1, script.end());
          const FiberId child = s.spawn("child", [&ex, &ctx, siblings, rest, depth, violations] {
            run_script(ex, ctx, siblings, rest, depth + 1, violations);
          });
          siblings->push_back(child);
        }
        break;
      case Op::kTimer:
        ex.after(op.amount, ctx.id(),
                 [&ex, &ctx, step] { ex.log().record(ex.now_ms(), ctx.name(), "timer", step); });
        break;
      case Op::kWaitUntil: {
        const int64_t deadline_ms = ctx.clock().now_ms() + op.amount;
        s.wait_until_ms(deadline_ms);
        if (ctx.clock().now_ms() < deadline_ms) ++*violations;
        ex.log().record(ex.now_ms(), ctx.name(), "waited", step);
        break;
      }
    }
    // Global virtual time never goes back, and a fiber only runs while its process is up.
    if (ex.now_ms() < global_before_ms || !ex.running(ctx.id())) ++*violations;
    if (ex.current_process() != ctx.id()) ++*violations;
  }
}

RunResult run(const Program& program, uint64_t seed) {
  EventLog log(/*max_kept_events=*/0);
  int violations = 0;
  Executor ex(seed, &log);
  std::vector<ProcessId> ids;
  for (size_t p = 0; p < program.processes.size(); ++p) {
    const auto* fibers = &program.processes[p];
    ids.push_back(
        ex.add_process("worker-" + std::to_string(p), [&ex, &violations, fibers](ProcessContext& ctx) {
          auto siblings = std::make_shared<std::vector<FiberId>>();
          for (const auto& script : *fibers) {
            siblings->push_back(ctx.scheduler().spawn("script", [&ex, &ctx, &violations, siblings, &script] {
              run_script(ex, ctx, siblings, script, 0, &violations);
            }));
          }
          ctx.keep(siblings);
          ex.log().record(ex.now_ms(), ctx.name(), "draw", std::to_string(ctx.random().below(1000)));
        }));
  }
  for (ProcessId id : ids) ex.start(id);
  for (const Fault& fault : program.faults) {
    const ProcessId id = ids[fault.process % ids.size()];
    ex.at(fault.at_ms, kWorld, [&ex, fault, id] {
      switch (fault.kind) {
        case Fault::kCrash:
          ex.crash(id);
          break;
        case Fault::kRestart:
          if (!ex.running(id)) ex.start(id);
          break;
        case Fault::kRestartWiped:
          if (!ex.running(id)) ex.start(id, /*wipe_disk=*/true);
          break;
        case Fault::kSkew:
          ex.set_clock_offset(id, fault.offset_ms);
          break;
      }
    });
  }
  ex.run_until(10'000);
  return {log.hash(), log.count(), ex.steps(), ex.now_ms(), violations};
}

RC_GTEST_PROP(ExecutorProperty, SameProgramAndSeedGiveTheSameRun, ()) {
  const Program program = *gen_program();
  const auto seed = *rc::gen::arbitrary<uint64_t>();
  const RunResult first = run(program, seed);
  const RunResult second = run(program, seed);
  RC_ASSERT(first.hash == second.hash);
  RC_ASSERT(first.count == second.count);
  RC_ASSERT(first.steps == second.steps);
  RC_ASSERT(first.end_ms == 10'000);
  RC_ASSERT(first.violations == 0);
}

}  // namespace
}  // namespace mephisto::sim
