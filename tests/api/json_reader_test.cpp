// JSON text is read in place (internal/json_reader.h) instead of by libyaml,
// which read it before and still reads what the JSON reader gives up on. Both
// must give the same answer for every text: the same objects, the same
// diagnostics at the same lines and columns, in the same order, and the same
// field positions. Here on generated clusters written as JSON in several
// layouts, and on texts made to tell the readers apart.
#include "api/internal/json_reader.h"

#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "api/decode.h"
#include "api/encode.h"
#include "api/yaml_json.h"
#include "testutil/generator.h"

namespace netpol::api {
namespace {

using internal::JsonNode;
using internal::JsonText;

std::string Describe(const DecodeResult& r) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics) out += d.ToString() + "\n";
  return out;
}

// Decodes `text` with both readers and expects one answer; returns it.
DecodeResult ExpectReadAlike(const std::string& text, DecodeOptions options = {}) {
  options.json_reader = false;
  const DecodeResult yaml = Decode(text, "in.json", options);
  options.json_reader = true;
  DecodeResult json = Decode(text, "in.json", options);
  EXPECT_EQ(json.diagnostics, yaml.diagnostics) << "JSON reader:\n"
                                                << Describe(json) << "YAML reader:\n"
                                                << Describe(yaml) << text.substr(0, 2000);
  EXPECT_EQ(json.objects, yaml.objects) << text.substr(0, 2000);
  EXPECT_EQ(json.ignored, yaml.ignored) << text.substr(0, 2000);
  for (size_t i = 0; i < json.objects.size() && i < yaml.objects.size(); ++i) {
    const Provenance& a = MetaOf(json.objects[i]).source;
    const Provenance& b = MetaOf(yaml.objects[i]).source;
    EXPECT_EQ(a.where, b.where) << ObjectRef(json.objects[i]);
    EXPECT_EQ(a.fields == nullptr, b.fields == nullptr) << ObjectRef(json.objects[i]);
    if (a.fields != nullptr && b.fields != nullptr) {
      EXPECT_TRUE(*a.fields == *b.fields) << ObjectRef(json.objects[i]);
    }
  }
  return json;
}

// Whether the JSON reader reads `text` itself (rather than leaving it to libyaml).
bool JsonReaderTakes(const std::string& text) {
  JsonText json(text, 0);
  return static_cast<bool>(json.Root()) && !json.failed();
}

TEST(JsonReaderTest, GeneratedClustersInEveryLayout) {
  size_t objects = 0;
  for (uint64_t seed = 0; seed < 150; ++seed) {
    testing::SeededChoices choices(seed);
    const std::vector<Object> cluster = testing::GenerateSmallCluster(choices);
    Result<std::vector<nlohmann::json>> docs = YamlDocumentsToJson(Encode(cluster), "generated");
    ASSERT_TRUE(docs.ok()) << docs.error().message();
    // The encoder writes documents; a List holds them as one JSON text.
    const nlohmann::json as_list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", *docs}};
    for (const std::string& text :
         {as_list.dump(), as_list.dump(2), as_list.dump(4), as_list.dump(1, '\t')}) {
      ASSERT_TRUE(JsonReaderTakes(text)) << text.substr(0, 300);
      const DecodeResult r = ExpectReadAlike(text);
      objects += r.objects.size();
    }
  }
  EXPECT_GT(objects, 4000u);
}

TEST(JsonReaderTest, RealisticClusterWithAndWithoutPositions) {
  const std::vector<Object> cluster =
      testing::GenerateRealisticCluster({.namespaces = 5, .pods = 300, .policies = 60}, 11);
  Result<std::vector<nlohmann::json>> docs = YamlDocumentsToJson(Encode(cluster), "generated");
  ASSERT_TRUE(docs.ok());
  const std::string text = nlohmann::json({{"apiVersion", "v1"}, {"kind", "List"}, {"items", *docs}}).dump(4);
  EXPECT_EQ(ExpectReadAlike(text).objects.size(), cluster.size());
  EXPECT_EQ(ExpectReadAlike(text, {.field_positions = false}).objects.size(), cluster.size());
  EXPECT_TRUE(ExpectReadAlike(text, {.strict = true}).diagnostics.empty());
}

