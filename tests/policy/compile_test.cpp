// NodeCompiler, which keeps peer sets between compiles, must always produce
// what a fresh CompileNode does on the same engine state.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>
#include <vector>

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
// or comes back with the labels of another object of its kind.
void Mutate(testing::Choices& choices, const std::vector<api::Object>& objects, policy::Engine& engine) {
  const api::Object& picked = objects[choices.Next(static_cast<uint32_t>(objects.size()))];
  const api::ObjectMeta& meta = api::MetaOf(picked);
  switch (choices.Next(3)) {
    case 0:
      engine.Delete(api::KindOf(picked), meta.namespace_, meta.name);
      return;
    case 1:
      engine.Apply(picked);
      return;
    default: {
      api::Object changed = picked;
      const api::Object& other = objects[choices.Next(static_cast<uint32_t>(objects.size()))];
      if (picked.index() == other.index()) api::MetaOf(changed).labels = api::MetaOf(other).labels;
      if (auto* pod = std::get_if<api::Pod>(&changed); pod != nullptr && choices.Coin()) {
        // An address change without a label change.
        pod->pod_ips = {choices.Coin() ? "198.18.250." + std::to_string(choices.Next(250) + 1)
                                       : "2001:2::250:" + std::to_string(choices.Next(250) + 1)};
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

}  // namespace
}  // namespace netpol
