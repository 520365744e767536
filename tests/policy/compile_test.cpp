// NodeCompiler, which keeps peer sets between compiles, must always produce
// what a fresh CompileNode does on the same engine state.
#include "policy/compile.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "api/decode.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "policy/internal/set_ids.h"
#include "testutil/generator.h"

namespace netpol {
namespace {

std::map<std::string, std::string> AllPodsLocal(const policy::Engine& engine) {
  std::map<std::string, std::string> local;
  for (const policy::PodId id : engine.Pods())
    local[engine.pod(id).FullName()] = "veth-" + engine.pod(id).name;
  return local;
}

// One random change of the kinds a cluster sees: an object goes, comes back,
// comes back with the labels of another object of its kind, or a pod takes
// another pod's address.
void Mutate(testing::Choices& choices, const std::vector<api::Object>& objects, policy::Engine& engine) {
  const api::Object& picked = objects[choices.Next(static_cast<uint32_t>(objects.size()))];
  const api::ObjectMeta& meta = api::MetaOf(picked);
  switch (choices.Next(4)) {
    case 0:
      engine.Delete(api::KindOf(picked), meta.namespace_, meta.name);
      return;
    case 1:
      engine.Apply(picked);
      return;
    case 2: {
      // A pod takes another pod's address and keeps its labels (a finished
      // pod's address reused): pods of different classes share an address.
      const api::Object& other = objects[choices.Next(static_cast<uint32_t>(objects.size()))];
      const auto* from = std::get_if<api::Pod>(&other);
      api::Object changed = picked;
      if (auto* pod = std::get_if<api::Pod>(&changed); pod != nullptr && from != nullptr) {
        pod->pod_ips = from->pod_ips;
        engine.Apply(changed);
      }
      return;
    }
    default: {
      api::Object changed = picked;
      const api::Object& other = objects[choices.Next(static_cast<uint32_t>(objects.size()))];
      if (picked.index() == other.index()) api::MetaOf(changed).labels = api::MetaOf(other).labels;
      if (auto* pod = std::get_if<api::Pod>(&changed); pod != nullptr && choices.Coin()) {
        // An address change without a label change; from a small pool half
        // the time, so that pods of different classes often share one.
        const uint32_t pool = choices.Coin() ? 4 : 250;
        pod->pod_ips = {choices.Coin() ? "198.18.250." + std::to_string(choices.Next(pool) + 1)
                                       : "2001:2::250:" + std::to_string(choices.Next(pool) + 1)};
      }
      engine.Apply(changed);
      return;
    }
  }
}

TEST(NodeCompilerTest, KeptPeerSetsEqualAFreshCompileAfterEveryChange) {
  int compared = 0;
  int non_empty = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    testing::SeededChoices choices(seed);
    const std::vector<api::Object> objects = testing::GenerateSmallCluster(choices);
    if (objects.empty()) continue;
    policy::Engine engine;
    for (const auto& o : objects) {
      if (choices.Coin(4)) continue;  // some arrive later, through Mutate
      engine.Apply(o);
    }
    policy::NodeCompiler compiler;
    for (int step = 0; step < 40; ++step) {
      const auto local = AllPodsLocal(engine);
      const policy::NodeProgram kept = compiler.Compile(engine, local);
      const policy::NodeProgram fresh = policy::CompileNode(engine, local);
      ASSERT_TRUE(kept == fresh) << "seed " << seed << " step " << step;
      // Set ids are content hashes: equal programs name equal sets.
      ASSERT_EQ(kept.sets.size(), fresh.sets.size());
      ++compared;
      if (!fresh.sets.empty()) ++non_empty;
      Mutate(choices, objects, engine);
    }
  }
  EXPECT_GT(compared, 10000);
  EXPECT_GT(non_empty, compared / 5);  // many compares involve peer sets
}

// A compiler handed another engine starts over instead of trusting rule
// serials from the first.
TEST(NodeCompilerTest, AnotherEngineStartsOver) {
  testing::SeededChoices a_choices(1);
  testing::SeededChoices b_choices(2);
  policy::Engine a;
  for (const auto& o : testing::GenerateSmallCluster(a_choices)) a.Apply(o);
  policy::Engine b;
  for (const auto& o : testing::GenerateSmallCluster(b_choices)) b.Apply(o);
  policy::NodeCompiler compiler;
  ASSERT_TRUE(compiler.Compile(a, AllPodsLocal(a)) == policy::CompileNode(a, AllPodsLocal(a)));
  EXPECT_TRUE(compiler.Compile(b, AllPodsLocal(b)) == policy::CompileNode(b, AllPodsLocal(b)));
}

// Set ids are content hashes: a set whose id another set already has keeps
// its own members under a suffixed id; an equal set shares the entry.
TEST(SetIdsTest, ACollidingSetGetsItsOwnId) {
  const auto set_of = [](const char* ip) {
    policy::AddressSet set;
    set.addresses = {*IpAddress::Parse(ip)};
    return std::make_shared<const policy::AddressSet>(std::move(set));
  };
  std::map<std::string, policy::SharedAddressSet> sets;
  const policy::SharedAddressSet a = set_of("198.18.0.1");
  const policy::SharedAddressSet b = set_of("198.18.0.2");
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", a), "p1");
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", a), "p1");
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", set_of("198.18.0.1")), "p1") << "equal contents share";
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", b), "p1~2") << "a collision keeps its own members";
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", b), "p1~2");
  EXPECT_EQ(policy::internal::AddSet(sets, "p1", set_of("198.18.0.3")), "p1~3");
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_TRUE(*sets.at("p1") == *a);
  EXPECT_TRUE(*sets.at("p1~2") == *b);
}

// A pod "server" in namespace shop and a policy letting in the pods the
// given podSelector matches: one rule whose peers the tests below move.
std::string ServerAllowing(const std::string& pod_selector) {
  return R"(
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: shop, labels: {role: server}}
status: {podIP: 198.18.0.10}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-apps, namespace: shop}
spec:
  podSelector: {matchLabels: {role: server}}
  ingress:
  - from: [{podSelector: )" +
         pod_selector + R"(}]
)";
}

