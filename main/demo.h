// `mephisto demo`: runs the built-in smoke scenario (sim/scenario/smoke.h) and prints its verdict and run
// hash.
#pragma once

#include <cstdint>

namespace mephisto::cli {

struct DemoOptions {
  uint64_t seed = 1;
  int64_t records = 20000;
  bool check_determinism = false;  // run twice and compare run hashes
};

// Returns the process exit code: 0 when nothing acknowledged was lost (and hashes matched, if checked).
int run_demo(const DemoOptions& options);

}  // namespace mephisto::cli
