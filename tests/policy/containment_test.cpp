// Containment and disjointness (policy/internal/containment.h): every "true" is
// checked against matching every value of a small universe, so a lint built on
// them never claims what is not so.
#include "policy/internal/containment.h"

#include <gtest/gtest.h>

#include <random>

namespace netpol::policy::internal {
namespace {

using api::LabelSelector;
using api::SelectorOperator;

// Every label set over keys a, b with values x, y, z (or absent).
std::vector<api::Labels> AllLabelSets() {
  const std::vector<std::string> values = {"", "x", "y", "z"};
  std::vector<api::Labels> out;
  for (const std::string& a : values) {
    for (const std::string& b : values) {
      api::Labels labels;
      if (!a.empty()) labels["a"] = a;
      if (!b.empty()) labels["b"] = b;
      out.push_back(labels);
    }
  }
  return out;
}

LabelSelector RandomSelector(std::mt19937& rng) {
  const std::vector<std::string> keys = {"a", "b"};
  const std::vector<std::string> values = {"x", "y", "z"};
  const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  LabelSelector s;
  const size_t requirements = pick(3);
  for (size_t i = 0; i < requirements; ++i) {
    const std::string& key = keys[pick(2)];
    if (pick(3) == 0) {
      s.match_labels[key] = values[pick(3)];
      continue;
    }
    api::LabelSelectorRequirement r;
    r.key = key;
    r.op = static_cast<SelectorOperator>(pick(4));
    if (r.op == SelectorOperator::kIn || r.op == SelectorOperator::kNotIn) {
      for (const std::string& v : values) {
        if (pick(2) == 0) r.values.push_back(v);
      }
      if (r.values.empty()) r.values.push_back(values[pick(3)]);
    }
    s.match_expressions.push_back(r);
  }
  return s;
}

TEST(ContainmentTest, SelectorContainmentIsNeverWrong) {
  std::mt19937 rng(17);
  const std::vector<api::Labels> universe = AllLabelSets();
  int proofs = 0;
  for (int i = 0; i < 20000; ++i) {
    const LabelSelector wide = RandomSelector(rng);
    const LabelSelector narrow = RandomSelector(rng);
    if (!SelectorContains(wide, narrow)) continue;
    ++proofs;
    for (const api::Labels& labels : universe) {
      ASSERT_TRUE(!narrow.Matches(labels) || wide.Matches(labels))
          << wide.ToString() << " does not contain " << narrow.ToString() << " at "
          << api::FormatLabels(labels);
    }
  }
  EXPECT_GT(proofs, 2000);  // the property is not vacuous
}

TEST(ContainmentTest, SelectorContainmentShownFromTheRequirements) {
  const auto parse = [](std::string_view text) { return api::ParseLabelSelector(text).value(); };
  struct Case {
    const char* wide;
    const char* narrow;
    bool contains;
  };
  for (const Case& c : std::vector<Case>{{"", "a=x", true},
                                         {"a=x", "a=x,b=y", true},
                                         {"a in (x,y)", "a=x", true},
                                         {"a", "a in (x,y)", true},
                                         {"a notin (y)", "a=x", true},
                                         {"a notin (y)", "!a", true},
                                         {"a notin (x)", "a notin (x,y)", true},
                                         {"!a", "!a,b=x", true},
                                         {"a=x", "", false},
                                         {"a=x", "a in (x,y)", false},
                                         {"a notin (x,y)", "a notin (x)", false},
                                         {"a=x,b=y", "a=x", false},
                                         {"!a", "b=x", false}}) {
    EXPECT_EQ(SelectorContains(parse(c.wide), parse(c.narrow)), c.contains) << c.wide << " vs " << c.narrow;
  }
  LabelSelector prod;
  prod.match_labels = {{"env", "prod"}};
  LabelSelector db;
  db.match_labels = {{"app", "db"}};
  EXPECT_TRUE(ShapeContains(PodShape{prod, {}}, PodShape{prod, db}));
  EXPECT_FALSE(ShapeContains(PodShape{prod, db}, PodShape{prod, {}}));
  EXPECT_FALSE(ShapeContains(PodShape{{}, db}, PodShape{prod, {}}));
}

IpPrefix Prefix(uint32_t address, int length) {
  return IpPrefix::Make(IpAddress::V4(address), length).value();
}

// Over 198.51.100.0/24: covered iff every address of `n` is in some prefix
// (the cover is exact, not only sound).
TEST(ContainmentTest, PrefixCoverIsExact) {
  std::mt19937 rng(5);
  const uint32_t base = 0xc6336400;  // 198.51.100.0
  int covered = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<IpPrefix> cover;
    const size_t n = rng() % 5;
    for (size_t k = 0; k < n; ++k) {
      cover.push_back(Prefix(base + (rng() % 256), 24 + static_cast<int>(rng() % 9)));
    }
    if (rng() % 4 == 0) cover.push_back(IpPrefix::Parse("2001:2::/48").value());
    const IpPrefix target = Prefix(base + (rng() % 256), 24 + static_cast<int>(rng() % 6));
    bool truth = true;
    const uint32_t first = target.address().v4();
    for (uint32_t a = first; a < first + (1U << (32 - target.length())); ++a) {
      bool in = false;
      for (const IpPrefix& c : cover) in = in || c.Contains(IpAddress::V4(a));
      truth = truth && in;
    }
    ASSERT_EQ(PrefixCovered(target, cover), truth) << target.ToString();
    covered += truth ? 1 : 0;
  }
  EXPECT_GT(covered, 100);
  // IPv6 halves are split on both words.
  EXPECT_TRUE(
      PrefixCovered(IpPrefix::Parse("2001:2::/63").value(),
                    {IpPrefix::Parse("2001:2::/64").value(), IpPrefix::Parse("2001:2:0:1::/64").value()}));
  EXPECT_TRUE(
      PrefixCovered(IpPrefix::Parse("2001:2::/96").value(),
                    {IpPrefix::Parse("2001:2::/97").value(), IpPrefix::Parse("2001:2::8000:0/97").value()}));
  EXPECT_FALSE(
      PrefixCovered(IpPrefix::Parse("2001:2::/96").value(), {IpPrefix::Parse("2001:2::/97").value()}));
}

PortRule Range(api::Protocol protocol, uint16_t first, uint16_t last) {
  PortRule p;
  p.protocol = protocol;
  p.first = first;
  p.last = last;
  return p;
}

// Numbers: exact against every port of a small range, both for cover and disjointness.
TEST(ContainmentTest, PortCoverAndDisjointnessAreExactForNumbers) {
  std::mt19937 rng(3);
  const auto random_entry = [&] {
    const uint16_t a = static_cast<uint16_t>(rng() % 60);
    const uint16_t b = static_cast<uint16_t>(a + rng() % 20);
    return Range(rng() % 3 == 0 ? api::Protocol::kUDP : api::Protocol::kTCP, a, b);
  };
  const auto matches = [](const PortRule& p, api::Protocol proto, uint16_t port) {
    return p.protocol == proto && p.first <= port && port <= p.last;
  };
  int covers = 0;
  int disjoint = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<PortRule> wide;
    for (size_t k = 1 + rng() % 4; k > 0; --k) wide.push_back(random_entry());
    const PortRule q = random_entry();
    bool cover_truth = true;
    bool disjoint_truth = true;
    for (uint16_t port = 0; port < 100; ++port) {
      bool in_wide = false;
      for (const PortRule& w : wide) in_wide = in_wide || matches(w, q.protocol, port);
      if (matches(q, q.protocol, port)) {
        cover_truth = cover_truth && in_wide;
        disjoint_truth = disjoint_truth && !in_wide;
      }
    }
    ASSERT_EQ(PortsCover(wide, q), cover_truth);
    ASSERT_EQ(PortsDisjoint(wide, {q}), disjoint_truth);
    covers += cover_truth ? 1 : 0;
    disjoint += disjoint_truth ? 1 : 0;
  }
  EXPECT_GT(covers, 100);
  EXPECT_GT(disjoint, 100);
}