// Two pods of different classes share an address (a finished pod's, reused).
// When one moves to the other's class, its old class loses the address and
// the class it joins changes too while still holding it: the kept set must
// keep the address, as a fresh compile does.
TEST(NodeCompilerTest, AnAddressAnotherClassStillHoldsStaysWhenItsPodMoves) {
  const auto objects = [](const std::string& p_label) {
    const std::string yaml = ServerAllowing("{matchExpressions: [{key: app, operator: Exists}]}") + R"(
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: {app: )" +
                             p_label + R"(}}
status: {podIP: 198.18.0.20}
---
apiVersion: v1
kind: Pod
metadata: {name: q, namespace: shop, labels: {app: b}}
status: {podIP: 198.18.0.20}
---
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: shop, labels: {app: b}}
status: {podIP: 198.18.0.30}
)";
    return api::Decode(yaml, "t.yaml", {}).objects;
  };
  policy::Engine engine;
  for (const auto& o : objects("a")) engine.Apply(o);
  const std::map<std::string, std::string> local = {{"shop/server", "veth0"}};
  policy::NodeCompiler compiler;
  const policy::NodeProgram first = compiler.Compile(engine, local);
  ASSERT_EQ(first.pods.size(), 1u);
  for (const auto& o : objects("b")) {  // p moves from class a to class b; nothing else changes
    if (api::MetaOf(o).name == "p") engine.Apply(o);
  }
  const policy::NodeProgram kept = compiler.Compile(engine, local);
  const policy::NodeProgram fresh = policy::CompileNode(engine, local);
  EXPECT_TRUE(kept == fresh);
  const auto& allow = kept.pods.at("shop/server").ingress.allow;
  ASSERT_EQ(allow.size(), 1u);
  EXPECT_TRUE(kept.set(*allow[0].peers).Contains(*IpAddress::Parse("198.18.0.20")))
      << "q still has the address p took with it";
}

// The same equivalence where it is easiest to get wrong: a few pods moving
// between a few classes and taking each other's addresses, all of them peers
// of one rule.
TEST(NodeCompilerTest, KeptPeerSetsFollowPodsThatShareAddresses) {
  const auto pod = [](int n, const std::string& app, int ip) {
    const std::string yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p" + std::to_string(n) +
                             ", namespace: shop, labels: {app: " + app + "}}\nstatus: {podIP: 198.18.0." +
                             std::to_string(20 + ip) + "}\n";
    return api::Decode(yaml, "t.yaml", {}).objects.at(0);
  };
  const std::vector<api::Object> base =
      api::Decode(ServerAllowing("{matchExpressions: [{key: app, operator: In, values: [a, b]}]}"), "t.yaml",
                  {})
          .objects;
  ASSERT_EQ(base.size(), 2u);
  const std::map<std::string, std::string> local = {{"shop/server", "veth0"}};
  const char* apps[] = {"a", "b", "c"};
  int compared = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    testing::SeededChoices choices(seed);
    policy::Engine engine;
    for (const auto& o : base) engine.Apply(o);
    for (int n = 0; n < 4; ++n)
      engine.Apply(pod(n, apps[choices.Next(3)], static_cast<int>(choices.Next(3))));
    policy::NodeCompiler compiler;
    for (int step = 0; step < 30; ++step) {
      const policy::NodeProgram kept = compiler.Compile(engine, local);
      ASSERT_TRUE(kept == policy::CompileNode(engine, local)) << "seed " << seed << " step " << step;
      ++compared;
      const int n = static_cast<int>(choices.Next(4));
      if (choices.Coin(5)) {
        engine.Delete("Pod", "shop", "p" + std::to_string(n));
      } else {
        engine.Apply(pod(n, apps[choices.Next(3)], static_cast<int>(choices.Next(3))));
      }
    }
  }
  EXPECT_EQ(compared, 300 * 30);
}

// A reserved pod (programmed before its ADD) sends nothing yet, even what its
// policy allows; what it may receive is its policy's as for any pod.
TEST(NodeProgramTest, NothingIsAllowedFromAReservedPod) {
  const auto pod = [](const std::string& name, const std::string& ip) {
    return api::Decode("apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
                           ", namespace: shop, labels: {app: " + name + "}}\nstatus: {podIP: " + ip + "}\n",
                       "t.yaml", {})
        .objects.at(0);
  };
  policy::Engine engine;
  engine.Apply(pod("server", "198.18.0.20"));
  engine.Apply(pod("client", "198.18.0.21"));
  policy::NodeProgram program = policy::CompileNode(engine, {{"shop/server", ""}, {"shop/client", ""}});
  const IpAddress server = *IpAddress::Parse("198.18.0.20");
  const IpAddress client = *IpAddress::Parse("198.18.0.21");
  EXPECT_TRUE(program.Allows(client, server, api::Protocol::kTCP, 80));
  program.pods.at("shop/client").reserved = true;
  EXPECT_FALSE(program.Allows(client, server, api::Protocol::kTCP, 80));
  EXPECT_TRUE(program.Allows(server, client, api::Protocol::kTCP, 80));
}

}  // namespace
}  // namespace netpol
