// Drift on the real kernel (root: a network namespace of the test's own):
// the nftables backend's change feed reports what others do to its table and
// nothing of its own commits, Verify says what differs, and the next Apply
// restores it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/nft/nft_backend.h"
#include "e2e/lab.h"

namespace netpol::dataplane {
namespace {

using namespace std::chrono_literals;

policy::LocalPod IsolatedPod(const std::string& ip, const std::string& interface) {
  policy::LocalPod pod;
  pod.ips = {*IpAddress::Parse(ip)};
  pod.interface = interface;
  pod.ingress.isolated = true;
  return pod;
}

// Everything the feed reports within `within`, joined by newlines.
std::string Drain(ChangeFeed& feed, std::chrono::milliseconds within) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<std::vector<std::string>> next = feed.Next(50ms);
    if (!next) return "error: " + next.error().message();
    for (const std::string& line : *next) out += line + "\n";
  }
  return out;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

TEST(TableMonitorTest, ReportsOthersChangesAndVerifyAndApplyRestoreThem) {
  NETPOL_REQUIRE_E2E();
  const std::string ns = "npmon" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("ip netns add " + ns).c_str()), 0);
  struct Cleanup {
    std::string ns;
    ~Cleanup() { (void)std::system(("ip netns del " + ns).c_str()); }
  } cleanup{ns};
  const auto nft = [&](const std::string& command) {
    return std::system(("ip netns exec " + ns + " nft " + command).c_str()) == 0;
  };
  Result<std::unique_ptr<nft::NftBackend>> created =
      nft::NftBackend::Create({.netns = ns, .nft = {}, .observe_at_create = false});
  ASSERT_TRUE(created.ok()) << created.error().message();
  nft::NftBackend& backend = **created;
  policy::NodeProgram program;
  program.pods["shop/a"] = IsolatedPod("198.18.251.1", "npa");
  ASSERT_TRUE(backend.Apply(program).ok());
  Result<std::unique_ptr<ChangeFeed>> feed = backend.WatchChanges();
  ASSERT_TRUE(feed.ok()) << feed.error().message();

  // Our own commits, incremental and whole, are not reported.
  policy::NodeProgram two = program;
  two.pods["shop/b"] = IsolatedPod("198.18.251.2", "npb");
  ASSERT_TRUE(backend.Apply(two).ok());
  ASSERT_TRUE(backend.Apply(program).ok());
  // A pod with allowances no group has: its group's chain is created and
  // deleted around the element batch (three transactions each way).
  policy::NodeProgram grouped = program;
  grouped.pods["shop/c"] = IsolatedPod("198.18.251.3", "npc");
  grouped.pods["shop/c"].ingress.allow.push_back(
      {std::nullopt, {{api::Protocol::kTCP, 80, 80}}, "shop/c-web"});
  Result<ApplyStats> in_steps = backend.Apply(grouped);
  ASSERT_TRUE(in_steps.ok()) << in_steps.error().message();
  EXPECT_TRUE(in_steps->batched);
  EXPECT_NE(in_steps->commands.find("chain in_np_g2_v4"), std::string::npos) << in_steps->commands;
  ASSERT_TRUE(backend.Apply(program).ok());
  EXPECT_EQ(Drain(**feed, 300ms), "");
  Result<std::vector<std::string>> verified = backend.Verify();
  ASSERT_TRUE(verified.ok()) << verified.error().message();
  EXPECT_TRUE(verified->empty()) << Joined(*verified);
  // The reference rules were built in a table of their own, gone again.
  EXPECT_FALSE(nft("list table inet netpol_reference >/dev/null 2>&1"));
  EXPECT_EQ(Drain(**feed, 200ms), "") << "the reference table is not the agent's";

  // Another table's changes are not ours to report.
  ASSERT_TRUE(nft("add table inet elsewhere"));
  EXPECT_EQ(Drain(**feed, 300ms), "");

  // An element deleted by someone else: reported, found, restored.
  ASSERT_TRUE(nft("delete element inet netpol in_isolated_v4 { 198.18.251.1 }"));
  const std::string noticed = Drain(**feed, 300ms);
  EXPECT_NE(noticed.find("1 element deleted (set in_isolated_v4) by nft"), std::string::npos) << noticed;
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(Joined(*verified), "set in_isolated_v4: 1 element(s) missing (198.18.251.1)\n");
  Result<ApplyStats> restored = backend.Apply(program);
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  EXPECT_EQ(restored->added, 1u);
  EXPECT_FALSE(restored->created);
  EXPECT_EQ(Drain(**feed, 200ms), "") << "the restoring commit is ours";
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->empty()) << Joined(*verified);

  // An element added by someone else goes again.
  ASSERT_TRUE(nft("add element inet netpol in_isolated_v4 { 198.18.251.9 }"));
  EXPECT_NE(Drain(**feed, 300ms).find("1 element added (set in_isolated_v4)"), std::string::npos);
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(Joined(*verified), "set in_isolated_v4: 1 element(s) netpol did not add\n");
  restored = backend.Apply(program);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->removed, 1u);

  // The next Apply replaces the table whole, and then nothing differs.
  const auto rebuilt_whole = [&] {
    const Result<ApplyStats> rebuilt = backend.Apply(program);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message();
    EXPECT_TRUE(rebuilt->created);
    const Result<std::vector<std::string>> clean = backend.Verify();
    ASSERT_TRUE(clean.ok());
    EXPECT_TRUE(clean->empty()) << Joined(*clean);
  };

  // A chain's rules flushed: the table is rebuilt whole.
  ASSERT_TRUE(nft("flush chain inet netpol input"));
  EXPECT_NE(Drain(**feed, 300ms).find("rules deleted (in chain input)"), std::string::npos);
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_NE(Joined(*verified).find("chain input has 0 rules"), std::string::npos) << Joined(*verified);
  rebuilt_whole();

  // A rule replaced (the same count, another meaning): only the notification
  // can tell; the table is rebuilt.
  ASSERT_TRUE(nft("replace rule inet netpol input handle $(ip netns exec " + ns +
                  " nft -a list chain inet netpol input | grep -o 'goto input_checked # handle [0-9]*' | "
                  "tail -1 | grep -o "
                  "'[0-9]*$') accept"));
  EXPECT_NE(Drain(**feed, 300ms).find("rule"), std::string::npos);
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_FALSE(verified->empty());
  rebuilt_whole();

  // The same with no change feed: the read-back alone compares rule
  // contents. A group's deny rule replaced by an accept (the count unchanged).
  feed->reset();
  ASSERT_TRUE(nft("replace rule inet netpol in_np_g1_v4 handle $(ip netns exec " + ns +
                  " nft -a list chain inet netpol in_np_g1_v4 | grep -o 'drop comment .* # handle [0-9]*' | "
                  "grep -o '[0-9]*$') accept"));
  verified = backend.Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_NE(Joined(*verified).find("chain in_np_g1_v4: rule 8 is not netpol's ("), std::string::npos)
      << Joined(*verified);
  rebuilt_whole();
  ASSERT_TRUE(backend.Remove().ok());
}

}  // namespace
}  // namespace netpol::dataplane
