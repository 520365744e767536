// The ClusterNetworkPolicy tiers in the nftables layout: the decision maps'
// elements (golden), per-pod rendering equal to the whole on random tiered
// clusters, and map elements read back from a listing as they were written.
//
//   NETPOL_UPDATE_GOLDEN=1 build/release/tests/dataplane_test --gtest_filter='RulesetTiers*'
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/load.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/nft/ruleset.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/element_text.h"
#include "testutil/generator.h"
#include "testutil/golden.h"

namespace netpol::dataplane::nft {
namespace {

// prod/db (ingress: an Admin Deny from dev on 5432, a Pass for monitoring, an
// Accept for the rest of the cluster's pods; a NetworkPolicy for monitoring);
// dev/client (egress: a Baseline Deny to 198.19.0.0/16, every protocol).
policy::NodeProgram TieredProgram() {
  const std::string yaml = R"(apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: m, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.2.1, podIPs: [{ip: 198.18.2.1}, {ip: "2001:2::21"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: prom, namespace: monitoring, labels: {app: prom}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.3.1}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard-prod}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {env: prod}}}
  ingress:
  - {name: no-dev-pg, action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}], protocols: [{destinationNamedPort: pg}]}
  - {name: monitoring-to-np, action: Pass, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}
  - {name: cluster, action: Accept, from: [{namespaces: {}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: no-infra}
spec:
  tier: Baseline
  priority: 50
  subject: {namespaces: {matchLabels: {env: dev}}}
  egress:
  - {name: infra, action: Deny, to: [{networks: [198.19.0.0/16, "2001:2:ff::/64"]}]}
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: metrics, namespace: prod}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
    ports: [{port: 9090}]
)";
  const api::LoadResult loaded = api::LoadText(yaml, "tiers.yaml", {});
  EXPECT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const auto& o : loaded.objects) engine.Apply(o);
  return policy::CompileNode(engine,
                             {{"prod/db", "veth-db"}, {"dev/client", "veth-cl"}, {"monitoring/prom", ""}});
}

TEST(RulesetTiersTest, TableMatchesGolden) {
  EXPECT_GOLDEN("dataplane/testdata/tiers.nft",
                TableDefinition(RenderRuleset(TieredProgram(), {.log_group = 100})));
}

TEST(RulesetTiersTest, PerPodRenderingEqualsWhole) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    testing::SeededChoices choices(seed);
    policy::Engine engine;
    for (const auto& o : testing::GenerateTieredCluster(choices)) engine.Apply(o);
    std::map<std::string, std::string> local;
    for (const policy::PodId id : engine.Pods())
      local[engine.pod(id).FullName()] = "veth-" + engine.pod(id).name;
    const policy::NodeProgram program = policy::CompileNode(engine, local);
    const NftRuleset whole = RenderRuleset(program, {});
    PodElements from_pods;
    for (const auto& [name, pod] : program.pods) {
      for (const auto& [set, elements] : RenderPod(name, pod, program, {})) {
        for (const auto& [element, origin] : elements) {
          EXPECT_TRUE(from_pods[set].emplace(element, origin).second) << "two pods render " << element;
        }
      }
    }
    for (const NftSet& set : whole.sets) EXPECT_EQ(from_pods[set.name], set.elements) << "seed " << seed;
    // The class chains are not the pods': every one a pod's dispatch element
    // names is in the whole rendering, and nothing else is.
    std::set<std::string> named;
    for (const auto& [set, elements] : from_pods) {
      for (const auto& [element, origin] : elements) {
        if (element.verdict() == Verdict::kGoto && TierClassOf(element.chain()))
          named.insert(std::string(element.chain()));
      }
    }
    std::set<std::string> rendered;
    for (const auto& [chain, c] : whole.classes) rendered.insert(chain);
    // (NetworkPolicy groups are shared chains as well: ruleset_test.cpp.)
    std::erase_if(named, [](const std::string& chain) { return GroupIdOf(chain).has_value(); });
    std::erase_if(rendered, [](const std::string& chain) { return GroupIdOf(chain).has_value(); });
    EXPECT_EQ(named, rendered) << "seed " << seed;
    EXPECT_EQ(TierClassChains(program), rendered) << "seed " << seed;
  }
}

