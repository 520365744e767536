// Differential tests: the engine against the plain reference evaluator, the
// matrix against the engine, and incremental updates against a rebuild, on
// thousands of small random clusters (OVS tests its classifier the same way).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "api/validate.h"
#include "policy/engine.h"
#include "policy/matrix.h"
#include "testutil/generator.h"
#include "testutil/reference.h"

namespace netpol::testing {
namespace {

using policy::Engine;

// How many random clusters a test judges: all of them in the release tree, a tenth under
// the sanitizers (NETPOL_TEST_SEED_DIVISOR, set by the asan preset).
constexpr uint64_t Seeds(uint64_t full) {
  return full / NETPOL_TEST_SEED_DIVISOR;
}

Engine Build(const std::vector<api::Object>& objects) {
  Engine engine;
  for (const auto& o : objects) engine.Apply(o);
  return engine;
}

std::string Compare(const Engine& engine, const std::vector<api::Object>& objects) {
  return CompareEngineWithReference(engine, objects);
}

TEST(DifferentialTest, GeneratedObjectsAreValid) {
  for (uint64_t seed = 0; seed < Seeds(300); ++seed) {
    SeededChoices choices(seed);
    for (const auto& object : GenerateSmallCluster(choices)) {
      const api::Diagnostics d = api::Validate(object);
      ASSERT_TRUE(d.empty()) << "seed " << seed << ": " << d.front().ToString();
    }
  }
}

TEST(DifferentialTest, EngineMatrixAndReferenceAgree) {
  for (uint64_t seed = 0; seed < Seeds(3000); ++seed) {
    SeededChoices choices(seed);
    const std::vector<api::Object> objects = GenerateSmallCluster(choices);
    const std::string mismatch = Compare(Build(objects), objects);
    ASSERT_EQ(mismatch, "") << "seed " << seed;
  }
}

TEST(DifferentialTest, TieredObjectsAreValid) {
  for (uint64_t seed = 0; seed < Seeds(300); ++seed) {
    SeededChoices choices(seed);
    for (const auto& object : GenerateTieredCluster(choices)) {
      const api::Diagnostics d = api::Validate(object);
      for (const auto& diagnostic : d) {
        // domainNames outside Accept rules: a warning by design.
        ASSERT_EQ(diagnostic.severity, api::Severity::kWarning)
            << "seed " << seed << ": " << diagnostic.ToString();
      }
    }
  }
}

// ClusterNetworkPolicy tiers (docs/SEMANTICS.md §21) against the reference.
TEST(DifferentialTest, TiersAgreeWithReference) {
  for (uint64_t seed = 0; seed < Seeds(3000); ++seed) {
    SeededChoices choices(seed);
    const std::vector<api::Object> objects = GenerateTieredCluster(choices);
    const std::string mismatch = Compare(Build(objects), objects);
    ASSERT_EQ(mismatch, "") << "seed " << seed;
  }
}

// Tiers kept incrementally: from one tiered cluster to another, in a shuffled
// order, with verdicts asked in between, equals the reference on the target.
TEST(DifferentialTest, TiersIncrementalUpdatesEqualReference) {
  for (uint64_t seed = 0; seed < Seeds(1000); ++seed) {
    SeededChoices choices(seed);
    std::vector<api::Object> objects = GenerateTieredCluster(choices);
    SeededChoices other_choices(seed + 2000000);
    const std::vector<api::Object> other = GenerateTieredCluster(other_choices);
    std::mt19937_64 rng(seed);
    Engine engine = Build(other);
    ASSERT_EQ(Compare(engine, other), "") << "seed " << seed << " (start state)";
    std::shuffle(objects.begin(), objects.end(), rng);
    for (const auto& o : objects) {
      engine.Apply(o);
      const auto pods = engine.Pods();
      for (int k = 0; k < 4 && !pods.empty(); ++k) {
        (void)engine.Allowed({policy::Endpoint::OfPod(pods[rng() % pods.size()]),
                              policy::Endpoint::OfPod(pods[rng() % pods.size()]), api::Protocol::kTCP, 80});
      }
    }
    for (auto it = other.rbegin(); it != other.rend(); ++it) {
      const bool in_target = std::any_of(objects.begin(), objects.end(), [&](const api::Object& t) {
        return api::ObjectRef(t) == api::ObjectRef(*it);
      });
      if (!in_target) {
        const auto& m = api::MetaOf(*it);
        EXPECT_TRUE(engine.Delete(api::KindOf(*it), m.namespace_, m.name)) << api::ObjectRef(*it);
      }
    }
    ASSERT_EQ(Compare(engine, objects), "") << "seed " << seed;
  }
}

// Applying objects in any order, deleting and re-adding some, must give the
// same answers as building from scratch.
TEST(DifferentialTest, IncrementalUpdatesEqualRebuild) {
  for (uint64_t seed = 0; seed < Seeds(1500); ++seed) {
    SeededChoices choices(seed);
    std::vector<api::Object> objects = GenerateSmallCluster(choices);
    SeededChoices other_choices(seed + 1000000);
    std::vector<api::Object> other = GenerateSmallCluster(other_choices);

    std::mt19937_64 rng(seed);
    Engine engine;
    // Start from a different cluster, then move to `objects`.
    for (const auto& o : other) engine.Apply(o);
    // Answer every flow once so that the engine's per-class caches are built and
    // must then be kept exact through the changes below.
    ASSERT_EQ(Compare(engine, other), "") << "seed " << seed << " (start state)";
    std::shuffle(objects.begin(), objects.end(), rng);
    for (const auto& o : objects) {
      engine.Apply(o);
      // Touch a few flows between changes, building some caches again.
      const auto pods = engine.Pods();
      for (int k = 0; k < 4 && !pods.empty(); ++k) {
        (void)engine.Allowed({policy::Endpoint::OfPod(pods[rng() % pods.size()]),
                              policy::Endpoint::OfPod(pods[rng() % pods.size()]), api::Protocol::kTCP, 80});
      }
    }
    // Delete what the target lacks, namespaces last (the generator lists them first).
    for (auto it = other.rbegin(); it != other.rend(); ++it) {
      const api::Object& o = *it;
      const bool in_target = std::any_of(objects.begin(), objects.end(), [&](const api::Object& t) {
        return api::ObjectRef(t) == api::ObjectRef(o);
      });
      if (!in_target) {
        const auto& m = api::MetaOf(o);
        EXPECT_TRUE(engine.Delete(api::KindOf(o), m.namespace_, m.name)) << api::ObjectRef(o);
      }
    }
    const std::string mismatch = Compare(engine, objects);
    ASSERT_EQ(mismatch, "") << "seed " << seed;
  }
}

}  // namespace
}  // namespace netpol::testing
