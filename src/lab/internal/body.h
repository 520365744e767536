// A JSON request body read as kube-apiserver's decoder (sigs.k8s.io/json,
// Go's encoding/json with Kubernetes' strict options) reads it, where a plain
// JSON parser would lose what matters: a field given twice.
//
//   Result<Body> body = DecodeBody(req.body, Repeats::kDecodeInto);
//   for (const Body::Field& f : body->duplicates) ...   // "metadata.name", where it was repeated
//
// kube-apiserver reports each field given twice (`duplicate field
// "metadata.name"`, the path as its decoder names it, once however often the
// field is repeated), with the unknown fields, in the order its decoder meets
// them: a 400 under fieldValidation=Strict, a Warning under Warn, nothing
// under Ignore. The value is what it then stores, which is not always the last:
//
// - kDecodeInto, a body decoded into its kind's Go type (a create's or an
//   update's object): a repeated field is decoded again into what the first
//   occurrence left. A scalar or null is replaced; an object is filled further
//   (a struct keeps the fields the second occurrence does not name, a map the
//   keys), a list element by element (element i into element i, then cut to the
//   second list's length). Exact for the kinds the lab serves (their objects
//   are structs or maps of scalars) but in two corners: a null where Go keeps
//   a value type's old value (a repeated `"name": null`) reads as null here,
//   and a list given a third time, longer than the second, does not get back
//   the first's elements that Go's reuse of the slice's storage gives back.
// - kLastWins, a body decoded into map[string]interface{} (a merge or strategic
//   merge patch) or a list of JSON patch operations' values: the last value wins.
//
// Checked against kube-apiserver 1.34.4 and its sources: k8s.io/apimachinery
// v0.34.4 (serializer/json, runtime/error.go) and sigs.k8s.io/json
// (internal/golang/encoding/json: object, array, kubernetes_patch.go).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace netpol::lab::internal {

using Json = nlohmann::json;

enum class Repeats { kDecodeInto, kLastWins };

// (The NOLINT: clang-tidy 14 finds a throw behind nlohmann::json's noexcept
// move constructor, which this struct's implicit one calls.)
struct Body {  // NOLINT(bugprone-exception-escape)
  // A field by its decoder path ("spec.ingress[0].from", "[0].op") and the
  // position where the decoder meets it (keys counted in document order).
  struct Field {
    std::string path;
    size_t position = 0;
  };
  Json value;
  // Each field given more than once, where it is given the second time.
  std::vector<Field> duplicates;
  // Where a field first appears: unknown fields are reported there.
  std::optional<size_t> FirstPosition(const std::string& path) const;

  std::map<std::string, size_t, std::less<>> first;
};

// The parse error (nlohmann's message, as Json::parse words it) when `text`
// is not JSON.
[[nodiscard]] Result<Body> DecodeBody(std::string_view text, Repeats repeats);

}  // namespace netpol::lab::internal
