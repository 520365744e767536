#include "api/labels.h"

#include <gtest/gtest.h>

namespace netpol::api {
namespace {

TEST(LabelSelectorTest, MatchingTable) {
  const Labels web = {{"app", "web"}, {"tier", "front"}};
  const Labels bare = {};
  struct Case {
    const char* name;
    LabelSelector selector;
    bool web;
    bool bare;
  };
  const auto expr = [](std::string key, SelectorOperator op, std::vector<std::string> values) {
    LabelSelector s;
    s.match_expressions.push_back({std::move(key), op, std::move(values)});
    return s;
  };
  LabelSelector match_labels;
  match_labels.match_labels = {{"app", "web"}};
  LabelSelector mismatch;
  mismatch.match_labels = {{"app", "db"}};
  LabelSelector both = match_labels;
  both.match_expressions.push_back({"tier", SelectorOperator::kNotIn, {"front"}});
  const Case cases[] = {
      {"empty selects everything", LabelSelector{}, true, true},
      {"matchLabels", match_labels, true, false},
      {"matchLabels mismatch", mismatch, false, false},
      {"In", expr("app", SelectorOperator::kIn, {"db", "web"}), true, false},
      {"In other values", expr("app", SelectorOperator::kIn, {"db"}), false, false},
      {"NotIn", expr("app", SelectorOperator::kNotIn, {"db"}), true, true},
      {"NotIn excludes", expr("app", SelectorOperator::kNotIn, {"web"}), false, true},
      {"Exists", expr("tier", SelectorOperator::kExists, {}), true, false},
      {"DoesNotExist", expr("tier", SelectorOperator::kDoesNotExist, {}), false, true},
      {"matchLabels AND matchExpressions", both, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.selector.Matches(web), c.web);
    EXPECT_EQ(c.selector.Matches(bare), c.bare);
  }
}

TEST(LabelSelectorTest, ToStringIsKubectlLike) {
  LabelSelector s;
  EXPECT_EQ(s.ToString(), "<all>");
  s.match_labels = {{"app", "web"}};
  s.match_expressions.push_back({"tier", SelectorOperator::kIn, {"a", "b"}});
  s.match_expressions.push_back({"debug", SelectorOperator::kDoesNotExist, {}});
  EXPECT_EQ(s.ToString(), "app=web,tier in (a,b),!debug");
  EXPECT_EQ(FormatLabels({{"a", "1"}, {"b", "2"}}), "a=1,b=2");
  EXPECT_EQ(FormatLabels({}), "<none>");
}

}  // namespace
}  // namespace netpol::api
