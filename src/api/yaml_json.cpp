#include "api/yaml_json.h"

#include <string>

#include "api/internal/yaml.h"

namespace netpol::api {
namespace {

nlohmann::json ToJson(const internal::YamlNode& node) {
  if (!node || node.IsNull()) return nullptr;
  if (node.IsScalar()) {
    const std::string& text = node.Scalar();
    if (node.IsPlain()) {
      if (text == "true" || text == "True" || text == "TRUE") return true;
      if (text == "false" || text == "False" || text == "FALSE") return false;
      if (text.empty() || text == "null" || text == "~") return nullptr;
      // Plain integers are numbers (as in JSON); anything else stays text.
      const bool negative = text[0] == '-';
      if (text.size() > (negative ? 1u : 0u) && text.size() < 19 &&
          text.find_first_not_of("0123456789", negative ? 1 : 0) == std::string::npos) {
        return std::stoll(text);
      }
    }
    return text;
  }
  if (node.IsSequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < node.size(); ++i) out.push_back(ToJson(node[i]));
    return out;
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : node.entries()) {
    const std::string name = key.IsScalar() ? key.Scalar() : "";
    if (!out.contains(name)) out[name] = ToJson(value);  // the first of a repeated key
  }
  return out;
}

}  // namespace

Result<nlohmann::json> YamlToJson(std::string_view text, std::string_view name) {
  const internal::YamlStream stream = internal::ParseYaml(text);
  if (stream.error) {
    return InvalidArgument(std::string(name) + ":" + std::to_string(stream.error->line) + ":" +
                           std::to_string(stream.error->column) + ": " + stream.error->message);
  }
  if (stream.documents.empty()) return nlohmann::json(nullptr);
  if (stream.documents.size() > 1)
    return InvalidArgument(std::string(name) + ": more than one YAML document");
  return ToJson(stream.documents.front());
}

}  // namespace netpol::api

namespace netpol::api {

Result<std::vector<nlohmann::json>> YamlDocumentsToJson(std::string_view text, std::string_view name) {
  const internal::YamlStream stream = internal::ParseYaml(text);
  if (stream.error) {
    return InvalidArgument(std::string(name) + ":" + std::to_string(stream.error->line) + ":" +
                           std::to_string(stream.error->column) + ": " + stream.error->message);
  }
  std::vector<nlohmann::json> out;
  for (const internal::YamlNode& doc : stream.documents) {
    if (doc && !doc.IsNull()) out.push_back(ToJson(doc));
  }
  return out;
}

}  // namespace netpol::api