// Problems the decoder reports (not the readers): the same, at the same places.
TEST(JsonReaderTest, DecodingProblemsAtTheSamePlaces) {
  const char* cases[] = {
      // Types, enums, numbers as the YAML reader resolves them.
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a":true,"b":1.5,"c":null}},
          "spec":{"containers":[{"name":"c","ports":[{"containerPort":"80"},{"containerPort":1e400},
          {"containerPort":80.0},{"containerPort":-0},{"containerPort":99999999999999999999}]}]}})",
      R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"n"},
          "spec":{"podSelector":{"matchExpressions":[{"key":"a","operator":"Near"},7]},
          "policyTypes":["Sideways",1],"ingress":[{"ports":[{"port":"http"},{"port":8e1},{"port":[1]}]}]}})",
      // Keys given twice (the first value counts), unknown fields, escaped keys.
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b","\u006eamespace":"x"},"spec":{"x":1},"spec":{}})",
      R"({"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}],"items":[]})",
      // Not objects, lists in lists, missing kinds, other versions, kinds netpol skips.
      R"({"apiVersion":"v1","kind":"List","items":[1,{"kind":"List","items":[]},{"apiVersion":"v2","kind":"Pod"},
          {"kind":""},{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}]})",
      R"({"kind":"PodList","items":{"a":1}})",
      R"({})",
      // Positions: characters (not bytes) before a value on its line, and CRLF.
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
      "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\r\n"
      "\"labels\":{\"k\":\"\xc3\xa9\", \"n\": 5}}, \"spec\":{\"hostNetwork\":\"yes\"}}",
      "{\"apiVersion\":\"v1\",\r\"kind\":\"Pod\",\r\"metadata\":{\"name\":\"p\"},\r\"spec\":{\"containers\":"
      "7}}",
  };
  for (const char* c : cases) {
    SCOPED_TRACE(c);
    ASSERT_TRUE(JsonReaderTakes(c));
    const DecodeResult r = ExpectReadAlike(c);
    EXPECT_FALSE(r.diagnostics.empty());
  }
  // Two keys given twice, one unknown field (an error when strict).
  EXPECT_EQ(ExpectReadAlike(cases[2], {.strict = true}).diagnostics.size(), 3u);
}

// Texts the JSON reader leaves to libyaml, which reads them (or refuses them)
// as before: the answer is still the same.
TEST(JsonReaderTest, WhatLibyamlReadsOtherwiseIsLeftToIt) {
  const std::string pod = R"("apiVersion":"v1","kind":"Pod","metadata":{"name":"p"})";
  // With the object and its status: 100 collections open at most, as libyaml is let go.
  const std::string deep = std::string(98, '[') + std::string(98, ']');
  const std::string deeper = std::string(99, '[') + std::string(99, ']');
  const std::vector<std::string> refused = {
      "{" + pod + R"(,"status":{"x":[1 2]}})",     // invalid JSON where nothing is read
      "{" + pod + R"(,"status":{"x":["k":{}]}})",  // (skipping, simdjson reads "k": as a key)
      "{" + pod + R"(,"status":{"x":"v":1}})",
      "{" + pod + R"(,"status":{"x":tru}})",  // (libyaml: a plain scalar)
      "{" + pod + R"(,"status":{"x":01}})",
      "{" + pod + R"(,"status":{"x":"\x41"}})",          // an escape only YAML has
      "{" + pod + R"(,"status":{"x":"\ud83d\ude00"}})",  // surrogates: libyaml refuses them
      "{" + pod + ",\"status\":{\"x\":\"a\tb\"}}",       // a raw tab in a string
      "{" + pod +
          ",\"status\":{\"x\":\"a\xc2\x85"
          "b\"}}",  // NEL: a line break to libyaml
      "{" + pod +
          ",\"status\":{\"x\":\"a\xe2\x80\xa8"
          "b\"}}",
      "{" + pod +
          ",\"status\":{\"x\":\"a\xc2\x80"
          "b\"}}",  // a C1 control
      "{" + pod +
          ",\"status\":{\"x\":\"a\x7f"
          "b\"}}",                                                        // DEL
      "{" + pod + ",\"status\":{\"x\":\"a\xef\xbf\xbe\"}}",               // U+FFFE
      "{" + pod + ",\"status\":{\"x\":\"\xff\"}}",                        // not UTF-8
      "{" + pod + ",\"status\":{\"x\":" + deeper + "}}",                  // deeper than libyaml is let go
      "{" + pod + ",\"status\":{\"" + std::string(1100, 'k') + "\":1}}",  // past libyaml's simple-key limit
      "{" + pod + ",\"status\":{\"k\"\n:1}}",                             // a key's ':' on the next line
      "{" + pod + "}\n\t",                                                // a tab starting a line after it
      "{" + pod + "} {}",                                                 // something after it
      "{" + pod + "} # a comment",
      "\xef\xbb\xbf{" + pod + "}",                         // a byte-order mark
      "{apiVersion: v1, kind: Pod, metadata: {name: p}}",  // YAML flow, not JSON
      "[{" + pod + "}]",                                   // not an object
  };
  for (const std::string& text : refused) {
    SCOPED_TRACE(text.substr(0, 200));
    EXPECT_FALSE(JsonReaderTakes(text));
    ExpectReadAlike(text);
  }
  // At the limits, still its own.
  for (const std::string& text : {"{" + pod + ",\"status\":{\"x\":" + deep + "}}",
                                  "{" + pod + ",\"status\":{\"" + std::string(900, 'k') + "\":1}}",
                                  "{" + pod + ",\"status\":{\"k\"\t :\n1}}", "\n \r\n{" + pod + "}\n\n"}) {
    SCOPED_TRACE(text.substr(0, 200));
    EXPECT_TRUE(JsonReaderTakes(text));
    ExpectReadAlike(text);
  }
}

