// The agent's flow log: connections the dataplane logged (denied ones; allowed
// ones when asked for), attributed to pods and policies by the engine,
// rate-limited, kept in a ring that GET /flows and `netpol flows` read.
//
//   FlowLog log;
//   if (log.Admit(Clock::now())) log.Add(AttributeFlow(engine, packet, "node-1", Timestamp()));
//   FlowLog::Read read = log.Since(0, {.ns = "shop"});   // read.text: JSON lines
//   log.WaitNewer(read.last, 500ms, stop);                 // then Since(read.last, ...)
//
// Thread-safe: the NFLOG reader adds while HTTP handlers read. A token bucket
// keeps a flood of denials from costing more than `per_second` lines a second
// (what it drops is counted, and not attributed: that needs the agent's lock).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "dataplane/backend.h"
#include "policy/engine.h"

namespace netpol::agent {

// Which lines a reader wants; empty fields match anything. `pod` is a name or
// "namespace/name"; a line matches when either end does.
struct FlowFilter {
  std::string ns{};
  std::string pod{};
  std::string verdict{};  // "denied", "allowed"
  bool Matches(const nlohmann::json& line) const;
};

class FlowLog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FlowLog(size_t ring = 2000, double per_second = 200);

  // The token bucket: whether one more line may be written at `now`; if not,
  // it is counted as suppressed.
  bool Admit(Clock::time_point now);
  void Add(nlohmann::json line);

  struct Read {
    std::string text;   // matching lines, one JSON object each, newline-terminated
    uint64_t last = 0;  // the newest line's sequence number: where the next read starts
  };
  // The lines after sequence number `after` that match.
  Read Since(uint64_t after, const FlowFilter& filter) const;
  // Until a line newer than `seen` is added, `timeout` passes or `stop`.
  void WaitNewer(uint64_t seen, std::chrono::milliseconds timeout, const std::atomic<bool>& stop);
  // Stops waiters now (with `stop` set).
  void WakeAll() { added_.notify_all(); }

  uint64_t lines() const;       // written since the start
  uint64_t suppressed() const;  // left out by the rate limit

 private:
  const size_t ring_;
  const double per_second_;
  mutable std::mutex mu_;
  std::condition_variable added_;
  std::deque<std::pair<uint64_t, nlohmann::json>> lines_;  // (sequence, line), newest last
  uint64_t sequence_ = 0;
  uint64_t suppressed_ = 0;
  double tokens_;
  Clock::time_point refilled_;
};

// The flow log line of a logged connection, judged by the policies in force
// now (the log names no rule). Denied: the direction that denied it and the
// policies isolating the pod there (none of whose rules allow it). Allowed:
// the policy and rule that allow it. A ClusterNetworkPolicy tier: the tier,
// and the rule that decides it now.
nlohmann::json AttributeFlow(const policy::Engine& engine, const dataplane::LoggedPacket& packet,
                             const std::string& node, const std::string& time);

}  // namespace netpol::agent