// Pods with equal decisions share one class chain: the maps hold the boxes
// once, not once per pod, and a pod's own elements are three per tier.
TEST(RulesetTiersTest, PodsWithEqualDecisionsShareAClassChain) {
  const std::string yaml = R"(apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: prod, labels: {app: db}}
spec: {containers: [{name: m}]}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, namespace: prod, labels: {app: db}}
spec: {containers: [{name: m}]}
status: {podIP: 198.18.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.2.1}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard-prod}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {env: prod}}}
  ingress:
  - {name: no-dev, action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}], protocols: [{tcp: {destinationPort: {number: 5432}}}]}
)";
  const api::LoadResult loaded = api::LoadText(yaml, "share.yaml", {});
  ASSERT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const auto& o : loaded.objects) engine.Apply(o);
  const policy::NodeProgram program = policy::CompileNode(engine, {{"prod/db-0", ""}, {"prod/db-1", ""}});
  const NftRuleset whole = RenderRuleset(program, {});
  ASSERT_EQ(whole.classes.size(), 1u);
  const TierClass& c = whole.classes.begin()->second;
  EXPECT_TRUE(c.chain.starts_with("in_admin_c")) << c.chain;
  EXPECT_EQ(TierClassOf(c.chain), c.chain);
  ASSERT_EQ(c.maps.size(), 2u);
  EXPECT_EQ(Texts(c.maps[0].elements),
            (std::map<std::string, std::string>{{"198.18.2.1 . tcp . 5432 : goto ingress_admin_deny_v4",
                                                 "admin/guard-prod ingress[0] no-dev"}}));
  EXPECT_TRUE(c.maps[1].elements.empty());
  EXPECT_NE(c.definition.find("ip saddr . meta l4proto . th dport vmap @" + c.chain + "_port"),
            std::string::npos)
      << c.definition;
  EXPECT_NE(c.definition.find("goto ingress_np_v4"), std::string::npos)
      << "an Admin class that does not decide";
  for (const char* pod : {"prod/db-0", "prod/db-1"}) {
    const PodElements own = RenderPod(pod, program.pods.at(pod), program, {});
    const std::string ip = program.pods.at(pod).ips[0].ToString();
    EXPECT_EQ(Texts(own.at("in_admin_v4")),
              (std::map<std::string, std::string>{{ip + " : goto " + c.chain, pod}}));
    EXPECT_EQ(own.at("in_admin_accepted_v4").size(), 1u);
    EXPECT_EQ(own.at("in_admin_denied_v4").size(), 1u);
  }
}

TEST(RulesetTiersTest, ClassNamesAreRecognised) {
  EXPECT_EQ(TierClassOf("in_admin_c0123456789abcdef_v4"), "in_admin_c0123456789abcdef_v4");
  EXPECT_EQ(TierClassOf("eg_base_c0123456789abcdef_v6_port"), "eg_base_c0123456789abcdef_v6");
  EXPECT_EQ(TierClassOf("eg_base_c0123456789abcdef_v6_all"), "eg_base_c0123456789abcdef_v6");
  for (const char* other :
       {"in_admin_v4", "in_admin_accepted_v4", "ingress_admin_deny_v4", "ingress_v4",
        "in_admin_c0123456789abcdeg_v4", "in_admin_c0123456789abcdef_v5", "in_admin_c0123456789abcde_v4",
        "xx_admin_c0123456789abcdef_v4", "in_admin_c0123456789abcdef_v4_ports"}) {
    EXPECT_FALSE(TierClassOf(other).has_value()) << other;
  }
  // Every name of the static layout is not a class's.
  for (const NftSet& set : SetLayout({})) EXPECT_FALSE(TierClassOf(set.name).has_value()) << set.name;
  for (const auto& [chain, rules] : RuleCounts(RenderRuleset({}, {})))
    EXPECT_FALSE(TierClassOf(chain)) << chain;
}

// What the kernel would list after `ruleset` was installed.
ObservedTable Installed(const NftRuleset& ruleset) {
  ObservedTable t;
  t.exists = true;
  const auto add = [&](const NftSet& set) {
    ObservedSet& o = t.sets[set.name];
    o.type = set.type;
    o.interval = set.interval;
    o.counter = set.counter;
    o.comment = set.comment;
    for (const auto& [element, origin] : set.elements) o.elements[element] = 0;
  };
  for (const NftSet& set : ruleset.sets) add(set);
  for (const auto& [name, c] : ruleset.classes) {
    for (const NftSet& map : c.maps) add(map);
  }
  t.rules = RuleCounts(ruleset);
  for (const auto& [chain, count] : t.rules) t.chains.push_back(chain);
  return t;
}

