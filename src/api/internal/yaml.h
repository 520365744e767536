// A small, safe YAML (and so JSON) document tree on top of libyaml's parser.
// Internal to src/api: only decode.cpp uses it.
//
//   YamlStream stream = ParseYaml(text);
//   if (stream.error) report(stream.error->message, stream.error->line, ...);
//   for (const YamlNode& doc : stream.documents) {
//     if (YamlNode kind = doc["kind"]; kind && kind.IsScalar()) ...
//   }
//
// Why not yaml-cpp: fuzzing found inputs of a few hundred bytes on which
// yaml-cpp 0.7 runs out of memory. libyaml is the reference C parser and is
// fuzzed continuously upstream. The tree is built with limits (depth, nodes
// added by alias expansion) so hostile input fails with an error instead of
// exhausting the machine.
//
// YamlNode is a cheap handle (a pointer); a handle from a missing key or index
// is "undefined" and converts to false, like yaml-cpp's, so lookups chain.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace netpol::api::internal {

struct YamlData;

class YamlNode {
 public:
  YamlNode() = default;
  explicit YamlNode(const YamlData* data) : data_(data) {}

  explicit operator bool() const { return data_ != nullptr; }
  bool IsNull() const;
  bool IsScalar() const;
  bool IsSequence() const;
  bool IsMap() const;
  // Scalar text ("" for non-scalars).
  const std::string& Scalar() const;
  // True for a plain (unquoted, untagged) scalar, whose meaning depends on its
  // text (number, boolean, null); quoted and block scalars are always strings.
  bool IsPlain() const;
  // 1-based position where the node starts.
  int line() const;
  int column() const;

  size_t size() const;                              // items of a sequence, entries of a map
  YamlNode operator[](size_t index) const;          // sequence item
  YamlNode operator[](std::string_view key) const;  // map value for a scalar key
  // Map entries in document order.
  std::vector<std::pair<YamlNode, YamlNode>> entries() const;

 private:
  const YamlData* data_ = nullptr;
};

struct YamlError {
  std::string message;
  int line = 0;
  int column = 0;
};

struct YamlStream {
  std::vector<YamlNode> documents;
  std::optional<YamlError> error;
  std::shared_ptr<void> storage;  // owns every node the handles point to
};

// Limits against hostile input, not against size: the nodes written out in the
// text cost memory in proportion to the text, so they are not counted (a
// `kubectl get pods -A -o json` of a large cluster is tens of millions of
// them); what aliases add by expansion (an alias of an anchored subtree counts
// as the subtree's nodes, aliases within it expanded) is, over the whole input.
struct YamlLimits {
  size_t max_depth = 100;
  size_t max_alias_nodes = 2'000'000;
};

YamlStream ParseYaml(std::string_view text, const YamlLimits& limits = {});

// The same tree for an already parsed JSON value (an object from the API),
// as ParseYaml would build it from the value's JSON text: strings are quoted
// scalars, numbers, booleans and null plain ones. No positions (line 0).
YamlStream TreeFromJson(const nlohmann::json& value);

}  // namespace netpol::api::internal
