#include "main/seed_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace mephisto::cli {
namespace {

using json = nlohmann::json;
using sim::scenario::RunResult;
using sim::scenario::Verdict;
using sim::scenario::VerdictStatus;
using sim::scenario::Violation;

json to_json(const RunResult& r) {
  json verdicts = json::array();
  for (const Verdict& v : r.verdicts) {
    json example = v.examples.empty()
                       ? json()
                       : json{{"t", v.examples.front().time_ms}, {"text", v.examples.front().text}};
    verdicts.push_back({{"inv", static_cast<int>(v.invariant)},
                        {"status", static_cast<int>(v.status)},
                        {"count", v.count},
                        {"note", v.note},
                        {"example", example}});
  }
  return {{"scenario", r.scenario},    {"seed", r.seed},           {"hash", r.run_hash},
          {"planted", r.planted},      {"reproduce", r.reproduce}, {"passed", r.passed},
          {"verdicts", verdicts},      {"plan", r.fault_plan},     {"settled", r.settled_at_ms},
          {"healed", r.healed_at_ms},  {"end", r.end_ms},          {"acked", r.events_acked},
          {"failed", r.events_failed}, {"wall", r.wall_ms}};
}

RunResult from_json(const json& j) {
  RunResult r;
  r.scenario = j.at("scenario").get<std::string>();
  r.seed = j.at("seed").get<uint64_t>();
  r.run_hash = j.at("hash").get<uint64_t>();
  r.planted = j.at("planted").get<std::string>();
  r.reproduce = j.at("reproduce").get<std::string>();
  r.passed = j.at("passed").get<bool>();
  for (const json& v : j.at("verdicts")) {
    Verdict verdict;
    verdict.invariant = static_cast<sim::scenario::Invariant>(v.at("inv").get<int>());
    verdict.status = static_cast<VerdictStatus>(v.at("status").get<int>());
    verdict.count = v.at("count").get<int64_t>();
    verdict.note = v.at("note").get<std::string>();
    if (!v.at("example").is_null()) {
      verdict.examples.push_back(
          {v.at("example").at("t").get<int64_t>(), v.at("example").at("text").get<std::string>()});
    }
    r.verdicts.push_back(std::move(verdict));
  }
  r.fault_plan = j.at("plan").get<std::vector<std::string>>();
  r.settled_at_ms = j.at("settled").get<int64_t>();
  r.healed_at_ms = j.at("healed").get<int64_t>();
  r.end_ms = j.at("end").get<int64_t>();
  r.events_acked = j.at("acked").get<int64_t>();
  r.events_failed = j.at("failed").get<int64_t>();
  r.wall_ms = j.at("wall").get<int64_t>();
  return r;
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::string buffer;
  std::vector<uint64_t> pending;  // its seeds not yet reported, in order
};

// Forks a worker process for c.pending; it writes one JSON line per seed to its pipe, in order.
void spawn(Child& c, const std::function<SeedSummary(uint64_t)>& run_one) {
  std::fflush(nullptr);  // a child must not flush the parent's buffered output again
  int fds[2];
  if (::pipe(fds) != 0) {
    std::perror("mephisto sim: pipe");
    std::exit(1);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("mephisto sim: fork");
    std::exit(1);
  }
  if (pid == 0) {
    ::close(fds[0]);
    for (uint64_t seed : c.pending) write_all(fds[1], to_json(run_one(seed)).dump() + "\n");
    ::close(fds[1]);
    std::_Exit(0);  // no atexit handlers or static destructors of the parent's state
  }
  ::close(fds[1]);
  c.pid = pid;
  c.fd = fds[0];
  c.buffer.clear();
}

}  // namespace

SeedSummary run_timed(const sim::scenario::Scenario& scenario, const sim::scenario::RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  SeedSummary result = sim::scenario::run_scenario(scenario, options);
  result.wall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void run_seeds(const std::vector<uint64_t>& seeds, int jobs,
               const std::function<SeedSummary(uint64_t)>& run_one,
               const std::function<bool(const SeedSummary&)>& on_result) {
  if (jobs <= 1 || seeds.size() <= 1) {
    for (uint64_t seed : seeds) {
      if (!on_result(run_one(seed))) return;
    }
    return;
  }
  std::vector<Child> children(static_cast<size_t>(jobs));
  for (size_t j = 0; j < children.size(); ++j) {
    for (size_t k = j; k < seeds.size(); k += children.size()) children[j].pending.push_back(seeds[k]);
    spawn(children[j], run_one);
  }
  bool stop = false;
  size_t open = children.size();
  while (open > 0 && !stop) {
    std::vector<pollfd> polls;
    for (const Child& c : children) {
      if (c.fd >= 0) polls.push_back({c.fd, POLLIN, 0});
    }
    if (::poll(polls.data(), polls.size(), -1) < 0 && errno != EINTR) break;
    for (Child& c : children) {
      if (c.fd < 0 || stop) continue;
      const auto it = std::find_if(polls.begin(), polls.end(), [&](const pollfd& p) { return p.fd == c.fd; });
      if (it == polls.end() || it->revents == 0) continue;
      char chunk[65536];
      const ssize_t n = ::read(c.fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        c.buffer.append(chunk, static_cast<size_t>(n));
        for (size_t nl; !stop && (nl = c.buffer.find('\n')) != std::string::npos;) {
          const json line = json::parse(c.buffer.substr(0, nl), nullptr, false);
          c.buffer.erase(0, nl + 1);
          if (line.is_discarded() || c.pending.empty()) continue;
          c.pending.erase(c.pending.begin());
          stop = !on_result(from_json(line));
        }
        continue;
      }
      // End of the pipe: the child finished, or died. The seed it was running is a failure, not a gap; the
      // seeds after it go to a fresh child (a crash in one seed must not take its siblings down with it).
      ::close(c.fd);
      c.fd = -1;
      int status = 0;
      ::waitpid(c.pid, &status, 0);
      c.pid = -1;
      if (c.pending.empty()) {
        --open;
        continue;
      }
      SeedSummary died;
      died.seed = c.pending.front();
      died.passed = false;
      died.reproduce = "the worker process running this seed died (" +
                       std::string(WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                       : "exit " + std::to_string(WEXITSTATUS(status))) +
                       "); rerun it alone with --seed " + std::to_string(died.seed) + " to see why";
      c.pending.erase(c.pending.begin());
      stop = !on_result(died);
      if (c.pending.empty() || stop) {
        --open;
        continue;
      }
      spawn(c, run_one);
    }
  }
  for (Child& c : children) {
    if (c.pid > 0) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
    }
    if (c.fd >= 0) ::close(c.fd);
  }
}

}  // namespace mephisto::cli