// A table found with other tier decisions (a restart after policies changed)
// is adopted: the new class chains are created before the dispatch elements
// point at them, the old ones deleted after, and nothing else is rebuilt.
TEST(RulesetTiersTest, OtherClassesAreReplacedNotTheTable) {
  policy::NodeProgram before = TieredProgram();
  policy::NodeProgram after = before;
  // db's Admin decisions change: its rule's origin (and so the class) differs.
  std::vector<policy::DecisionBox> boxes = after.pods.at("prod/db").ingress.admin.boxes();
  for (policy::DecisionBox& box : boxes) box.origin += " (changed)";
  after.pods.at("prod/db").ingress.admin = policy::TierDecisions(boxes);
  const NftRuleset installed = RenderRuleset(before, {});
  const NftRuleset desired = RenderRuleset(after, {});
  std::vector<std::string> gone;
  std::vector<std::string> come;
  for (const auto& [chain, c] : installed.classes) {
    if (!desired.classes.contains(chain)) gone.push_back(chain);
  }
  for (const auto& [chain, c] : desired.classes) {
    if (!installed.classes.contains(chain)) come.push_back(chain);
  }
  ASSERT_EQ(gone.size(), 1u);
  ASSERT_EQ(come.size(), 1u);
  ApplyStats stats;
  const std::string commands = PlanCommands(desired, Installed(installed), stats);
  EXPECT_FALSE(stats.created) << commands;
  EXPECT_EQ(commands.find("delete table"), std::string::npos) << commands;
  const size_t create = commands.find("chain " + come[0] + " {");
  const size_t repoint = commands.find("add element inet netpol in_admin_v4 { 198.18.1.1 ");
  const size_t unpoint = commands.find("delete element inet netpol in_admin_v4 { 198.18.1.1 }");
  const size_t drop = commands.find("delete chain inet netpol " + gone[0] + "\n");
  ASSERT_NE(create, std::string::npos) << commands;
  ASSERT_NE(repoint, std::string::npos) << commands;
  ASSERT_NE(unpoint, std::string::npos) << commands;
  ASSERT_NE(drop, std::string::npos) << commands;
  EXPECT_LT(create, repoint);
  EXPECT_LT(unpoint, drop);
  EXPECT_NE(commands.find("delete map inet netpol " + gone[0] + "_port\n"), std::string::npos);
  EXPECT_NE(commands.find("delete map inet netpol " + gone[0] + "_all\n"), std::string::npos);
  // The same table found again: nothing to do.
  ApplyStats same;
  EXPECT_EQ(PlanCommands(desired, Installed(desired), same), "");
  // A class map left without its chain is not netpol's layout: rebuilt whole.
  ObservedTable odd = Installed(desired);
  odd.sets["in_admin_c0000000000000000_v4_all"] = odd.sets.at(desired.classes.begin()->second.maps[1].name);
  ApplyStats rebuilt;
  EXPECT_NE(PlanCommands(desired, odd, rebuilt).find("delete table"), std::string::npos);
  EXPECT_TRUE(rebuilt.created);
  // A set holding an element the read-back could not decode (someone else's):
  // its other elements are not all it has, so the table is rebuilt whole.
  ObservedTable unreadable = Installed(desired);
  unreadable.sets.at("in_isolated_v4").unreadable = true;
  ApplyStats replaced;
  EXPECT_NE(PlanCommands(desired, unreadable, replaced).find("delete table"), std::string::npos);
  EXPECT_TRUE(replaced.created);
}

TEST(RulesetTiersTest, AListingOfTheFamilyKeepsTheNamedTable) {
  const std::string listing = R"({"nftables": [{"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "inet", "name": "other"}},
    {"set": {"family": "inet", "name": "in_np_v4", "table": "other", "type": "ipv4_addr",
             "elem": ["198.18.9.9"]}},
    {"chain": {"family": "inet", "table": "other", "name": "forward"}},
    {"rule": {"family": "inet", "table": "other", "chain": "forward", "expr": [{"drop": null}]}},
    {"table": {"family": "inet", "name": "netpol"}},
    {"set": {"family": "inet", "name": "in_np_v4", "table": "netpol", "type": "ipv4_addr"}},
    {"chain": {"family": "inet", "table": "netpol", "name": "forward"}},
    {"rule": {"family": "inet", "table": "netpol", "chain": "forward", "expr": [{"accept": null}]}}]})";
  const Result<ObservedTable> netpol = ParseListing(listing, "netpol");
  ASSERT_TRUE(netpol.ok()) << netpol.error().message();
  EXPECT_TRUE(netpol->exists);
  EXPECT_EQ(netpol->chains, std::vector<std::string>{"forward"});
  EXPECT_EQ(netpol->rules.at("forward"), 1u);
  ASSERT_EQ(netpol->sets.size(), 1u);
  EXPECT_TRUE(netpol->sets.at("in_np_v4").elements.empty());
  ASSERT_EQ(netpol->rule_forms.at("forward").size(), 1u);
  EXPECT_NE(netpol->rule_forms.at("forward")[0].find("accept"), std::string::npos);
  // Not there: nothing of the others is taken for it.
  const Result<ObservedTable> missing = ParseListing(listing, "absent");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->exists);
  EXPECT_TRUE(missing->chains.empty() && missing->sets.empty() && missing->rules.empty());
  // Without a name, a one-table listing is read whole (here: both tables).
  const Result<ObservedTable> both = ParseListing(listing);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->rules.at("forward"), 2u);
}