TEST(ContainmentTest, NamedPortsAreCoveredByTheirNameOrAWholeProtocol) {
  PortRule http;
  http.protocol = api::Protocol::kTCP;
  http.name = "http";
  PortRule every_tcp;
  every_tcp.protocol = api::Protocol::kTCP;
  every_tcp.any_port = true;
  PortRule other = http;
  other.name = "metrics";
  EXPECT_TRUE(PortsCover({}, http));
  EXPECT_TRUE(PortsCover({http}, http));
  EXPECT_TRUE(PortsCover({every_tcp}, http));
  EXPECT_FALSE(PortsCover({other}, http));
  // The name may be any number on some pod: no range covers it, nor is it disjoint from one.
  EXPECT_FALSE(PortsCover({Range(api::Protocol::kTCP, 1, 65535)}, http));
  EXPECT_FALSE(PortsDisjoint({Range(api::Protocol::kTCP, 80, 80)}, {http}));
  EXPECT_TRUE(PortsDisjoint({Range(api::Protocol::kUDP, 80, 80)}, {http}));
  // No protocols (every port): covered by nothing narrower, disjoint from nothing.
  EXPECT_FALSE(PortsDisjoint({}, {http}));
}

TEST(ContainmentTest, DomainPatterns) {
  struct Case {
    const char* wide;
    const char* narrow;
    bool covers;
  };
  for (const Case& c : std::vector<Case>{{"example.com", "example.com", true},
                                         {"Example.COM.", "example.com", true},
                                         {"*.example.com", "api.example.com", true},
                                         {"*.example.com", "a.b.example.com", true},
                                         {"*.example.com", "*.example.com", true},
                                         {"*.example.com", "*.api.example.com", true},
                                         {"*.example.com", "example.com", false},
                                         {"*.example.com", "badexample.com", false},
                                         {"*.api.example.com", "*.example.com", false},
                                         {"api.example.com", "*.example.com", false},
                                         {"example.com", "example.org", false}}) {
    EXPECT_EQ(DomainCovers(c.wide, c.narrow), c.covers) << c.wide << " vs " << c.narrow;
  }
}

}  // namespace
}  // namespace netpol::policy::internal
