// The nftables layout rendered from a compiled program: a golden file of the
// whole table for the guide, and per-pod rendering equal to the full rendering.
#include "dataplane/nft/ruleset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "api/load.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/element_text.h"
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

// Rendering pod by pod and group by group (what incremental updates do)
// gives exactly the elements of the full rendering, and every group a pod's
// dispatch element names is a chain of the table.
void ExpectPerPodEqualsWhole(const policy::NodeProgram& program) {
  const NftRuleset whole = RenderRuleset(program, {});
  const GroupIds ids = AssignGroups(program);
  PodElements from_parts;
  std::set<std::string> named;
  for (const auto& [name, pod] : program.pods) {
    for (const auto& [set, elements] : RenderPod(name, pod, program, {}, &ids)) {
      for (const auto& [element, origin] : elements) {
        EXPECT_TRUE(from_parts[set].emplace(element, origin).second) << "two pods render " << element;
        if (element.verdict() == Verdict::kGoto && GroupIdOf(element.chain()))
          named.insert(std::string(element.chain()));
      }
    }
  }
  std::set<std::string> groups;
  for (const auto& [key, id] : ids.ids) {
    groups.insert(GroupChain(key.ingress, key.family, id));
    for (const auto& [set, elements] : RenderGroupElements(key, id, program)) {
      EXPECT_TRUE(set.starts_with(GroupChain(key.ingress, key.family, id) + "_")) << set;
      for (const auto& [element, origin] : elements) {
        EXPECT_TRUE(from_parts[set].emplace(element, origin).second) << "two groups render " << element;
      }
    }
  }
  EXPECT_EQ(named, groups) << "every group has a pod, and only they have chains";
  std::set<std::string> sets_seen;
  for (const NftSet& set : whole.sets) {
    EXPECT_EQ(from_parts[set.name], set.elements) << set.name;
    sets_seen.insert(set.name);
  }
  for (const auto& [chain, c] : whole.classes) {
    if (!GroupIdOf(chain)) continue;
    EXPECT_TRUE(groups.contains(chain)) << chain;
    for (const NftSet& set : c.maps) {
      EXPECT_EQ(from_parts[set.name], set.elements) << set.name;
      sets_seen.insert(set.name);
    }
  }
  for (const auto& [set, elements] : from_parts) EXPECT_TRUE(sets_seen.contains(set)) << set;
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

// A program of isolated pods on 198.18.0.x, each allowed `allow` (by name).
policy::NodeProgram Isolated(const std::map<std::string, std::vector<policy::Allowance>>& allow,
                             const std::map<std::string, std::vector<IpAddress>>& sets) {
  policy::NodeProgram program;
  for (const auto& [id, members] : sets) {
    policy::AddressSet set;
    set.addresses = members;
    program.sets[id] = std::make_shared<const policy::AddressSet>(std::move(set));
  }
  int i = 1;
  for (const auto& [name, allowances] : allow) {
    policy::LocalPod pod;
    pod.ips = {*IpAddress::Parse("198.18.0." + std::to_string(i++))};
    pod.interface = "veth-" + name;
    pod.ingress.isolated = true;
    pod.ingress.allow = allowances;
    std::sort(pod.ingress.allow.begin(), pod.ingress.allow.end());  // as compiled
    program.pods[name] = pod;
  }
  return program;
}

IpAddress Ip(const std::string& text) {
  return *IpAddress::Parse(text);
}

// Pods allowed the same share one chain: its elements name peers (no pod),
// once; each pod has one dispatch element naming it. A pod that a rule lets
// everything in has no group.
TEST(RulesetTest, PodsWithEqualAllowancesShareAGroup) {
  const policy::Allowance web{"web", {{api::Protocol::kTCP, 80, 80}}, "ns/web-in ingress[0]"};
  const policy::Allowance every{std::nullopt, {}, "ns/open ingress[0]"};
  const policy::NodeProgram program =
      Isolated({{"ns/a", {web}}, {"ns/b", {web}}, {"ns/c", {every}}},
               {{"web", {Ip("198.18.1.1"), Ip("198.18.1.2"), Ip("2001:2::1")}}});
  const GroupIds ids = AssignGroups(program);
  ASSERT_EQ(ids.ids.size(), 1u);
  EXPECT_EQ(ids.ids.begin()->second, 1u);
  EXPECT_EQ(ids.next, 2u);
  const NftRuleset whole = RenderRuleset(program, {});
  ASSERT_TRUE(whole.classes.contains("in_np_g1_v4"));
  const TierClass& g = whole.classes.at("in_np_g1_v4");
  ASSERT_EQ(g.maps.size(), 6u);
  EXPECT_EQ(g.maps[0].name, "in_np_g1_v4_exact");
  EXPECT_EQ(Texts(g.maps[0].elements),
            (std::map<std::string, std::string>{{"198.18.1.1 . tcp . 80", "ns/web-in ingress[0]"},
                                                {"198.18.1.2 . tcp . 80", "ns/web-in ingress[0]"}}));
  for (size_t i = 1; i < g.maps.size(); ++i) EXPECT_TRUE(g.maps[i].elements.empty()) << g.maps[i].name;
  EXPECT_TRUE(g.maps[5].interval);
  EXPECT_NE(
      g.definition.find("ip saddr . meta l4proto . th dport @in_np_g1_v4_exact goto ingress_allowed_v4"),
      std::string::npos)
      << g.definition;
  EXPECT_NE(g.definition.find("log prefix \"netpol ingress deny \" group 100 drop"), std::string::npos)
      << "a group's chain ends in the drop: " << g.definition;
  const auto np = [&](const std::string& pod) {
    return Texts(RenderPod(pod, program.pods.at(pod), program, {}, &ids).at("in_np_v4"));
  };
  EXPECT_EQ(np("ns/a"), (std::map<std::string, std::string>{{"198.18.0.1 : goto in_np_g1_v4", "ns/a"}}));
  EXPECT_EQ(np("ns/b"), (std::map<std::string, std::string>{{"198.18.0.2 : goto in_np_g1_v4", "ns/b"}}));
  EXPECT_EQ(
      np("ns/c"),
      (std::map<std::string, std::string>{{"198.18.0.3 : goto ingress_allowed_v4", "ns/open ingress[0]"}}));
  const PodElements own = RenderPod("ns/a", program.pods.at("ns/a"), program, {}, &ids);
  size_t n = 0;
  for (const auto& [set, elements] : own) n += elements.size();
  EXPECT_EQ(n, 7u) << "iface, address, anti-spoofing, isolated, denied, allowed, dispatch";
}

// Ids stay with the pods: a group whose peers changed keeps its id (its
// chain is edited in place), a pod relabelled into a group that exists takes
// that group's id, a new content takes the next number, and ids are never
// given twice.
TEST(RulesetTest, GroupIdsFollowTheirPods) {
  const policy::Allowance web{"web", {{api::Protocol::kTCP, 80, 80}}, "ns/web-in ingress[0]"};
  const policy::Allowance web2{"web2", {{api::Protocol::kTCP, 80, 80}}, "ns/web-in ingress[0]"};
  const policy::Allowance db{"db", {{api::Protocol::kTCP, 5432, 5432}}, "ns/db-in ingress[0]"};
  const std::map<std::string, std::vector<IpAddress>> sets = {{"web", {Ip("198.18.1.1")}},
                                                              {"web2", {Ip("198.18.1.1"), Ip("198.18.1.9")}},
                                                              {"db", {Ip("198.18.2.1")}}};
  const policy::NodeProgram before = Isolated({{"ns/a", {web}}, {"ns/b", {web}}, {"ns/c", {db}}}, sets);
  const GroupIds old_ids = AssignGroups(before);
  const auto had = [&](const policy::NodeProgram& program, const GroupIds& ids) {
    return [&program, &ids](const std::string& pod, const GroupKey& key) -> std::optional<uint32_t> {
      const auto it = program.pods.find(pod);
      if (it == program.pods.end()) return std::nullopt;
      const std::optional<GroupKey> old = GroupOf(it->second, key.ingress, key.family);
      if (!old) return std::nullopt;
      return ids.ids.at(*old);
    };
  };
  const GroupKey web_key{true, IpFamily::kV4, {web}};
  const GroupKey db_key{true, IpFamily::kV4, {db}};
  EXPECT_EQ(old_ids.ids, (std::map<GroupKey, uint32_t>{{web_key, 1}, {db_key, 2}}));
  // A peer joins web: a and b's group has new content and keeps id 1.
  const policy::NodeProgram joined = Isolated({{"ns/a", {web2}}, {"ns/b", {web2}}, {"ns/c", {db}}}, sets);
  const GroupIds joined_ids = AssignGroups(joined, &old_ids, had(before, old_ids));
  EXPECT_EQ(joined_ids.ids, (std::map<GroupKey, uint32_t>{{{true, IpFamily::kV4, {web2}}, 1}, {db_key, 2}}));
  // c relabelled into a and b's group: db's group is gone, web's kept.
  const policy::NodeProgram relabelled = Isolated({{"ns/a", {web}}, {"ns/b", {web}}, {"ns/c", {web}}}, sets);
  const GroupIds relabelled_ids = AssignGroups(relabelled, &old_ids, had(before, old_ids));
  EXPECT_EQ(relabelled_ids.ids, (std::map<GroupKey, uint32_t>{{web_key, 1}}));
  // b takes a content nobody had: a keeps 1 by content, so b's new content
  // (whose only pod had 1) takes the next number.
  const policy::NodeProgram split = Isolated({{"ns/a", {web}}, {"ns/b", {web, db}}, {"ns/c", {db}}}, sets);
  const GroupIds split_ids = AssignGroups(split, &old_ids, had(before, old_ids));
  EXPECT_EQ(split_ids.ids,
            (std::map<GroupKey, uint32_t>{{web_key, 1}, {db_key, 2}, {{true, IpFamily::kV4, {db, web}}, 3}}));
  EXPECT_EQ(split_ids.next, 4u);
  // Two new contents both had by a's group's pods: the one with more pods
  // keeps the id, the other takes a new one.
  const policy::NodeProgram both =
      Isolated({{"ns/a", {web2}}, {"ns/b", {web2}}, {"ns/c", {db}}, {"ns/d", {web, db}}}, sets);
  const policy::NodeProgram before_d =
      Isolated({{"ns/a", {web}}, {"ns/b", {web}}, {"ns/c", {db}}, {"ns/d", {web}}}, sets);
  const GroupIds d_ids = AssignGroups(before_d);
  const GroupIds both_ids = AssignGroups(both, &d_ids, had(before_d, d_ids));
  EXPECT_EQ(both_ids.ids.at({true, IpFamily::kV4, {web2}}), 1u);
  EXPECT_EQ(both_ids.ids.at(db_key), 2u);
  EXPECT_EQ(both_ids.ids.at({true, IpFamily::kV4, {db, web}}), 3u);
}

TEST(RulesetTest, GroupNamesAreRecognised) {
  EXPECT_EQ(GroupChain(true, IpFamily::kV4, 12), "in_np_g12_v4");
  EXPECT_EQ(GroupChain(false, IpFamily::kV6, 1), "eg_np_g1_v6");
  EXPECT_EQ(GroupIdOf("in_np_g12_v4"), 12u);
  EXPECT_EQ(GroupIdOf("eg_np_g1_v6"), 1u);
  for (const char* other : {"in_np_v4", "in_np_g_v4", "in_np_g01_v4", "in_np_g1x_v4", "in_np_g1_v5",
                            "ingress_np_v4", "in_np_g1_v4_exact", "xx_np_g1_v4"}) {
    EXPECT_FALSE(GroupIdOf(other).has_value()) << other;
  }
  EXPECT_EQ(TierClassOf("in_np_g3_v4"), "in_np_g3_v4");
  for (const std::string& set : GroupSetNames("eg_np_g3_v6"))
    EXPECT_EQ(TierClassOf(set), "eg_np_g3_v6") << set;
  EXPECT_FALSE(TierClassOf("in_np_v4").has_value());
}

// Every element's comment names one of the rules of the group: never a
// rule that is gone.
void ExpectCommentsNameCurrentRules(const PodElements& elements, const GroupKey& key, uint64_t seed) {
  std::set<std::string> origins;
  for (const policy::Allowance& a : key.allow) origins.insert(a.origin);
  for (const auto& [set, members] : elements) {
    for (const auto& [element, origin] : members) {
      EXPECT_TRUE(origins.contains(origin)) << "seed " << seed << ": " << set << " " << element << " names "
                                            << origin << ", not a rule of the group";
    }
  }
}

// Applies `edits` to what a group had (`installed`: removes must be present,
// adds absent) and expects what rendering the group whole gives, comments
// naming rules the group has now.
void ExpectEditsGiveWholeRendering(PodElements installed, const PodEdits& edits, const GroupKey& key,
                                   uint32_t id, const policy::NodeProgram& program, uint64_t seed) {
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
      for (const auto& [element, origin] : elements) out[set].push_back(element.Text());
    }
    return out;
  };
  EXPECT_EQ(keys(installed), keys(RenderGroupElements(key, id, program))) << "seed " << seed;
  ExpectCommentsNameCurrentRules(installed, key, seed);
}

