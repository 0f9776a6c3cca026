// Network: the simulated links between nodes (brokers and client processes). A message sent on a link arrives
// after a latency drawn from the world's PRNG, in FIFO order per directed link (as over one TCP connection), unless
// the link is cut (a network partition, possibly one-way) or clogged (held back until unclogged, then delivered).
// Messages on a link cut while they were in flight are lost, as with a broken connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <set>
#include <utility>
#include <vector>

#include "sim/executor.h"

namespace mephisto::sim {

// Brokers are nodes 1..999 (their broker id); a client process is node kProcessNodeBase + its ProcessId.
using NetNode = uint32_t;
inline constexpr NetNode kProcessNodeBase = 1000;
inline NetNode broker_node(int32_t broker_id) { return static_cast<NetNode>(broker_id); }
inline NetNode process_node(ProcessId process) { return kProcessNodeBase + process; }
inline bool is_broker_node(NetNode node) { return node < kProcessNodeBase; }
std::string node_name(NetNode node);

struct LinkConfig {
  int64_t latency_min_ms = 1;
  int64_t latency_max_ms = 3;
};

class Network {
 public:
  Network(Executor& executor, LinkConfig config);

  // Delivers `deliver` at `to` after the link's latency. If `to` is a process, the delivery is owned by that
  // process (dropped if it crashes first). Returns false if the link is cut now (the message is lost at once).
  bool send(NetNode from, NetNode to, std::function<void()> deliver);

  // --- faults (logged)
  // Cuts the link from -> to (one-way); call twice for a symmetric partition.
  void cut(NetNode from, NetNode to);
  void heal(NetNode from, NetNode to);
  // Cuts every link between `node` and every other node, both ways, until heal_all().
  void isolate(NetNode node);
  void heal_all();
  // Adds extra_ms to every message on from -> to until unclogged (a slow link).
  void slow(NetNode from, NetNode to, int64_t extra_ms);
  // Holds every message on from -> to until unclog(); held messages then arrive in order.
  void clog(NetNode from, NetNode to);
  void unclog(NetNode from, NetNode to);

  [[nodiscard]] bool is_cut(NetNode from, NetNode to) const;
  [[nodiscard]] uint64_t messages_sent() const { return sent_; }
  [[nodiscard]] uint64_t messages_lost() const { return lost_; }

 private:
  struct Link {
    bool cut = false;
    bool clogged = false;
    int64_t extra_latency_ms = 0;
    // The arrival time of the latest message on this link: keeps arrivals FIFO.
    int64_t last_arrival_ms = 0;
    // Bumped whenever the link is cut: an in-flight message from an older epoch is lost on arrival.
    uint64_t epoch = 0;
    std::vector<std::function<void()>> held;  // while clogged
  };
  Link& link(NetNode from, NetNode to);
  void schedule(NetNode from, NetNode to, Link& l, std::function<void()> deliver);

  Executor& executor_;
  LinkConfig config_;
  std::map<std::pair<NetNode, NetNode>, Link> links_;
  std::set<NetNode> isolated_;
  uint64_t sent_ = 0;
  uint64_t lost_ = 0;
};

}  // namespace mephisto::sim
