// The nftables layout rendered from a compiled program: a golden file of the
// whole table for the guide, and per-pod rendering equal to the full rendering.
#include "dataplane/nft/ruleset.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "api/load.h"
#include "policy/compile.h"
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
  return policy::CompileNode(
      engine,
      {{"default/mariadb", "veth-db"}, {"default/wordpress", "veth-wp"}, {"default/client", "veth-cl"}});
}

TEST(RulesetTest, GuideTableMatchesGolden) {
  EXPECT_GOLDEN("dataplane/testdata/guide.nft",
                TableDefinition(RenderRuleset(GuideProgram(), {.log_group = 100})));
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
    for (const policy::PodId id : engine.Pods()) {
      // Every third pod reserved (programmed ahead of its ADD: no interface yet).
      local[engine.pod(id).FullName()] = i % 3 == 2 ? "" : "veth" + std::to_string(i);
      ++i;
    }
    policy::NodeProgram program = policy::CompileNode(engine, local);
    for (auto& [name, pod] : program.pods) pod.reserved = pod.interface.empty();
    ExpectPerPodEqualsWhole(program);
  }
}

// Every pod of `engine` on this node, each with an interface of its own.
std::map<std::string, std::string> EveryPodLocal(const policy::Engine& engine) {
  std::map<std::string, std::string> local;
  for (const policy::PodId id : engine.Pods())
    local[engine.pod(id).FullName()] = "veth-" + engine.pod(id).FullName();
  return local;
}

// Every element's comment names the pod (its own elements) or one of the
// rules it has now: never a rule that is gone.
void ExpectCommentsNameCurrentRules(const PodElements& elements, const std::string& name,
                                    const policy::LocalPod& pod, uint64_t seed) {
  std::set<std::string> origins = {name};
  for (const policy::DirectionProgram* d : {&pod.ingress, &pod.egress}) {
    for (const policy::Allowance& a : d->allow) origins.insert(a.origin);
  }
  for (const auto& [set, members] : elements) {
    for (const auto& [element, origin] : members) {
      EXPECT_TRUE(origins.contains(origin)) << "seed " << seed << ": " << set << " " << element << " names "
                                            << origin << ", not a rule of " << name;
    }
  }
}

// Applies `edits` to what a pod had (`installed`: removes must be present,
// adds absent) and expects what rendering the pod whole gives, comments
// naming rules the pod has now.
void ExpectEditsGiveWholeRendering(PodElements installed, const PodEdits& edits, const std::string& name,
                                   const policy::LocalPod& pod, const policy::NodeProgram& program,
                                   uint64_t seed) {
  for (const auto& [set, elements] : edits.removed) {
    for (const auto& [element, origin] : elements) {
      EXPECT_EQ(installed[set].erase(element), 1u) << "seed " << seed << ": removes absent " << element;
    }
  }
  for (const auto& [set, elements] : edits.added) {
    for (const auto& [element, origin] : elements) {
      EXPECT_TRUE(installed[set].emplace(element, origin).second)
          << "seed " << seed << ": adds present " << element;
    }
  }
  std::erase_if(installed, [](const auto& entry) { return entry.second.empty(); });
  const auto keys = [](const PodElements& e) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& [set, elements] : e) {
      for (const auto& [element, origin] : elements) out[set].push_back(element);
    }
    return out;
  };
  EXPECT_EQ(keys(installed), keys(RenderPod(name, pod, program, {}))) << "seed " << seed << " pod " << name;
  ExpectCommentsNameCurrentRules(installed, name, pod, seed);
}

// Editing a pod by the peers it gained or lost (what updates do when only
// peer sets change) ends exactly where rendering it whole does.
TEST(RulesetTest, MemberChangeEqualsWholeRendering) {
  int edited = 0;
  int whole = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    testing::SeededChoices choices(seed);
    const std::vector<api::Object> objects = testing::GenerateSmallCluster(choices);
    std::vector<const api::Pod*> pods;
    for (const auto& o : objects) {
      if (const auto* pod = std::get_if<api::Pod>(&o); pod != nullptr && !pod->pod_ips.empty())
        pods.push_back(pod);
    }
    if (pods.size() < 2) continue;
    policy::Engine engine;
    for (const auto& o : objects) engine.Apply(o);
    const std::map<std::string, std::string> local = EveryPodLocal(engine);
    const policy::NodeProgram before = policy::CompileNode(engine, local);
    // One change a peer set sees: a pod appears, goes, or takes another's labels.
    api::Pod changed = *pods[choices.Next(static_cast<uint32_t>(pods.size()))];
    switch (choices.Next(3)) {
      case 0:
        changed.metadata.name += "-new";
        changed.pod_ips = {seed % 2 ? "198.18.250.1" : "2001:2::250:1"};
        engine.Apply(changed);
        break;
      case 1:
        engine.Delete("Pod", changed.metadata.namespace_, changed.metadata.name);
        break;
      default:
        changed.metadata.labels = pods[choices.Next(static_cast<uint32_t>(pods.size()))]->metadata.labels;
        engine.Apply(changed);
        break;
    }
    const policy::NodeProgram after = policy::CompileNode(engine, local);
    for (const auto& [name, pod] : after.pods) {
      const auto was = before.pods.find(name);
      if (was == before.pods.end() || was->second == pod) continue;
      const std::optional<PodEdits> edits = RenderPodMemberChange(name, was->second, before, pod, after, {});
      if (!edits) {
        ++whole;
        continue;
      }
      ++edited;
      ExpectEditsGiveWholeRendering(RenderPod(name, was->second, before, {}), *edits, name, pod, after, seed);
    }
  }
  // Both paths ran, so the equivalence above says something.
  EXPECT_GT(edited, 50);
  EXPECT_GT(whole, 0);
}