// The groups of `after` that kept an id of `before` with other content: what
// the backend edits in place. (old key, new key, id).
struct KeptGroup {
  GroupKey before;
  GroupKey after;
  uint32_t id;
};
std::vector<KeptGroup> KeptGroups(const policy::NodeProgram& before, const policy::NodeProgram& after) {
  const GroupIds old_ids = AssignGroups(before);
  const GroupIds new_ids = AssignGroups(
      after, &old_ids, [&](const std::string& pod, const GroupKey& key) -> std::optional<uint32_t> {
        const auto it = before.pods.find(pod);
        if (it == before.pods.end()) return std::nullopt;
        const std::optional<GroupKey> old = GroupOf(it->second, key.ingress, key.family);
        if (!old) return std::nullopt;
        return old_ids.ids.at(*old);
      });
  std::map<uint32_t, const GroupKey*> by_id;
  for (const auto& [key, id] : old_ids.ids) by_id[id] = &key;
  std::vector<KeptGroup> out;
  for (const auto& [key, id] : new_ids.ids) {
    const auto it = by_id.find(id);
    if (it != by_id.end() && !(*it->second == key)) out.push_back({*it->second, key, id});
  }
  return out;
}

// Editing a group by the peers it gained or lost (what updates do when only
// peer sets change) ends exactly where rendering it whole does.
TEST(RulesetTest, GroupMemberChangeEqualsWholeRendering) {
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
    for (const KeptGroup& g : KeptGroups(before, after)) {
      const std::optional<PodEdits> edits = RenderGroupMemberChange(g.before, before, g.after, after, g.id);
      if (!edits) {
        ++whole;
        continue;
      }
      ++edited;
      ExpectEditsGiveWholeRendering(RenderGroupElements(g.before, g.id, before), *edits, g.after, g.id, after,
                                    seed);
    }
  }
  // Both paths ran, so the equivalence above says something.
  EXPECT_GT(edited, 50);
  EXPECT_GT(whole, 0);
}

