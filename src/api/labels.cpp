#include "api/labels.h"

#include <algorithm>

namespace netpol::api {

std::string_view SelectorOperatorName(SelectorOperator op) {
  switch (op) {
    case SelectorOperator::kIn: return "In";
    case SelectorOperator::kNotIn: return "NotIn";
    case SelectorOperator::kExists: return "Exists";
    case SelectorOperator::kDoesNotExist: return "DoesNotExist";
  }
  return "?";
}

bool LabelSelectorRequirement::Matches(const Labels& labels) const {
  const auto it = labels.find(key);
  const bool has = it != labels.end();
  switch (op) {
    case SelectorOperator::kIn:
      return has && std::find(values.begin(), values.end(), it->second) != values.end();
    case SelectorOperator::kNotIn:
      // As in apimachinery: a missing key satisfies NotIn.
      return !has || std::find(values.begin(), values.end(), it->second) == values.end();
    case SelectorOperator::kExists: return has;
    case SelectorOperator::kDoesNotExist: return !has;
  }
  return false;
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const auto& [key, value] : match_labels) {
    const auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return std::all_of(match_expressions.begin(), match_expressions.end(),
                     [&](const LabelSelectorRequirement& r) { return r.Matches(labels); });
}

std::string LabelSelector::ToString() const {
  if (empty()) return "<all>";
  std::string out;
  const auto add = [&](const std::string& part) {
    if (!out.empty()) out += ",";
    out += part;
  };
  for (const auto& [key, value] : match_labels) add(key + "=" + value);
  for (const auto& r : match_expressions) {
    std::string values;
    for (const auto& v : r.values) values += (values.empty() ? "" : ",") + v;
    switch (r.op) {
      case SelectorOperator::kIn: add(r.key + " in (" + values + ")"); break;
      case SelectorOperator::kNotIn: add(r.key + " notin (" + values + ")"); break;
      case SelectorOperator::kExists: add(r.key); break;
      case SelectorOperator::kDoesNotExist: add("!" + r.key); break;
    }
  }
  return out;
}

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "<none>";
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out += ",";
    out += key + "=" + value;
  }
  return out;
}

}  // namespace netpol::api
