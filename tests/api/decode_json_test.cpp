// Objects from the API are decoded from their parsed JSON (DecodeJson /
// LoadJson), not from text: the result must be what decoding the same JSON as
// text gives, objects and diagnostics alike.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "api/encode.h"
#include "api/load.h"
#include "api/yaml_json.h"
#include "testutil/generator.h"

namespace netpol::api {
namespace {

// Diagnostics without positions (DecodeJson has none), so in no particular order.
std::multiset<std::string> Problems(const LoadResult& r) {
  std::multiset<std::string> out;
  for (const Diagnostic& d : r.diagnostics) {
    out.insert(std::to_string(static_cast<int>(d.severity)) + "|" + d.object + "|" + d.field + "|" +
               d.detail);
  }
  return out;
}

void ExpectSame(const nlohmann::json& object) {
  const LoadResult text = LoadText(object.dump(), "x", {});
  const LoadResult parsed = LoadJson(object, "x", {});
  EXPECT_EQ(parsed.objects, text.objects) << object.dump();
  EXPECT_EQ(Problems(parsed), Problems(text)) << object.dump();
  EXPECT_EQ(parsed.ignored, text.ignored) << object.dump();
}

TEST(DecodeJsonTest, GeneratedClustersDecodeAsFromText) {
  size_t objects = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    testing::SeededChoices choices(seed);
    for (const Object& o : testing::GenerateSmallCluster(choices)) {
      Result<nlohmann::json> json = YamlToJson(Encode({o}), "generated");
      ASSERT_TRUE(json.ok()) << json.error().message();
      ExpectSame(*json);
      ++objects;
    }
  }
  EXPECT_GT(objects, 2000u);
}

TEST(DecodeJsonTest, InvalidObjectsReportTheSameProblems) {
  const char* cases[] = {
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"http"}]}]}})",
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":70000}]}]}})",
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"P_bad","labels":{"a":true}},"spec":{"containers":[]}})",
      R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"n"},"spec":{"podSelector":{},"ingress":[{"ports":[{"port":80,"endPort":70}]}]}})",
      R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"n"},"spec":{"podSelector":{},"egress":[{"to":[{"ipBlock":{"cidr":"198.18.0.0/33"}}]}],"policyTypes":["Sideways"]}})",
      R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"n"},"spec":{"podSelector":{"matchExpressions":[{"key":"a","operator":"In"}]},"unknown":1}})",
      R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns","labels":{"n":null,"x":1.5}}})",
      R"({"apiVersion":"v1","kind":"Pod","metadata":null})",
      R"([1,2])",
  };
  for (const char* c : cases) {
    SCOPED_TRACE(c);
    const nlohmann::json object = nlohmann::json::parse(c);
    ExpectSame(object);
    EXPECT_FALSE(LoadJson(object, "x", {}).diagnostics.empty());
  }
  // A kind without bearing on policy is counted, not an error, either way.
  const nlohmann::json service = {{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", "s"}}}};
  ExpectSame(service);
  EXPECT_EQ(LoadJson(service, "x", {}).ignored.at("Service"), 1);
}

}  // namespace
}  // namespace netpol::api
