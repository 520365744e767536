// A YAML (or JSON) document as a JSON value, for configuration files netpol
// reads that are not API objects (a kubeconfig). Built on the same limited,
// fuzzed YAML tree as the manifest decoder.
//
//   Result<nlohmann::json> config = YamlToJson(text, "/root/.kube/config");
//   std::string server = (*config)["clusters"][0]["cluster"]["server"];
//
// Plain scalars true/false become booleans, null/~ (or nothing) null, and
// integers numbers; every other scalar is a string. An empty text is null;
// more than one document is an error.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace netpol::api {

Result<nlohmann::json> YamlToJson(std::string_view text, std::string_view name);
// Every document of a multi-document stream (empty documents left out).
Result<std::vector<nlohmann::json>> YamlDocumentsToJson(std::string_view text, std::string_view name);

}  // namespace netpol::api
