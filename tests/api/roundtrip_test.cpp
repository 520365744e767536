// decode(encode(x)) == x for every kind, on generated clusters and on the
// examples, so `-o yaml` output and stored state read back unchanged.
#include <gtest/gtest.h>

#include "api/decode.h"
#include "api/encode.h"
#include "api/load.h"
#include "testutil/generator.h"
#include "testutil/golden.h"

namespace netpol::api {
namespace {

void ExpectRoundTrip(const std::vector<Object>& objects) {
  const std::string text = Encode(objects);
  const DecodeResult back = Decode(text, "encoded.yaml", {});
  for (const auto& d : back.diagnostics) ADD_FAILURE() << d.ToString() << "\n" << text;
  ASSERT_EQ(back.objects.size(), objects.size()) << text;
  for (size_t i = 0; i < objects.size(); ++i) {
    EXPECT_TRUE(back.objects[i] == objects[i]) << ObjectRef(objects[i]) << "\n" << Encode(objects[i]);
  }
}

TEST(RoundTripTest, GeneratedSmallClusters) {
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SCOPED_TRACE(seed);
    testing::SeededChoices choices(seed);
    ExpectRoundTrip(testing::GenerateSmallCluster(choices));
  }
}

TEST(RoundTripTest, GeneratedRealisticCluster) {
  ExpectRoundTrip(testing::GenerateRealisticCluster({.namespaces = 5, .pods = 200, .policies = 40}, 3));
}

TEST(RoundTripTest, ExamplesAndEveryWorkloadKind) {
  const LoadResult loaded = LoadManifests({testing::SourceDir() + "/examples/wordpress"}, {}, std::cin);
  ASSERT_TRUE(loaded.ok());
  ExpectRoundTrip(loaded.objects);
  std::vector<Object> workloads;
  for (int k = 0; k <= static_cast<int>(WorkloadKind::kCronJob); ++k) {
    Workload w;
    w.kind = static_cast<WorkloadKind>(k);
    w.metadata.name = "w" + std::to_string(k);
    w.metadata.namespace_ = "ns";
    w.replicas = w.kind == WorkloadKind::kDaemonSet ? 1 : 2;
    w.pod_template.labels = {{"app", "w"}};
    LabelSelector s;
    s.match_labels = {{"app", "w"}};
    w.selector = s;
    Container c;
    c.name = "c";
    c.command = {"sleep", "1"};
    c.env = {{"A", "1"}};
    c.ports = {{"http", 80, Protocol::kTCP}, {"", 53, Protocol::kUDP}};
    w.pod_template.spec.containers.push_back(c);
    workloads.push_back(w);
  }
  ExpectRoundTrip(workloads);
}

}  // namespace
}  // namespace netpol::api
