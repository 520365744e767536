// Whether the agent's loops are alive and making progress. Two different
// failures, answered differently:
//   * a loop that ends or throws while the agent runs is fatal: RunLoop says
//     what ended it, and the agent stops and exits non-zero with that reason;
//   * a loop that is alive but stuck (blocked on a lock, a kernel call, a
//     peer) beats no more: LoopHealth::Stuck names it once it has been silent
//     for longer than its bound, and /healthz fails with that (the kubelet
//     restarts the agent; the rules in force stay in force meanwhile).
//
//   LoopHealth health;   // LoopHealth(fake_now) in tests
//   const LoopHealth::Id program = health.Add("programming loop", std::chrono::seconds(10));
//   // ... the loop, each turn:       health.Beat(program);
//   // ... /healthz:                  std::vector<std::string> stuck = health.Stuck();
//   std::optional<Error> ended = RunLoop("programming loop", [&] { ProgramLoop(halt); }, halt);
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace netpol::agent {

class LoopHealth {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Id = size_t;

  explicit LoopHealth(Now now = [] { return Clock::now(); }) : now_(std::move(now)) {}

  // A loop that must beat at least every `bound`; it counts as having beaten
  // now. Add every loop before any of them runs: Add is not safe against
  // Beat or Stuck on other threads (Beat and Stuck are, against each other).
  Id Add(std::string name, Clock::duration bound);

  // The loop made progress now. Lock-free: loops call it every turn.
  void Beat(Id loop) {
    loops_[loop].last.store(now_().time_since_epoch().count(), std::memory_order_relaxed);
  }

  // The loops silent for longer than their bound, one line each ("the
  // programming loop made no progress for 12.3 s (bound 10.0 s)"); empty when
  // every loop is live.
  [[nodiscard]] std::vector<std::string> Stuck() const;

 private:
  struct Loop {
    Loop(std::string n, Clock::duration b, Clock::rep at) : name(std::move(n)), bound(b), last(at) {}
    std::string name;
    Clock::duration bound;
    std::atomic<Clock::rep> last;  // the last beat, as Clock's count since its epoch
  };
  Now now_;
  std::deque<Loop> loops_;  // a deque: a Loop (atomic) never moves
};

// Runs a loop's body on the calling thread until it returns. The error when
// what ended it was not `halt` (the agent stopping): it returned on its own,
// or it threw (the exception's message). nullopt when it returned after halt.
[[nodiscard]] std::optional<Error> RunLoop(const std::string& name, const std::function<void()>& body,
                                           const std::atomic<bool>& halt);

}  // namespace netpol::agent
