// What the nft backend reads back from its own rules: the meaning of their log
// prefixes, and which counter sets count what (the agent knows neither).
#include <gtest/gtest.h>

#include <string>

#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {
namespace {

LoggedPacket WithPrefix(const std::string& prefix) {
  LoggedPacket p;
  p.prefix = prefix;
  ReadLogPrefix(p);
  return p;
}

TEST(LogPrefixTest, ThePrefixesTheRulesWriteSayDirectionVerdictAndDecider) {
  const LoggedPacket deny = WithPrefix("netpol ingress deny ");
  EXPECT_EQ(deny.direction, policy::Direction::kIngress);
  EXPECT_FALSE(deny.allowed);
  EXPECT_EQ(deny.decider, Decider::kNetworkPolicy);
  const LoggedPacket allow = WithPrefix("netpol egress allow ");
  EXPECT_EQ(allow.direction, policy::Direction::kEgress);
  EXPECT_TRUE(allow.allowed);
  const LoggedPacket admin = WithPrefix("netpol egress admin deny ");
  EXPECT_EQ(admin.decider, Decider::kAdminTier);
  EXPECT_FALSE(admin.allowed);
  const LoggedPacket baseline = WithPrefix("netpol ingress baseline allow ");
  EXPECT_EQ(baseline.decider, Decider::kBaselineTier);
  EXPECT_TRUE(baseline.allowed);
}

// Every prefix the rendered ruleset writes is one ReadLogPrefix knows.
TEST(LogPrefixTest, EveryPrefixInTheRulesetIsRead) {
  const NftRuleset ruleset = RenderRuleset({}, {.log_group = 100, .log_allowed = true});
  const std::string text = TableDefinition(ruleset);
  int prefixes = 0;
  for (size_t at = text.find("log prefix \""); at != std::string::npos;
       at = text.find("log prefix \"", at + 1)) {
    const size_t start = at + 12;
    const std::string prefix = text.substr(start, text.find('"', start) - start);
    const LoggedPacket p = WithPrefix(prefix);
    const bool tier =
        prefix.find(" admin ") != std::string::npos || prefix.find(" baseline ") != std::string::npos;
    EXPECT_EQ(p.decider != Decider::kNetworkPolicy, tier) << prefix;
    EXPECT_EQ(p.allowed, prefix.find(" allow ") != std::string::npos) << prefix;
    EXPECT_EQ(p.direction == policy::Direction::kIngress, prefix.starts_with("netpol ingress")) << prefix;
    ++prefixes;
  }
  EXPECT_GE(prefixes, 4 * 2 * 2) << "deny and allow, two tiers, two directions, two families";
}

Element Pod(const char* address) {
  return Element::Of({Field::Address(*IpAddress::Parse(address))});
}

TEST(CounterSetsTest, ElementsBecomeCountsOfTheirPods) {
  int verdict_sets = 0;
  int tier_maps = 0;
  for (const CounterSet& set : CounterSets()) {
    (set.decider == Decider::kNetworkPolicy ? verdict_sets : tier_maps)++;
  }
  EXPECT_EQ(verdict_sets, 8);  // {in,eg}_{denied,allowed}_{v4,v6}
  EXPECT_EQ(tier_maps, 16);    // {in,eg}_{admin,base}_{accepted,denied}_{v4,v6}

  const CounterSet denied{"in_denied_v4", policy::Direction::kIngress, Decider::kNetworkPolicy, false};
  const ConnectionCount c = CountOf(denied, Pod("198.18.1.5"), 7);
  EXPECT_EQ(c.pod, IpAddress::Parse("198.18.1.5").value());
  EXPECT_EQ(c.connections, 7u);
  EXPECT_FALSE(c.allowed);
  EXPECT_FALSE(CountOf(denied, Element::Of({Field::Proto(6)}), 1).pod.has_value());

  // The tiers count per pod in the verdict chains' sets, one set per verdict.
  int tier_accepted = 0;
  for (const CounterSet& set : CounterSets()) {
    if (set.decider == Decider::kNetworkPolicy) continue;
    EXPECT_EQ(set.allowed, set.name.find("_accepted_") != std::string::npos) << set.name;
    EXPECT_EQ(set.decider == Decider::kAdminTier, set.name.find("_admin_") != std::string::npos) << set.name;
    tier_accepted += set.allowed ? 1 : 0;
  }
  EXPECT_EQ(tier_accepted, 8);
  const CounterSet admin{"eg_admin_denied_v6", policy::Direction::kEgress, Decider::kAdminTier, false};
  const ConnectionCount deny = CountOf(admin, Pod("2001:2::5"), 2);
  EXPECT_EQ(deny.pod, IpAddress::Parse("2001:2::5").value());
  EXPECT_FALSE(deny.allowed);
  EXPECT_EQ(deny.decider, Decider::kAdminTier);
  EXPECT_EQ(deny.direction, policy::Direction::kEgress);
  EXPECT_TRUE(CountOf({"eg_admin_accepted_v6", policy::Direction::kEgress, Decider::kAdminTier, true},
                      Pod("2001:2::5"), 2)
                  .allowed);
}

}  // namespace
}  // namespace netpol::dataplane::nft
