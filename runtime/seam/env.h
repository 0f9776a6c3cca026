// Env: everything the runtime may use from the world, passed explicitly (as leveldb's Options::env), never through
// globals. Two simulations can run in one process, and a test can wrap any single member to inject a fault.
#pragma once

#include "runtime/seam/broker_client.h"
#include "runtime/seam/clock.h"
#include "runtime/seam/planted.h"
#include "runtime/seam/random.h"
#include "runtime/seam/recorder.h"

namespace mephisto {

namespace store {
class StoreFactory;
}  // namespace store

// Non-owning: whoever builds the Env (the simulator's process, or the production main) owns the parts and keeps
// them alive for as long as the Env is used.
struct Env {
  Clock* clock = nullptr;
  Scheduler* scheduler = nullptr;
  Random* random = nullptr;
  BrokerClient* broker = nullptr;
  // Where table partitions are kept (runtime/store). Null: the App opens the factory its settings name
  // (AppSettings::store, data_dir) itself. The simulator passes one per worker process, so a crash can keep or
  // lose the worker's "disk".
  store::StoreFactory* stores = nullptr;
  // A deliberate defect to switch on (runtime/seam/planted.h), so the simulator can prove its checkers catch
  // it. Only the simulator's harness sets it; App::run refuses it unless `broker` is the simulator's.
  PlantedBug planted = PlantedBug::kNone;
  // Told what the worker decides (recorder.h): `mephisto worker --record`, `mephisto sim --trace`, and the
  // replayer, which checks the replayed worker against a trace through it. Null: nothing is recorded.
  Recorder* recorder = nullptr;
};

}  // namespace mephisto
