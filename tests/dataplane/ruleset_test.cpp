// The nftables layout rendered from a compiled program: a golden file of the
// whole table for the guide, and per-pod rendering equal to the full rendering.
#include "dataplane/nft/ruleset.h"

#include <gtest/gtest.h>

#include "api/load.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"
#include "testutil/golden.h"

namespace netpol::dataplane::nft {
namespace {

policy::NodeProgram GuideProgram() {
  const std::string yaml = R"(apiVersion: v1
kind: Pod
metadata: {name: mariadb, labels: {app: np-test-mariadb}}
spec: {containers: [{name: m, ports: [{name: mysql, containerPort: 3306}]}]}
status: {podIP: 198.18.0.10, podIPs: [{ip: 198.18.0.10}, {ip: "2001:2::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: wordpress, labels: {app: np-test-wordpress}}
spec: {containers: [{name: w, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 198.18.0.11, podIPs: [{ip: 198.18.0.11}, {ip: "2001:2::11"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.0.12}
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: default-deny}
spec: {podSelector: {}}
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: db-frontend-allow}
spec:
  podSelector: {matchLabels: {app: np-test-mariadb}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: np-test-wordpress}}}]
    ports: [{protocol: TCP, port: 3306}]
  - from: [{ipBlock: {cidr: 198.19.0.0/16, except: [198.19.1.0/24]}}]
    ports: [{protocol: TCP, port: 3306, endPort: 3310}]
---
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {name: client-egress}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
  - to: [{podSelector: {matchLabels: {app: np-test-wordpress}}}]
    ports: [{port: http}]
  - ports: [{protocol: UDP, port: 53}]
)";
  const api::LoadResult loaded = api::LoadText(yaml, "guide.yaml", {});
  EXPECT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const auto& o : loaded.objects) engine.Apply(o);
  return policy::CompileNode(engine,
                             {{"default/mariadb", "veth-db"}, {"default/wordpress", "veth-wp"}, {"default/client", "veth-cl"}});
}

TEST(RulesetTest, GuideTableMatchesGolden) {
  EXPECT_GOLDEN("dataplane/testdata/guide.nft", TableDefinition(RenderRuleset(GuideProgram(), {.log_group = 100})));
}

// Rendering pod by pod (what incremental updates do) gives exactly the
// elements of the full rendering.
void ExpectPerPodEqualsWhole(const policy::NodeProgram& program) {
  const NftRuleset whole = RenderRuleset(program, {});
  std::map<std::string, std::map<std::string, std::string>> from_pods;
  for (const auto& [name, pod] : program.pods) {
    for (const auto& [set, elements] : RenderPod(name, pod, program, {})) {
      for (const auto& [element, origin] : elements) {
        EXPECT_TRUE(from_pods[set].emplace(element, origin).second) << "two pods render " << element;
      }
    }
  }
  for (const NftSet& set : whole.sets) {
    std::map<std::string, std::string> expected = set.elements;
    EXPECT_EQ(from_pods[set.name], expected) << set.name;
  }
}

TEST(RulesetTest, PerPodRenderingEqualsWhole) {
  ExpectPerPodEqualsWhole(GuideProgram());
  for (uint64_t seed = 0; seed < 200; ++seed) {
    testing::SeededChoices choices(seed);
    policy::Engine engine;
    for (const auto& o : testing::GenerateSmallCluster(choices)) engine.Apply(o);
    std::map<std::string, std::string> local;
    int i = 0;
    for (const policy::PodId id : engine.Pods()) local[engine.pod(id).FullName()] = "veth" + std::to_string(i++);
    ExpectPerPodEqualsWhole(policy::CompileNode(engine, local));
  }
}

TEST(RulesetTest, IntervalElementsNeverOverlap) {
  // Two overlapping ipBlock/port boxes for one pod must come out disjoint.
  policy::NodeProgram program;
  policy::AddressSet wide;
  wide.ranges.push_back({*IpAddress::Parse("198.19.0.0"), *IpAddress::Parse("198.19.0.255")});
  policy::AddressSet narrow;
  narrow.ranges.push_back({*IpAddress::Parse("198.19.0.0"), *IpAddress::Parse("198.19.0.127")});
  program.sets = {{"wide", wide}, {"narrow", narrow}};
  policy::LocalPod pod;
  pod.ips = {*IpAddress::Parse("198.18.0.1")};
  pod.ingress.isolated = true;
  pod.ingress.allow = {{"wide", {{api::Protocol::kTCP, 80, 90}}, "a"}, {"narrow", {{api::Protocol::kTCP, 85, 100}}, "b"}};
  program.pods["ns/p"] = pod;
  const NftRuleset r = RenderRuleset(program, {});
  const auto it = std::find_if(r.sets.begin(), r.sets.end(), [](const NftSet& s) { return s.name == "in_ranges_v4"; });
  ASSERT_NE(it, r.sets.end());
  std::vector<std::string> elements;
  for (const auto& [e, o] : it->elements) elements.push_back(e);
  EXPECT_EQ(elements, (std::vector<std::string>{
                          "198.18.0.1 . 198.19.0.0-198.19.0.127 . tcp . 80-100",
                          "198.18.0.1 . 198.19.0.128-198.19.0.255 . tcp . 80-90",
                      }));
}

}  // namespace
}  // namespace netpol::dataplane::nft