// Editing a group by the allowances it gained or lost (a policy came or
// went) ends exactly where rendering it whole does.
TEST(RulesetTest, GroupAllowanceChangeEqualsWholeRendering) {
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
    for (const KeptGroup& g : KeptGroups(before, after)) {
      PodElements result = RenderGroupElements(g.before, g.id, before);
      const auto installed = [&](const std::string& set, const Element& element) -> const std::string* {
        const auto it = result.find(set);
        if (it == result.end()) return nullptr;
        const auto e = it->second.find(element);
        return e == it->second.end() ? nullptr : &e->second;
      };
      const std::optional<PodEdits> edits =
          RenderGroupAllowanceChange(g.before, before, g.after, after, g.id, installed);
      if (!edits) {
        ++whole;
        continue;
      }
      ++edited;
      ExpectEditsGiveWholeRendering(result, *edits, g.after, g.id, after, seed);
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
  ASSERT_TRUE(r.classes.contains("in_np_g1_v4"));
  const std::vector<NftSet>& sets = r.classes.at("in_np_g1_v4").maps;
  const auto it =
      std::find_if(sets.begin(), sets.end(), [](const NftSet& s) { return s.name == "in_np_g1_v4_ranges"; });
  ASSERT_NE(it, sets.end());
  std::vector<std::string> elements;
  for (const auto& [e, o] : it->elements) elements.push_back(e.Text());
  EXPECT_EQ(elements, (std::vector<std::string>{
                          "198.19.0.0-198.19.0.127 . tcp . 80-100",
                          "198.19.0.128-198.19.0.255 . tcp . 80-90",
                      }));
}

}  // namespace
}  // namespace netpol::dataplane::nft