// A pod programmed ahead of its ADD (reserved, no interface) and then wired
// (its interface, not reserved), or the other way: editing only its own
// elements ends exactly where rendering it whole does; any other change is
// not taken for a wiring change.
TEST(RulesetTest, WiringChangeEqualsWholeRendering) {
  int edited = 0;
  int refused = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    testing::SeededChoices choices(seed);
    policy::Engine engine;
    for (const auto& o : testing::GenerateSmallCluster(choices)) engine.Apply(o);
    const std::map<std::string, std::string> local = EveryPodLocal(engine);
    const policy::NodeProgram wired = policy::CompileNode(engine, local);
    policy::NodeProgram reserved = wired;
    for (auto& [name, pod] : reserved.pods) {
      pod.interface.clear();
      pod.reserved = true;
    }
    using Step = std::pair<const policy::NodeProgram*, const policy::NodeProgram*>;  // from, to
    for (const auto& [from, to] : {Step{&reserved, &wired}, Step{&wired, &reserved}}) {
      for (const auto& [name, pod] : to->pods) {
        const policy::LocalPod& was = from->pods.at(name);
        const std::optional<PodEdits> edits = RenderPodWiringChange(name, was, *from, pod, *to, {});
        ASSERT_TRUE(edits.has_value()) << "seed " << seed << " pod " << name;
        ++edited;
        ExpectEditsGiveWholeRendering(RenderPod(name, was, *from, {}), *edits, name, pod, *to, seed);
        // Isolation changed as well: not a wiring change.
        policy::LocalPod other = pod;
        other.ingress.isolated = !other.ingress.isolated;
        if (!RenderPodWiringChange(name, was, *from, other, *to, {})) ++refused;
      }
    }
  }
  EXPECT_GT(edited, 100);
  EXPECT_EQ(refused, edited);
}

// Editing a pod by the allowances it gained or lost (a policy came or went)
// ends exactly where rendering it whole does, whatever the pod had installed.
TEST(RulesetTest, AllowanceChangeEqualsWholeRendering) {
  int edited = 0;
  int whole = 0;
  for (uint64_t seed = 0; seed < 1500; ++seed) {
    testing::SeededChoices choices(seed);
    const std::vector<api::Object> objects = testing::GenerateSmallCluster(choices);
    std::vector<const api::NetworkPolicy*> policies;
    for (const auto& o : objects) {
      if (const auto* p = std::get_if<api::NetworkPolicy>(&o)) policies.push_back(p);
    }
    if (policies.size() < 2) continue;
    policy::Engine engine;
    for (const auto& o : objects) engine.Apply(o);
    const std::map<std::string, std::string> local = EveryPodLocal(engine);
    const policy::NodeProgram before = policy::CompileNode(engine, local);
    // One change to the allowances: a policy goes, comes (another's copy
    // under a new name), or takes another's rules.
    api::NetworkPolicy changed = *policies[choices.Next(static_cast<uint32_t>(policies.size()))];
    const api::NetworkPolicy& other = *policies[choices.Next(static_cast<uint32_t>(policies.size()))];
    switch (choices.Next(3)) {
      case 0:
        engine.Delete("NetworkPolicy", changed.metadata.namespace_, changed.metadata.name);
        break;
      case 1:
        changed.metadata.name += "-copy";
        engine.Apply(changed);
        break;
      default:
        changed.ingress = other.ingress;
        changed.egress = other.egress;
        changed.policy_types = other.policy_types;
        engine.Apply(changed);
        break;
    }
    const policy::NodeProgram after = policy::CompileNode(engine, local);
    for (const auto& [name, pod] : after.pods) {
      const auto was = before.pods.find(name);
      if (was == before.pods.end() || was->second == pod) continue;
      PodElements result = RenderPod(name, was->second, before, {});
      const auto installed = [&](const std::string& set, const std::string& element) -> const std::string* {
        const auto it = result.find(set);
        if (it == result.end()) return nullptr;
        const auto e = it->second.find(element);
        return e == it->second.end() ? nullptr : &e->second;
      };
      const std::optional<PodEdits> edits =
          RenderPodAllowanceChange(name, was->second, before, pod, after, {}, installed);
      if (!edits) {
        ++whole;
        continue;
      }
      ++edited;
      ExpectEditsGiveWholeRendering(result, *edits, name, pod, after, seed);
    }
  }
  // Both paths ran, so the equivalence above says something.
  EXPECT_GT(edited, 50) << whole;
  EXPECT_GT(whole, 0);
}

TEST(RulesetTest, IntervalElementsNeverOverlap) {
  // Two overlapping ipBlock/port boxes for one pod must come out disjoint.
  policy::NodeProgram program;
  policy::AddressSet wide;
  wide.ranges.push_back({*IpAddress::Parse("198.19.0.0"), *IpAddress::Parse("198.19.0.255")});
  policy::AddressSet narrow;
  narrow.ranges.push_back({*IpAddress::Parse("198.19.0.0"), *IpAddress::Parse("198.19.0.127")});
  program.sets = {{"wide", std::make_shared<const policy::AddressSet>(wide)},
                  {"narrow", std::make_shared<const policy::AddressSet>(narrow)}};
  policy::LocalPod pod;
  pod.ips = {*IpAddress::Parse("198.18.0.1")};
  pod.ingress.isolated = true;
  pod.ingress.allow = {{"wide", {{api::Protocol::kTCP, 80, 90}}, "a"},
                       {"narrow", {{api::Protocol::kTCP, 85, 100}}, "b"}};
  program.pods["ns/p"] = pod;
  const NftRuleset r = RenderRuleset(program, {});
  const auto it =
      std::find_if(r.sets.begin(), r.sets.end(), [](const NftSet& s) { return s.name == "in_ranges_v4"; });
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
