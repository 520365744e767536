// The agent's loop supervision on its own, with a fake clock: which loops
// /healthz calls stuck, and what RunLoop makes of a loop that ends or throws.
#include "agent/loop_health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace netpol::agent {
namespace {

using Clock = LoopHealth::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A clock the test moves by hand.
struct FakeClock {
  Clock::time_point now = Clock::time_point(seconds(1000));
  LoopHealth::Now Function() {
    return [this] { return now; };
  }
};

TEST(LoopHealthTest, LoopsAreLiveUntilSilentForLongerThanTheirBound) {
  FakeClock clock;
  LoopHealth health(clock.Function());
  const LoopHealth::Id program = health.Add("programming loop", seconds(10));
  EXPECT_TRUE(health.Stuck().empty()) << "added counts as a beat";
  clock.now += seconds(10);
  EXPECT_TRUE(health.Stuck().empty()) << "silent exactly for its bound is still live";
  clock.now += milliseconds(1);
  ASSERT_EQ(health.Stuck(),
            std::vector<std::string>{"the programming loop made no progress for 10.0 s (bound 10.0 s)"});
  health.Beat(program);
  EXPECT_TRUE(health.Stuck().empty()) << "a beat makes it live again";
  clock.now += seconds(25);
  EXPECT_EQ(health.Stuck(),
            std::vector<std::string>{"the programming loop made no progress for 25.0 s (bound 10.0 s)"});
}

TEST(LoopHealthTest, EachLoopHasItsOwnBoundAndItsOwnBeats) {
  FakeClock clock;
  LoopHealth health(clock.Function());
  const LoopHealth::Id program = health.Add("programming loop", seconds(10));
  const LoopHealth::Id watch = health.Add("pods watch", seconds(400));
  const LoopHealth::Id cni = health.Add("CNI socket", seconds(10));
  clock.now += seconds(8);
  health.Beat(program);
  health.Beat(cni);
  clock.now += seconds(8);  // program and cni: 8 s silent; watch: 16 s, within its 400
  health.Beat(cni);
  EXPECT_TRUE(health.Stuck().empty());
  clock.now += seconds(3);  // program: 11 s silent
  EXPECT_EQ(health.Stuck(),
            std::vector<std::string>{"the programming loop made no progress for 11.0 s (bound 10.0 s)"});
  clock.now += seconds(400);
  health.Beat(program);
  const std::vector<std::string> stuck = health.Stuck();
  ASSERT_EQ(stuck.size(), 2u);
  EXPECT_EQ(stuck[0], "the pods watch made no progress for 419.0 s (bound 400.0 s)");
  EXPECT_EQ(stuck[1], "the CNI socket made no progress for 403.0 s (bound 10.0 s)");
  health.Beat(watch);
  health.Beat(cni);
  EXPECT_TRUE(health.Stuck().empty());
}

TEST(RunLoopTest, ALoopThatReturnsWhenHaltedEndsWithoutAnError) {
  std::atomic<bool> halt{false};
  EXPECT_FALSE(RunLoop(
                   "programming loop", [&] { halt = true; }, halt)
                   .has_value());
}

TEST(RunLoopTest, ALoopThatReturnsOnItsOwnIsFatal) {
  const std::atomic<bool> halt{false};
  const std::optional<Error> ended = RunLoop(
      "CNI socket", [] {}, halt);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->code(), ErrorCode::kInternal);
  EXPECT_EQ(ended->message(), "the CNI socket ended unexpectedly");
}

TEST(RunLoopTest, ALoopThatThrowsIsFatalWithTheExceptionsMessage) {
  std::atomic<bool> halt{false};
  const std::optional<Error> thrown = RunLoop(
      "dataplane change watch", [] { throw std::runtime_error("netlink socket gone"); }, halt);
  ASSERT_TRUE(thrown.has_value());
  EXPECT_EQ(thrown->code(), ErrorCode::kInternal);
  EXPECT_EQ(thrown->message(), "the dataplane change watch failed: netlink socket gone");
  // Thrown while stopping is still a failure, not a clean end.
  const std::optional<Error> odd = RunLoop(
      "metrics server",
      [&] {
        halt = true;
        throw 42;
      },
      halt);
  ASSERT_TRUE(odd.has_value());
  EXPECT_EQ(odd->message(), "the metrics server failed: an exception that is not a std::exception");
}

}  // namespace
}  // namespace netpol::agent
