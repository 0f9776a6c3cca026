// Internals shared by the event loop's files (not part of the public API): the invariant check. The fiber
// stacks and the AddressSanitizer fiber-switch hooks live in runtime/fiber (shared with the simulator).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mephisto::loop_internal {

// A broken invariant stops the process with its location and context: continuing would corrupt fiber stacks
// or lose wake-ups, which is far harder to diagnose later. Not compiled out (the build never defines NDEBUG).
[[noreturn]] inline void check_failed(const char* file, int line, const char* condition,
                                      const std::string& context) {
  std::fprintf(stderr, "mephisto loop: invariant broken at %s:%d: %s\n  %s\n", file, line, condition,
               context.c_str());
  std::fflush(stderr);
  std::abort();
}

// `context` is an expression yielding a std::string; it is evaluated only when the check fails.
#define MEPHISTO_LOOP_CHECK(condition, context)                                           \
  do {                                                                                    \
    if (!(condition)) [[unlikely]]                                                        \
      ::mephisto::loop_internal::check_failed(__FILE__, __LINE__, #condition, (context)); \
  } while (false)

}  // namespace mephisto::loop_internal
