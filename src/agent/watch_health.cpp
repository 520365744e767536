#include "agent/watch_health.h"

namespace netpol::agent {

void WatchHealth::Succeeded(const std::string& kind, Clock::time_point at) {
  kinds_[kind].last_success = at;
}

void WatchHealth::Failed(const std::string& kind, const std::string& what, Clock::time_point at) {
  Kind& k = kinds_[kind];
  k.last_problem = at;
  k.problem = what;
}

std::string WatchHealth::Failing() const {
  for (const auto& [kind, k] : kinds_) {
    if (k.last_problem > k.last_success) return "the " + kind + " watch is failing: " + k.problem;
  }
  return "";
}

}  // namespace netpol::agent
