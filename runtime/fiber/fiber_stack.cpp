#include "runtime/fiber/fiber_stack.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEPHISTO_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MEPHISTO_FIBER_ASAN 1
#endif
// MEPHISTO_SANITIZE_ADDRESS comes from the build (the asan preset); the compiler check above keeps a
// UBSan-only build from referencing ASan's fiber hooks, which only the ASan runtime provides.
#if defined(MEPHISTO_SANITIZE_ADDRESS) && defined(MEPHISTO_FIBER_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define MEPHISTO_FIBER_ANNOTATE 1
#endif

namespace mephisto::fibers {
namespace {

namespace ctx = boost::context;

// ASan tracks "the current stack"; every switch between stacks must be announced, or it reports false
// stack-buffer-overflows when an exception unwinds a fiber stack (and loses fake-stack frames).
#if defined(MEPHISTO_FIBER_ANNOTATE)
void asan_start_switch(void** fake_stack_save, const void* bottom, size_t size) {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
void asan_finish_switch(void* fake_stack_save, const void** bottom_old, size_t* size_old) {
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
}
void asan_unpoison(const void* bottom, size_t size) {
  ASAN_UNPOISON_MEMORY_REGION(bottom, size);
}
#else
void asan_start_switch(void**, const void*, size_t) {}
void asan_finish_switch(void*, const void**, size_t*) {}
void asan_unpoison(const void*, size_t) {}
#endif

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Stacks

// Reserved up front: deallocate() is noexcept and must not allocate.
StackPool::StackPool(size_t max_idle_stacks) : max_idle_stacks_(max_idle_stacks) {
  idle_.reserve(max_idle_stacks_);
}

StackPool::~StackPool() {
  for (auto& stack : idle_) allocator_.deallocate(stack);
}

ctx::stack_context StackPool::allocate() {
  if (idle_.empty()) return allocator_.allocate();
  const ctx::stack_context stack = idle_.back();
  idle_.pop_back();
  return stack;
}

void StackPool::deallocate(ctx::stack_context& stack) noexcept {
  if (idle_.size() >= max_idle_stacks_) {
    allocator_.deallocate(stack);
    return;
  }
  // A fiber that ended by a context jump leaves ASan redzones of its last frames behind; the next user of
  // this stack must start clean.
  asan_unpoison(static_cast<const char*>(stack.sp) - stack.size, stack.size);
  idle_.push_back(stack);
}

ctx::stack_context PooledStack::allocate() {
  ctx::stack_context stack = pool->allocate();
  bounds->stack_bottom = static_cast<const char*>(stack.sp) - stack.size;
  bounds->stack_size = stack.size;
  return stack;
}

// ---------------------------------------------------------------------------------------------------------------
// Switches

void switch_in(ctx::fiber& context, const StackBounds& bounds) {
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, bounds.stack_bottom, bounds.stack_size);
  context = std::move(context).resume();
  asan_finish_switch(fake_stack, nullptr, nullptr);
}

void destroy(ctx::fiber& context, const StackBounds& bounds) {
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, bounds.stack_bottom, bounds.stack_size);
  { const ctx::fiber doomed = std::move(context); }
  asan_finish_switch(fake_stack, nullptr, nullptr);
}

void fiber_entered(StackBounds& bounds) {
  asan_finish_switch(nullptr, &bounds.from_bottom, &bounds.from_size);
}

void switch_out(ctx::fiber& caller, StackBounds& bounds, std::exception_ptr& unwind) {
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, bounds.from_bottom, bounds.from_size);
  try {
    caller = std::move(caller).resume();
  } catch (const ctx::detail::forced_unwind&) {
    // The scheduler is destroying this fiber: we are back on its stack, now unwinding it to the first frame.
    asan_finish_switch(fake_stack, &bounds.from_bottom, &bounds.from_size);
    unwind = std::current_exception();
    throw;
  }
  asan_finish_switch(fake_stack, &bounds.from_bottom, &bounds.from_size);
}

void fiber_leaving(const StackBounds& bounds) {
  // nullptr: the fiber's fake stack can be freed.
  asan_start_switch(nullptr, bounds.from_bottom, bounds.from_size);
}

}  // namespace mephisto::fibers
