// InstalledPod keeps what PodElements holds, compactly: the same diffs, the
// same content after edits.
#include "dataplane/nft/installed.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"

namespace netpol::dataplane::nft {
namespace {

// Every local pod's elements from a small random cluster.
std::vector<PodElements> Renderings(uint64_t seed) {
  testing::SeededChoices choices(seed);
  policy::Engine engine;
  for (const auto& o : testing::GenerateSmallCluster(choices)) engine.Apply(o);
  std::map<std::string, std::string> local;
  for (const policy::PodId id : engine.Pods())
    local[engine.pod(id).FullName()] = "veth-" + engine.pod(id).name;
  const policy::NodeProgram program = policy::CompileNode(engine, local);
  std::vector<PodElements> out;
  for (const auto& [name, pod] : program.pods) out.push_back(RenderPod(name, pod, program, {}));
  return out;
}

TEST(InstalledPodTest, DiffsAndEditsAsPodElementsDo) {
  int pairs = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<PodElements> pods = Renderings(seed);
    pods.push_back({});  // and nothing at all
    for (size_t i = 0; i < pods.size(); ++i) {
      const PodElements& a = pods[i];
      const PodElements& b = pods[(i + 1) % pods.size()];
      const InstalledPod installed = InstalledPod::From(a);
      ASSERT_EQ(installed.Expand(), a);
      // Find answers as the rendering does, for its elements and the other's.
      for (const PodElements* side : {&a, &b}) {
        for (const auto& [set, members] : *side) {
          for (const auto& [element, origin] : members) {
            const auto it = a.find(set);
            const std::string* found = installed.Find(set, element);
            if (it != a.end() && it->second.contains(element)) {
              ASSERT_NE(found, nullptr);
              EXPECT_EQ(*found, it->second.at(element));
            } else {
              EXPECT_EQ(found, nullptr);
            }
          }
        }
      }
      EXPECT_EQ(installed.Find("no_such_set", Element::Of({Field::Address(*IpAddress::Parse("198.18.0.1"))})),
                nullptr);
      const PodEdits expected = DiffElements(a, b);
      const PodEdits got = installed.DiffTo(b);
      ASSERT_EQ(got.added, expected.added);
      ASSERT_EQ(got.removed, expected.removed);
      // After the edits: b, comments included (an element under another
      // origin was replaced).
      InstalledPod edited = installed;
      edited.Apply(got);
      ASSERT_EQ(edited.Expand(), b);
      ++pairs;
    }
  }
  EXPECT_GT(pairs, 400);
}

// A pod whose elements are re-commented again and again (policies replaced)
// keeps only the origins its elements name, give or take the slack between
// compactions.
TEST(InstalledPodTest, ReplacedOriginsAreDropped) {
  PodElements elements;
  for (int i = 0; i < 50; ++i)
    elements["in_exact_v4"][Element::Of({Field::Address(IpAddress::V4(0xc6120100 + static_cast<uint32_t>(i))),
                                         Field::Proto(6), Field::Port(80)})] = "a";
  InstalledPod pod = InstalledPod::From(elements);
  for (int round = 0; round < 200; ++round) {
    PodElements next = elements;
    for (auto& [element, origin] : next["in_exact_v4"])
      origin = "policy-" + std::to_string(round) + " ingress[0]";
    pod.Apply(pod.DiffTo(next));
    ASSERT_EQ(pod.Expand(), next);
    ASSERT_LE(pod.origin_count(), 17u) << "round " << round;
  }
}

}  // namespace
}  // namespace netpol::dataplane::nft
