#include "api/labels.h"

#include <algorithm>

namespace netpol::api {

std::string_view SelectorOperatorName(SelectorOperator op) {
  switch (op) {
    case SelectorOperator::kIn:
      return "In";
    case SelectorOperator::kNotIn:
      return "NotIn";
    case SelectorOperator::kExists:
      return "Exists";
    case SelectorOperator::kDoesNotExist:
      return "DoesNotExist";
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
    case SelectorOperator::kExists:
      return has;
    case SelectorOperator::kDoesNotExist:
      return !has;
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
      case SelectorOperator::kIn:
        add(r.key + " in (" + values + ")");
        break;
      case SelectorOperator::kNotIn:
        add(r.key + " notin (" + values + ")");
        break;
      case SelectorOperator::kExists:
        add(r.key);
        break;
      case SelectorOperator::kDoesNotExist:
        add("!" + r.key);
        break;
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

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<LabelSelector> ParseLabelSelector(std::string_view text, std::string* error) {
  LabelSelector out;
  const auto fail = [&](const std::string& why) -> std::optional<LabelSelector> {
    if (error != nullptr) *error = "unable to parse requirement: " + why;
    return std::nullopt;
  };
  // Split on commas outside parentheses.
  std::vector<std::string_view> terms;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] == '(') ++depth;
    if (i < text.size() && text[i] == ')') --depth;
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      const std::string_view term = Trim(text.substr(start, i - start));
      if (!term.empty()) terms.push_back(term);
      start = i + 1;
    }
  }
  for (std::string_view term : terms) {
    if (term.front() == '!') {
      out.match_expressions.push_back(
          {std::string(Trim(term.substr(1))), SelectorOperator::kDoesNotExist, {}});
      continue;
    }
    if (const size_t ne = term.find("!="); ne != std::string_view::npos) {
      out.match_expressions.push_back({std::string(Trim(term.substr(0, ne))),
                                       SelectorOperator::kNotIn,
                                       {std::string(Trim(term.substr(ne + 2)))}});
      continue;
    }
    if (const size_t eq = term.find('='); eq != std::string_view::npos) {
      const size_t value_at = term.substr(eq + 1, 1) == "=" ? eq + 2 : eq + 1;
      out.match_labels[std::string(Trim(term.substr(0, eq)))] = std::string(Trim(term.substr(value_at)));
      continue;
    }
    const size_t open = term.find('(');
    if (open == std::string_view::npos) {
      if (term.find(' ') != std::string_view::npos) return fail(std::string(term));
      out.match_expressions.push_back({std::string(term), SelectorOperator::kExists, {}});
      continue;
    }
    if (term.back() != ')') return fail(std::string(term));
    const std::string_view head = Trim(term.substr(0, open));
    const size_t space = head.rfind(' ');
    if (space == std::string_view::npos) return fail(std::string(term));
    const std::string_view key = Trim(head.substr(0, space));
    const std::string_view op = Trim(head.substr(space + 1));
    if (op != "in" && op != "notin") return fail(std::string(term));
    LabelSelectorRequirement r{
        std::string(key), op == "in" ? SelectorOperator::kIn : SelectorOperator::kNotIn, {}};
    std::string_view values = term.substr(open + 1, term.size() - open - 2);
    while (!values.empty()) {
      const size_t comma = values.find(',');
      r.values.emplace_back(Trim(values.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      values.remove_prefix(comma + 1);
    }
    out.match_expressions.push_back(std::move(r));
  }
  return out;
}

}  // namespace netpol::api
