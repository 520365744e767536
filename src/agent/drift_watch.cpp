#include "agent/drift_watch.h"

#include <utility>

namespace netpol::agent {

void DriftWatch::Notice(const std::vector<std::string>& notes, Clock::time_point at) {
  if (!noticed_) noticed_at_ = at;
  noticed_ = true;
  notes_.insert(notes_.end(), notes.begin(), notes.end());
}

DriftWatch::Notes DriftWatch::Take() {
  Notes out{std::exchange(notes_, {}), noticed_, noticed_at_};
  noticed_ = false;
  return out;
}

void DriftWatch::RepairFrom(Clock::time_point since) {
  if (!repairing_since_) repairing_since_ = since;
}

std::optional<DriftWatch::Clock::time_point> DriftWatch::Repaired() {
  return std::exchange(repairing_since_, std::nullopt);
}

}  // namespace netpol::agent
