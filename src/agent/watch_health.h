// Whether the agent's watches of the API can be trusted now, for /readyz:
// pure bookkeeping (no threads, no I/O), kept under the agent's lock.
//
//   WatchHealth watches;
//   watches.Failed("Pod", "connection refused", now);   // a watch broke
//   watches.Failing();   // "the Pod watch is failing: connection refused"
//   watches.Succeeded("Pod", later);                      // listed, watching again, or an event came
//   watches.Failing();   // ""
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace netpol::agent {

class WatchHealth {
 public:
  using Clock = std::chrono::steady_clock;

  // The watch of `kind` listed, opened its stream again (the server
  // answered) or delivered an event.
  void Succeeded(const std::string& kind, Clock::time_point at);
  // It failed, saying `what`.
  void Failed(const std::string& kind, const std::string& what, Clock::time_point at);
  // Why a watch cannot be trusted ("the Pod watch is failing: ..."): the
  // first kind (by name) whose last failure came after its last success;
  // "" when none.
  std::string Failing() const;

 private:
  struct Kind {
    Clock::time_point last_problem, last_success;
    std::string problem;
  };
  std::map<std::string, Kind> kinds_;
};

}  // namespace netpol::agent