// `compact` (JSON without spaces) with spaces, tabs and line breaks of every
// kind between its tokens, and some keys and strings escaped, at random.
std::string Respace(const std::string& compact, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const char* spaces[] = {" ", "\n", "\r\n", "\r", "\t", "    ", "\n        ", " \r\n\t "};
  const auto space = [&] { return std::string(rng() % 3 == 0 ? spaces[rng() % std::size(spaces)] : ""); };
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < compact.size(); ++i) {
    const char c = compact[i];
    if (in_string) {
      if (c == '\\') {
        out += compact.substr(i, 2);
        ++i;
      } else if (c == '"') {
        out += c;
        in_string = false;
      } else if (c >= 'a' && c <= 'z' && rng() % 16 == 0) {
        out += "\\u00" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
      } else {
        out += c;
      }
      continue;
    }
    if (c == '"') {
      out += space() + c;
      in_string = true;
    } else if (c == '{' || c == '[' || c == ',' || c == ':') {
      out += c + space();
    } else if (c == '}' || c == ']') {
      out += space() + c;
    } else {
      out += c;
    }
  }
  return out;
}

// The reader finds keys, values and the ends of collections itself once
// simdjson has checked the text: wherever JSON allows spaces and escapes, it
// reads what libyaml reads, positions included.
TEST(JsonReaderTest, SpacesAndEscapesWhereverJsonAllowsThem) {
  size_t objects = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    testing::SeededChoices choices(seed);
    const std::vector<Object> cluster = testing::GenerateSmallCluster(choices);
    Result<std::vector<nlohmann::json>> docs = YamlDocumentsToJson(Encode(cluster), "generated");
    ASSERT_TRUE(docs.ok()) << docs.error().message();
    nlohmann::json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", *docs}};
    // Collections with nothing in them, and numbers, booleans and null in lists.
    list["items"].push_back({{"apiVersion", "v1"},
                             {"kind", "Pod"},
                             {"metadata", {{"name", "e"}, {"labels", nlohmann::json::object()}}},
                             {"spec", {{"containers", nlohmann::json::array()}}},
                             {"status", {{"x", {1, -2.5e3, true, false, nullptr, {}, {{"y", {}}}}}}}});
    const std::string text = Respace(list.dump(), seed);
    SCOPED_TRACE(text.substr(0, 300));
    ASSERT_TRUE(JsonReaderTakes(text));
    objects += ExpectReadAlike(text).objects.size();
  }
  EXPECT_GT(objects, 400u);
}

// The handles: lookups in any order and again, items, entries, positions.
TEST(JsonReaderTest, HandlesReadAnyOrderAndAgain) {
  const std::string text =
      "{\"a\": 1, \"b\": {\"x\": [true, \"s\\u00e9\", null, {\"y\": -2.5}]},\n"
      "  \"c\": \"\xc3\xa9t\xc3\xa9\", \"a\": 2, \"d\\\"q\": {}}";
  JsonText json(text, 0);
  const JsonNode root = json.Root();
  ASSERT_TRUE(root && root.IsMap());
  std::vector<std::string> keys;
  for (const internal::JsonKey& k : root.Keys()) keys.emplace_back(k.Scalar());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "a", "d\"q"}));
  EXPECT_EQ(root["c"].Scalar(), "\xc3\xa9t\xc3\xa9");
  EXPECT_FALSE(root["c"].IsPlain());
  EXPECT_EQ(root["a"].Scalar(), "1");  // the first of two, looked up after a later key
  EXPECT_TRUE(root["a"].IsPlain());
  EXPECT_EQ(root["a"].LineColumn(), (std::pair<int, int>{1, 7}));
  EXPECT_FALSE(root["zzz"]);
  const JsonNode b = root["b"];
  ASSERT_TRUE(b.IsMap());
  std::vector<std::string> items;
  b["x"].ForEachItem([&](size_t i, const JsonNode& item) {
    items.push_back(std::to_string(i) + (item.IsMap() ? "map:" + item["y"].Scalar() : item.Scalar()));
  });
  EXPECT_EQ(items, (std::vector<std::string>{"0true", "1s\xc3\xa9", "2null", "3map:-2.5"}));
  EXPECT_EQ(root["c"].LineColumn(), (std::pair<int, int>{2, 8}));      // after "  \"c\": "
  EXPECT_EQ(root["d\"q"].LineColumn(), (std::pair<int, int>{2, 31}));  // columns count characters
  EXPECT_EQ(root["b"]["x"].LineColumn(), (std::pair<int, int>{1, 21}));
  int entries = 0;
  root.ForEachEntry([&](const internal::JsonKey&, const JsonNode& value) { entries += value ? 1 : 0; });
  EXPECT_EQ(entries, 5);
  EXPECT_FALSE(json.failed());
}

}  // namespace
}  // namespace netpol::api