TEST(RulesetTiersTest, MapElementsReadBackAsWritten) {
  const std::string listing = R"({"nftables": [{"table": {"family": "inet", "name": "netpol"}},
    {"map": {"family": "inet", "name": "in_admin_c0123456789abcdef_v4_port", "table": "netpol",
      "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict",
      "flags": ["interval"],
      "elem": [[{"elem": {"val": {"concat": [{"prefix": {"addr": "198.18.2.0", "len": 24}},
                "tcp", {"range": [80, 90]}]}, "comment": "admin/a ingress[0]"}},
               {"goto": {"target": "ingress_admin_deny_v4"}}]]}},
    {"map": {"family": "inet", "name": "in_admin_v4", "table": "netpol",
      "type": "ipv4_addr", "map": "verdict",
      "elem": [[{"elem": {"val": "198.18.1.1", "comment": "prod/db"}},
               {"goto": {"target": "in_admin_c0123456789abcdef_v4"}}]]}}]})";
  const Result<ObservedTable> table = ParseListing(listing);
  ASSERT_TRUE(table.ok()) << table.error().message();
  const ObservedSet& set = table->sets.at("in_admin_c0123456789abcdef_v4_port");
  EXPECT_EQ(set.type, "ipv4_addr . inet_proto . inet_service : verdict");
  EXPECT_TRUE(set.interval);
  ASSERT_EQ(set.elements.size(), 1u);
  EXPECT_EQ(set.elements.begin()->first.Text(),
            "198.18.2.0-198.18.2.255 . tcp . 80-90 : goto ingress_admin_deny_v4");
  const ObservedSet& dispatch = table->sets.at("in_admin_v4");
  EXPECT_EQ(dispatch.type, "ipv4_addr : verdict");
  EXPECT_FALSE(dispatch.interval);
  ASSERT_EQ(dispatch.elements.size(), 1u);
  EXPECT_EQ(dispatch.elements.begin()->first.Text(), "198.18.1.1 : goto in_admin_c0123456789abcdef_v4");
  // The layout has the same types for them.
  bool found = false;
  for (const NftSet& s : SetLayout({})) found = found || (s.name == "in_admin_v4" && s.type == dispatch.type);
  EXPECT_TRUE(found);
  const NftRuleset tiered = RenderRuleset(TieredProgram(), {});
  ASSERT_FALSE(tiered.classes.empty());
  for (const auto& [chain, c] : tiered.classes) {
    if (!chain.ends_with("_v4") || GroupIdOf(chain)) continue;
    EXPECT_EQ(c.maps[0].type, set.type);
    EXPECT_EQ(c.maps[0].interval, set.interval);
  }
}

TEST(RulesetTiersTest, MapEditsCommentTheKeyAndDeleteByKey) {
  const auto key = [](const char* peer) {
    return Element::Of({Field::Address(*IpAddress::Parse("198.18.1.1")),
                        Field::Address(*IpAddress::Parse(peer)), Field::Proto(6), Field::Port(80)});
  };
  ElementEdits edits;
  edits.Delete("in_admin_v4", key("198.18.2.1").Goto("ingress_admin_deny_v4"));
  edits.Add("in_admin_v4", key("198.18.2.2").Goto("ingress_admin_accept_v4"), "admin/a ingress[1]");
  EXPECT_EQ(edits.Commands(),
            "delete element inet netpol in_admin_v4 { 198.18.1.1 . 198.18.2.1 . tcp . 80 }\n"
            "add element inet netpol in_admin_v4 { 198.18.1.1 . 198.18.2.2 . tcp . 80 comment \"admin/a "
            "ingress[1]\" : goto ingress_admin_accept_v4 }\n");
}

}  // namespace
}  // namespace netpol::dataplane::nft
