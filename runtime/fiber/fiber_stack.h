// The mechanics of running code on Boost.Context fibers that the simulator's executor (sim/executor.cpp) and
// the production event loop (runtime/loop) share: the pool of fiber stacks, the StackAllocator that records a
// stack's bounds, and the stack switches, each announced to AddressSanitizer. Scheduling (which fiber runs
// when, parking, waking, errors) stays with each scheduler; nothing here decides an order.
//
// A scheduler keeps, per fiber, a boost::context::fiber for the suspended fiber, one for the scheduler while
// the fiber runs (its "caller"), a StackBounds, and the std::exception_ptr of a forced_unwind in flight. The
// sequence, with the side each call runs on:
//
//   scheduler: context = create(pool, bounds, entry)    // no code runs yet; the stack comes from the pool
//   scheduler: switch_in(context, bounds)               // runs the fiber until it suspends or ends
//   fiber:     entry(caller) { fiber_entered(bounds); ...; fiber_leaving(bounds); return caller; }
//   fiber:     switch_out(caller, bounds, unwind)       // back to the scheduler; returns when switched in
//   scheduler: destroy(context, bounds)                 // unwinds a suspended fiber's stack (forced_unwind)
//
// All calls for one pool happen on one thread. Without AddressSanitizer the annotations compile to nothing.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <boost/context/stack_context.hpp>

namespace mephisto::fibers {

// Each fiber runs on a fixed 256 KiB stack with a guard page below it (protected_fixedsize_stack): an
// overflow faults at once instead of corrupting a neighbour. Pages are committed lazily, so many parked
// fibers cost address space but only the memory they touch. Deep recursion inside a fiber is a bug; big data
// goes on the heap.
inline constexpr size_t kStackBytes = 256 * 1024;

// What ASan must be told at each switch: this fiber's own stack (recorded when the stack is allocated), and
// the stack that last switched into it (recorded by every switch in), which is where it switches back to.
struct StackBounds {
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
  const void* from_bottom = nullptr;
  size_t from_size = 0;
};

// Idle fiber stacks for reuse, because mmap + mprotect + munmap per fiber costs more than a short fiber does.
// Beyond `max_idle_stacks` idle stacks, returned stacks go back to the OS, so a burst of fibers does not pin
// its memory forever. Must outlive every fiber whose stack it gave out (fibers return their stacks as they
// end or are unwound).
class StackPool {
 public:
  explicit StackPool(size_t max_idle_stacks);
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool();

  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;

 private:
  size_t max_idle_stacks_;
  boost::context::protected_fixedsize_stack allocator_{kStackBytes};
  std::vector<boost::context::stack_context> idle_;
};

// The StackAllocator Boost.Context keeps in each fiber: stacks come from the pool, and their bounds are
// recorded in the fiber's StackBounds for the ASan annotations.
struct PooledStack {
  StackPool* pool;
  StackBounds* bounds;
  boost::context::stack_context allocate();
  // Called once the fiber has ended or been unwound, on the scheduler's stack (`bounds` may be gone by then).
  void deallocate(boost::context::stack_context& stack) noexcept { pool->deallocate(stack); }
};

// Scheduler side: a fiber that will run `entry(caller)` on a stack from `pool`, recording the stack's bounds
// in `bounds` (which must stay put while the fiber lives). Nothing runs until the first switch_in().
template <typename Entry>
boost::context::fiber create(StackPool& pool, StackBounds& bounds, Entry&& entry) {
  return boost::context::fiber(std::allocator_arg, PooledStack{&pool, &bounds}, std::forward<Entry>(entry));
}

// Scheduler side: runs the suspended fiber `context` until it switches out or ends; `context` then holds the
// fiber again (empty once it ended).
void switch_in(boost::context::fiber& context, const StackBounds& bounds);

// Scheduler side: destroys the suspended fiber `context`. Boost.Context throws forced_unwind at the fiber's
// suspension point (inside switch_out); this returns once the fiber's stack is unwound and back in the pool.
// The path Boost.Context itself takes, so ASan sees one well-annotated switch pair.
void destroy(boost::context::fiber& context, const StackBounds& bounds);

// Fiber side: the first call of the entry function, once it has stored its caller.
void fiber_entered(StackBounds& bounds);

// Fiber side: switches back to `caller` (the scheduler) and returns when switched in again. If the fiber is
// destroyed meanwhile, stores the forced_unwind in `unwind` (to rethrow if user code swallows it) and
// rethrows it, which unwinds the fiber's stack.
void switch_out(boost::context::fiber& caller, StackBounds& bounds, std::exception_ptr& unwind);

// Fiber side: the last call before leaving the fiber's stack for good, by returning the caller from the entry
// function or by letting a forced_unwind escape it. The fiber's ASan fake stack can then be freed.
void fiber_leaving(const StackBounds& bounds);

}  // namespace mephisto::fibers
