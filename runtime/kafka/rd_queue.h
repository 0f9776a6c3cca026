// QueueWatch: turns a librdkafka queue's "became non-empty" into a callback on the EventLoop's thread, so
// fibers waiting for records, delivery reports or rebalances park in the loop instead of blocking in
// librdkafka.
//
// librdkafka writes one byte to a pipe (rd_kafka_queue_io_event_enable) when an op is enqueued on an empty or
// already-served queue; it writes again only after the queue was served (polled), so the handler must poll
// the queue — never only drain the pipe — and anyone who leaves ops in the queue must poll again without
// waiting for a new wake-up.
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>

#include "runtime/loop/event_loop.h"

namespace mephisto::rd {

class QueueWatch {
 public:
  // Starts watching `queue` (not owned; must outlive this object). on_ready runs on the loop thread, outside
  // any fiber, after the pipe was drained.
  QueueWatch(EventLoop& loop, rd_kafka_queue_t* queue, std::function<void()> on_ready);
  // Stops the io events and the watch, closes the pipe.
  ~QueueWatch();
  QueueWatch(const QueueWatch&) = delete;
  QueueWatch& operator=(const QueueWatch&) = delete;

 private:
  EventLoop& loop_;
  rd_kafka_queue_t* queue_;
  int read_fd_ = -1;
  int write_fd_ = -1;
  WatchId watch_ = 0;
};

}  // namespace mephisto::rd
