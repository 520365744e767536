// What the agent knows of others' changes to its dataplane rules, and the
// repair under way: pure bookkeeping (no threads, no I/O), kept under the
// agent's lock.
//
//   DriftWatch drift;
//   drift.Notice({"delete table inet netpol"}, now);   // the change feed said so
//   DriftWatch::Notes notes = drift.Take();             // before reading the rules back
//   drift.RepairFrom(notes.notified ? notes.at : now);  // the read-back found a difference
//   ...                                                 // a program lands:
//   if (std::optional<Clock::time_point> since = drift.Repaired()) log(now - *since);
//
// A repair is timed from the first sign of it (the notification, else the
// read-back that found it), so the "restored in" a log line gives is what
// traffic saw.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace netpol::agent {

class DriftWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // The change feed reported others' changes (`notes` say what) at `at`.
  void Notice(const std::vector<std::string>& notes, Clock::time_point at);
  // Something was noticed since the last Take.
  bool noticed() const { return noticed_; }

  struct Notes {
    std::vector<std::string> what;  // what the feed said, in order
    bool notified = false;          // the feed said anything (else a periodic check)
    Clock::time_point at;           // when it first did (notified only)
  };
  // What was noticed since the last Take, cleared.
  Notes Take();

  // A difference was found (or a program failed under others' changes): a
  // repair runs from `since`, unless one already runs from earlier.
  void RepairFrom(Clock::time_point since);
  bool repairing() const { return repairing_since_.has_value(); }
  // A program is in force: the repair it ended began then (nullopt when
  // there was none), and none runs now.
  std::optional<Clock::time_point> Repaired();

 private:
  std::vector<std::string> notes_;
  bool noticed_ = false;
  Clock::time_point noticed_at_;
  std::optional<Clock::time_point> repairing_since_;
};

}  // namespace netpol::agent
