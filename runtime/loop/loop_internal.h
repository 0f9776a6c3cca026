// Internals shared by the event loop's files (not part of the public API): the invariant check, the
// AddressSanitizer fiber-switch hooks, and the pool of fiber stacks.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/context/protected_fixedsize_stack.hpp>
#include <boost/context/stack_context.hpp>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEPHISTO_LOOP_ASAN_FIBERS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MEPHISTO_LOOP_ASAN_FIBERS 1
#endif
// MEPHISTO_SANITIZE_ADDRESS comes from the build (the asan preset); the compiler check above keeps a
// UBSan-only build from referencing ASan's fiber hooks, which only the ASan runtime provides.
#if defined(MEPHISTO_SANITIZE_ADDRESS) && defined(MEPHISTO_LOOP_ASAN_FIBERS)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define MEPHISTO_LOOP_ANNOTATE_FIBERS 1
#endif

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

// ---------------------------------------------------------------------------------------------------------------
// Sanitizer hooks: ASan tracks "the current stack"; every switch between stacks must be announced, or it
// reports false stack-buffer-overflows when an exception unwinds a fiber stack (and loses fake-stack frames).

#if defined(MEPHISTO_LOOP_ANNOTATE_FIBERS)
inline void asan_start_switch(void** fake_stack_save, const void* bottom, size_t size) {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
inline void asan_finish_switch(void* fake_stack_save, const void** bottom_old, size_t* size_old) {
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
}
inline void asan_unpoison(const void* bottom, size_t size) {
  ASAN_UNPOISON_MEMORY_REGION(bottom, size);
}
#else
inline void asan_start_switch(void**, const void*, size_t) {}
inline void asan_finish_switch(void*, const void**, size_t*) {}
inline void asan_unpoison(const void*, size_t) {}
#endif

// Each fiber runs on a fixed 256 KiB stack with a guard page below it (protected_fixedsize_stack): an
// overflow faults at once instead of corrupting a neighbour. Pages are committed lazily. Deep recursion in a
// fiber is a bug; anything big belongs on the heap.
inline constexpr size_t kFiberStackBytes = 256 * 1024;
// Stacks of finished fibers are kept for reuse, because mmap + mprotect + munmap per spawn costs more than a
// short fiber does. Beyond this many idle stacks (16 MiB, of which only touched pages are resident) they go
// back to the OS, so a burst of fibers does not pin its memory forever.
inline constexpr size_t kMaxIdleStacks = 64;

// Idle fiber stacks for reuse. Owned by the loop; must outlive every fiber (fibers return their stacks here
// as they end or are unwound). Loop thread only.
class StackPool {
 public:
  // Reserved up front: deallocate() is noexcept and must not allocate.
  StackPool() { idle_.reserve(kMaxIdleStacks); }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() {
    for (auto& stack : idle_) allocator_.deallocate(stack);
  }

  boost::context::stack_context allocate() {
    if (idle_.empty()) return allocator_.allocate();
    const boost::context::stack_context stack = idle_.back();
    idle_.pop_back();
    return stack;
  }

  void deallocate(boost::context::stack_context& stack) noexcept {
    if (idle_.size() >= kMaxIdleStacks) {
      allocator_.deallocate(stack);
      return;
    }
    // A fiber that ended by a context jump leaves ASan redzones of its last frames behind; the next user of
    // this stack must start clean.
    asan_unpoison(static_cast<const char*>(stack.sp) - stack.size, stack.size);
    idle_.push_back(stack);
  }

 private:
  boost::context::protected_fixedsize_stack allocator_{kFiberStackBytes};
  std::vector<boost::context::stack_context> idle_;
};

}  // namespace mephisto::loop_internal
