// The ClusterNetworkPolicy tiers in the nftables layout: the decision maps'
// elements (golden), per-pod rendering equal to the whole on random tiered
// clusters, and map elements read back from a listing as they were written.
//
//   NETPOL_UPDATE_GOLDEN=1 build/release/tests/dataplane_test --gtest_filter='RulesetTiers*'
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "api/load.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/nft/ruleset.h"
#include "policy/compiled.h"
#include "policy/engine.h"
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
    std::map<std::string, std::map<std::string, std::string>> from_pods;
    for (const auto& [name, pod] : program.pods) {
      for (const auto& [set, elements] : RenderPod(name, pod, program, {})) {
        for (const auto& [element, origin] : elements) {
          EXPECT_TRUE(from_pods[set].emplace(element, origin).second) << "two pods render " << element;
        }
      }
    }
    for (const NftSet& set : whole.sets) EXPECT_EQ(from_pods[set.name], set.elements) << "seed " << seed;
  }
}

TEST(RulesetTiersTest, MapElementsReadBackAsWritten) {
  const std::string listing = R"({"nftables": [{"table": {"family": "inet", "name": "netpol"}},
    {"map": {"family": "inet", "name": "in_admin_v4", "table": "netpol",
      "type": ["ipv4_addr", "ipv4_addr", "inet_proto", "inet_service"], "map": "verdict",
      "flags": ["interval"], "stmt": [{"counter": null}],
      "elem": [[{"elem": {"val": {"concat": ["198.18.1.1", {"prefix": {"addr": "198.18.2.0", "len": 24}},
                "tcp", {"range": [80, 90]}]}, "comment": "admin/a ingress[0]",
                "counter": {"packets": 3, "bytes": 180}}},
               {"goto": {"target": "ingress_admin_deny_v4"}}]]}}]})";
  const Result<ObservedTable> table = ParseListing(listing);
  ASSERT_TRUE(table.ok()) << table.error().message();
  const ObservedSet& set = table->sets.at("in_admin_v4");
  EXPECT_EQ(set.type, "ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict");
  EXPECT_TRUE(set.interval);
  EXPECT_TRUE(set.counter);
  ASSERT_EQ(set.elements.size(), 1u);
  EXPECT_EQ(set.elements.begin()->first,
            "198.18.1.1 . 198.18.2.0-198.18.2.255 . tcp . 80-90 : goto ingress_admin_deny_v4");
  EXPECT_EQ(set.elements.begin()->second, 3u);
  // The layout has the same type for it.
  bool found = false;
  for (const NftSet& s : SetLayout({})) found = found || (s.name == "in_admin_v4" && s.type == set.type);
  EXPECT_TRUE(found);
}

TEST(RulesetTiersTest, MapEditsCommentTheKeyAndDeleteByKey) {
  ElementEdits edits;
  edits.Delete("in_admin_v4", "198.18.1.1 . 198.18.2.1 . tcp . 80 : goto ingress_admin_deny_v4");
  edits.Add("in_admin_v4", "198.18.1.1 . 198.18.2.2 . tcp . 80 : goto ingress_admin_accept_v4",
            "admin/a ingress[1]");
  EXPECT_EQ(edits.Commands(),
            "delete element inet netpol in_admin_v4 { 198.18.1.1 . 198.18.2.1 . tcp . 80 }\n"
            "add element inet netpol in_admin_v4 { 198.18.1.1 . 198.18.2.2 . tcp . 80 comment \"admin/a "
            "ingress[1]\" : goto ingress_admin_accept_v4 }\n");
}

}  // namespace
}  // namespace netpol::dataplane::nft
