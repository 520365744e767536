// The agent's bookkeeping of others' changes to its rules and of its watches'
// health, on their own, with times made up by the test.
#include "agent/drift_watch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/watch_health.h"

namespace netpol::agent {
namespace {

using Clock = DriftWatch::Clock;
using std::chrono::seconds;

const Clock::time_point kT0 = Clock::time_point(seconds(1000));

TEST(DriftWatchTest, NotesGatherUntilTakenAndKeepTheFirstTime) {
  DriftWatch drift;
  EXPECT_FALSE(drift.noticed());
  drift.Notice({"delete chain inet netpol in_np_g1_v4"}, kT0);
  drift.Notice({"delete set inet netpol in_np_g1_v4_exact", "x"}, kT0 + seconds(1));
  EXPECT_TRUE(drift.noticed());
  const DriftWatch::Notes notes = drift.Take();
  EXPECT_TRUE(notes.notified);
  EXPECT_EQ(notes.at, kT0) << "timed from the first notification";
  EXPECT_EQ(notes.what, (std::vector<std::string>{"delete chain inet netpol in_np_g1_v4",
                                                  "delete set inet netpol in_np_g1_v4_exact", "x"}));
  EXPECT_FALSE(drift.noticed());
  const DriftWatch::Notes none = drift.Take();
  EXPECT_FALSE(none.notified) << "a periodic check: nothing was said";
  EXPECT_TRUE(none.what.empty());
  // The next notification starts a new time.
  drift.Notice({"y"}, kT0 + seconds(5));
  EXPECT_EQ(drift.Take().at, kT0 + seconds(5));
}

TEST(DriftWatchTest, ARepairIsTimedFromItsFirstSignAndEndsOnce) {
  DriftWatch drift;
  EXPECT_FALSE(drift.Repaired().has_value()) << "no repair: a program lands as any other";
  drift.RepairFrom(kT0);
  drift.RepairFrom(kT0 + seconds(2));  // a failed retry under the same drift
  EXPECT_TRUE(drift.repairing());
  EXPECT_EQ(drift.Repaired(), kT0);
  EXPECT_FALSE(drift.repairing());
  EXPECT_FALSE(drift.Repaired().has_value()) << "counted once";
}

TEST(WatchHealthTest, AWatchIsFailingFromItsErrorUntilItNextSucceeds) {
  WatchHealth watches;
  EXPECT_EQ(watches.Failing(), "");
  watches.Succeeded("Pod", kT0);
  watches.Failed("Pod", "connection refused", kT0 + seconds(1));
  EXPECT_EQ(watches.Failing(), "the Pod watch is failing: connection refused");
  watches.Failed("Namespace", "410 Gone", kT0 + seconds(1));
  EXPECT_EQ(watches.Failing(), "the Namespace watch is failing: 410 Gone") << "the first kind by name";
  watches.Succeeded("Namespace", kT0 + seconds(2));
  EXPECT_EQ(watches.Failing(), "the Pod watch is failing: connection refused");
  watches.Succeeded("Pod", kT0 + seconds(3));
  EXPECT_EQ(watches.Failing(), "");
  // A success older than the failure does not clear it.
  watches.Failed("Pod", "timeout", kT0 + seconds(10));
  watches.Succeeded("Pod", kT0 + seconds(9));
  EXPECT_EQ(watches.Failing(), "the Pod watch is failing: timeout");
}

}  // namespace
}  // namespace netpol::agent
