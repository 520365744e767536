// Differential tests: the engine against the plain reference evaluator, the
// matrix against the engine, and incremental updates against a rebuild, on
// thousands of small random clusters (OVS tests its classifier the same way).
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "api/validate.h"
#include "policy/engine.h"
#include "policy/matrix.h"
#include "testutil/generator.h"
#include "testutil/reference.h"

namespace netpol::testing {
namespace {

using policy::Endpoint;
using policy::Engine;
using policy::PortProto;

const std::vector<PortProto>& Ports() {
  static const std::vector<PortProto> ports = [] {
    std::vector<PortProto> out;
    for (const uint16_t port : {uint16_t{9}, uint16_t{53}, uint16_t{79}, uint16_t{80}, uint16_t{81},
                                uint16_t{8080}, uint16_t{8081}}) {
      for (const auto proto : {api::Protocol::kTCP, api::Protocol::kUDP, api::Protocol::kSCTP}) {
        out.push_back({proto, port});
      }
    }
    return out;
  }();
  return ports;
}

Engine Build(const std::vector<api::Object>& objects) {
  Engine engine;
  for (const auto& o : objects) engine.Apply(o);
  return engine;
}

// Compares every pod pair and port; returns a description of the first mismatch.
std::string Compare(const Engine& engine, const std::vector<api::Object>& objects) {
  const ReferenceEvaluator ref(objects);
  const policy::Matrix matrix = policy::ComputeMatrix(engine, Ports());
  const auto pods = engine.Pods();
  if (pods.size() != ref.pods().size()) return "pod count differs";
  for (size_t i = 0; i < pods.size(); ++i) {
    for (size_t j = 0; j < pods.size(); ++j) {
      const policy::Pod& a = engine.pod(pods[i]);
      const policy::Pod& b = engine.pod(pods[j]);
      const auto find = [&](const policy::Pod& p) {
        return std::find_if(ref.pods().begin(), ref.pods().end(), [&](const RefPod& r) {
          return r.namespace_ == p.namespace_ && r.name == p.name;
        });
      };
      const auto ra = find(a);
      const auto rb = find(b);
      if (ra == ref.pods().end() || rb == ref.pods().end()) return "pod missing in reference";
      for (size_t p = 0; p < Ports().size(); ++p) {
        const PortProto& pp = Ports()[p];
        const bool want = ref.Allowed(*ra, *rb, pp.protocol, pp.port);
        const policy::Flow flow{Endpoint::OfPod(pods[i]), Endpoint::OfPod(pods[j]), pp.protocol, pp.port};
        const bool fast = engine.Allowed(flow);
        const bool full = engine.Evaluate(flow).allowed;
        const bool mat = matrix.Allowed(p, i, j);
        if (fast != want || full != want || mat != want) {
          return a.FullName() + " -> " + b.FullName() + " " + pp.ToString() + ": reference " +
                 std::to_string(want) + ", Allowed " + std::to_string(fast) + ", Evaluate " +
                 std::to_string(full) + ", matrix " + std::to_string(mat);
        }
      }
    }
  }
  return "";
}

TEST(DifferentialTest, GeneratedObjectsAreValid) {
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SeededChoices choices(seed);
    for (const auto& object : GenerateSmallCluster(choices)) {
      const api::Diagnostics d = api::Validate(object);
      ASSERT_TRUE(d.empty()) << "seed " << seed << ": " << d.front().ToString();
    }
  }
}

TEST(DifferentialTest, EngineMatrixAndReferenceAgree) {
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    SeededChoices choices(seed);
    const std::vector<api::Object> objects = GenerateSmallCluster(choices);
    const std::string mismatch = Compare(Build(objects), objects);
    ASSERT_EQ(mismatch, "") << "seed " << seed;
  }
}

// Applying objects in any order, deleting and re-adding some, must give the
// same answers as building from scratch.
TEST(DifferentialTest, IncrementalUpdatesEqualRebuild) {
  for (uint64_t seed = 0; seed < 1500; ++seed) {
    SeededChoices choices(seed);
    std::vector<api::Object> objects = GenerateSmallCluster(choices);
    SeededChoices other_choices(seed + 1000000);
    std::vector<api::Object> other = GenerateSmallCluster(other_choices);

    std::mt19937_64 rng(seed);
    Engine engine;
    // Start from a different cluster, then move to `objects`.
    for (const auto& o : other) engine.Apply(o);
    std::shuffle(objects.begin(), objects.end(), rng);
    for (const auto& o : objects) engine.Apply(o);
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
