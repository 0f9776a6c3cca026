#include "sim/network.h"

#include <cassert>

namespace mephisto::sim {

std::string node_name(NetNode node) {
  return is_broker_node(node) ? "broker-" + std::to_string(node) : "process-" + std::to_string(node - kProcessNodeBase);
}

Network::Network(Executor& executor, LinkConfig config) : executor_(executor), config_(config) {
  assert(config_.latency_min_ms >= 0 && config_.latency_min_ms <= config_.latency_max_ms);
}

Network::Link& Network::link(NetNode from, NetNode to) { return links_[{from, to}]; }

bool Network::is_cut(NetNode from, NetNode to) const {
  if (isolated_.count(from) > 0 || isolated_.count(to) > 0) return true;
  const auto it = links_.find({from, to});
  return it != links_.end() && it->second.cut;
}

bool Network::send(NetNode from, NetNode to, std::function<void()> deliver) {
  ++sent_;
  if (is_cut(from, to)) {
    ++lost_;
    return false;
  }
  Link& l = link(from, to);
  if (l.clogged) {
    l.held.push_back(std::move(deliver));
    return true;
  }
  schedule(from, to, l, std::move(deliver));
  return true;
}

void Network::schedule(NetNode from, NetNode to, Link& l, std::function<void()> deliver) {
  const int64_t latency_ms =
      executor_.random().between(config_.latency_min_ms, config_.latency_max_ms) + l.extra_latency_ms;
  // FIFO per directed link: a message never overtakes an earlier one on the same connection.
  const int64_t arrival_ms = std::max(executor_.now_ms() + latency_ms, l.last_arrival_ms);
  l.last_arrival_ms = arrival_ms;
  const ProcessId owner = is_broker_node(to) ? kWorld : static_cast<ProcessId>(to - kProcessNodeBase);
  executor_.at(arrival_ms, owner, [this, from, to, epoch = l.epoch, deliver = std::move(deliver)] {
    // A link cut while the message was in flight loses it, like a connection reset.
    if (is_cut(from, to) || link(from, to).epoch != epoch) {
      ++lost_;
      return;
    }
    deliver();
  });
}

void Network::cut(NetNode from, NetNode to) {
  Link& l = link(from, to);
  l.cut = true;
  ++l.epoch;
  executor_.log().record(executor_.now_ms(), "network", "cut", node_name(from) + "->" + node_name(to));
}

void Network::heal(NetNode from, NetNode to) {
  link(from, to).cut = false;
  executor_.log().record(executor_.now_ms(), "network", "heal", node_name(from) + "->" + node_name(to));
}

void Network::isolate(NetNode node) {
  isolated_.insert(node);
  for (auto& [key, l] : links_) {
    if (key.first == node || key.second == node) ++l.epoch;
  }
  executor_.log().record(executor_.now_ms(), "network", "isolate", node_name(node));
}

void Network::heal_all() {
  isolated_.clear();
  for (auto& [key, l] : links_) {
    l.cut = false;
    l.extra_latency_ms = 0;
    if (l.clogged) unclog(key.first, key.second);
  }
  executor_.log().record(executor_.now_ms(), "network", "heal-all", "");
}

void Network::slow(NetNode from, NetNode to, int64_t extra_ms) {
  assert(extra_ms >= 0);
  link(from, to).extra_latency_ms = extra_ms;
  executor_.log().record(executor_.now_ms(), "network", "slow",
                         node_name(from) + "->" + node_name(to) + " +" + std::to_string(extra_ms) + "ms");
}

void Network::clog(NetNode from, NetNode to) {
  link(from, to).clogged = true;
  executor_.log().record(executor_.now_ms(), "network", "clog", node_name(from) + "->" + node_name(to));
}

void Network::unclog(NetNode from, NetNode to) {
  Link& l = link(from, to);
  l.clogged = false;
  auto held = std::move(l.held);
  l.held.clear();
  for (auto& deliver : held) schedule(from, to, l, std::move(deliver));
  executor_.log().record(executor_.now_ms(), "network", "unclog", node_name(from) + "->" + node_name(to));
}

}  // namespace mephisto::sim
