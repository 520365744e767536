// Labels and label selectors (metav1.LabelSelector), with Kubernetes matching rules.
//
//   Labels pod_labels = {{"app", "np-test-wordpress"}, {"tier", "web"}};
//   LabelSelector selector;
//   selector.match_labels = {{"app", "np-test-wordpress"}};
//   selector.match_expressions.push_back(
//       {.key = "tier", .op = SelectorOperator::kIn, .values = {"web", "api"}});
//   bool hit = selector.Matches(pod_labels);  // true
//
// An empty selector matches everything; whether a selector is present at all is
// expressed by the caller (std::optional), because the API gives "absent" and
// "empty" different meanings in some places.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netpol::api {

using Labels = std::map<std::string, std::string, std::less<>>;

enum class SelectorOperator { kIn, kNotIn, kExists, kDoesNotExist };

std::string_view SelectorOperatorName(SelectorOperator op);

struct LabelSelectorRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kExists;
  std::vector<std::string> values;

  bool Matches(const Labels& labels) const;
  friend bool operator==(const LabelSelectorRequirement&, const LabelSelectorRequirement&) = default;
};

struct LabelSelector {
  Labels match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;

  bool empty() const { return match_labels.empty() && match_expressions.empty(); }
  bool Matches(const Labels& labels) const;
  // kubectl-style text: "app=web,tier in (a,b),!debug"; "<all>" for an empty selector.
  std::string ToString() const;
  friend bool operator==(const LabelSelector&, const LabelSelector&) = default;
};

// Parses the text form kubectl and the API's labelSelector parameter use:
// "a=b", "a==b", "a!=b", "a in (x,y)", "a notin (x)", "a", "!a", joined by commas.
// nullopt (with `error` set) when it is not one.
std::optional<LabelSelector> ParseLabelSelector(std::string_view text, std::string* error = nullptr);

// "k1=v1,k2=v2" for labels; "<none>" when empty.
std::string FormatLabels(const Labels& labels);

}  // namespace netpol::api
