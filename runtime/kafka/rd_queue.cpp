#include "runtime/kafka/rd_queue.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mephisto::rd {

QueueWatch::QueueWatch(EventLoop& loop, rd_kafka_queue_t* queue, std::function<void()> on_ready)
    : loop_(loop), queue_(queue) {
  std::array<int, 2> fds{};
  if (pipe2(fds.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
    // Out of file descriptors: nothing sensible can continue (a client without wake-ups would hang silently).
    std::fprintf(stderr, "mephisto: pipe2 for a Kafka queue wake-up failed: %s\n", std::strerror(errno));
    std::abort();
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  const int read_fd = read_fd_;
  watch_ = loop_.watch_readable(read_fd_, [read_fd, on_ready = std::move(on_ready)] {
    std::array<char, 256> sink{};
    while (read(read_fd, sink.data(), sink.size()) > 0) {
    }
    on_ready();
  });
  // After the watch exists, so the first byte is never missed.
  static const char kWakeByte = 1;
  rd_kafka_queue_io_event_enable(queue_, write_fd_, &kWakeByte, 1);
}

QueueWatch::~QueueWatch() {
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  loop_.unwatch(watch_);
  close(read_fd_);
  close(write_fd_);
}

}  // namespace mephisto::rd
