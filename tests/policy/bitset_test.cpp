// DynamicBitset holds only a window of words: every operation must still act
// as a plain set of ids would, including between sets whose windows lie apart.
#include "policy/internal/bitset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <set>
#include <vector>

namespace netpol::policy::internal {
namespace {

std::set<size_t> Members(const DynamicBitset& bits) {
  std::set<size_t> out;
  size_t last = 0;
  bool first = true;
  bits.ForEach([&](size_t i) {
    EXPECT_TRUE(first || i > last) << "ForEach out of order at " << i;
    first = false;
    last = i;
    out.insert(i);
  });
  return out;
}

TEST(DynamicBitsetTest, HoldsOnlyTheWordsBetweenItsLowestAndHighestBit) {
  DynamicBitset bits;
  bits.set(40'001);
  bits.set(40'060);
  EXPECT_EQ(bits.memory_bytes(), 8U);  // one word, not 626
  EXPECT_TRUE(bits.test(40'001));
  EXPECT_FALSE(bits.test(1));
  EXPECT_FALSE(bits.test(1'000'000));
  bits.set(39'999);  // the word below: the window grows downwards
  EXPECT_EQ(Members(bits), (std::set<size_t>{39'999, 40'001, 40'060}));
}

TEST(DynamicBitsetTest, OrOfAnEmptyOrZeroSetKeepsTheWindow) {
  DynamicBitset bits;
  bits.set(5);
  DynamicBitset zeros;
  zeros.set(90'000);
  zeros.reset(90'000);
  bits |= zeros;
  EXPECT_EQ(bits.memory_bytes(), 8U);
  EXPECT_EQ(Members(bits), (std::set<size_t>{5}));
}

// Random operations on sets with far-apart windows, against std::set.
TEST(DynamicBitsetTest, ActsAsASetOfIds) {
  std::mt19937_64 rng(7);
  const std::vector<size_t> regions = {0, 700, 40'000, 41'000};
  const auto random_id = [&] { return regions[rng() % regions.size()] + rng() % 300; };
  for (int round = 0; round < 200; ++round) {
    DynamicBitset a, b;
    std::set<size_t> sa, sb;
    for (int k = 0; k < 60; ++k) {
      const size_t i = random_id();
      switch (rng() % 4) {
        case 0:
        case 1:
          a.set(i);
          sa.insert(i);
          break;
        case 2:
          a.reset(i);
          sa.erase(i);
          break;
        default:
          b.assign(i, (rng() & 1) != 0);
          if (b.test(i)) {
            sb.insert(i);
          } else {
            sb.erase(i);
          }
      }
    }
    ASSERT_EQ(Members(a), sa);
    ASSERT_EQ(Members(b), sb);
    EXPECT_EQ(a.count(), sa.size());
    EXPECT_EQ(a.none(), sa.empty());
    for (int k = 0; k < 50; ++k) {
      const size_t i = random_id();
      EXPECT_EQ(a.test(i), sa.contains(i));
    }
    EXPECT_EQ(a.IsSubsetOf(b), std::includes(sb.begin(), sb.end(), sa.begin(), sa.end()));
    DynamicBitset both = a;
    both &= b;
    std::set<size_t> s_both;
    std::set_intersection(sa.begin(), sa.end(), sb.begin(), sb.end(), std::inserter(s_both, s_both.end()));
    EXPECT_EQ(Members(both), s_both);
    EXPECT_TRUE(both.IsSubsetOf(a));
    DynamicBitset either = a;
    either |= b;
    std::set<size_t> s_either;
    std::set_union(sa.begin(), sa.end(), sb.begin(), sb.end(), std::inserter(s_either, s_either.end()));
    EXPECT_EQ(Members(either), s_either);
    EXPECT_TRUE(a.IsSubsetOf(either));
    EXPECT_TRUE(b.IsSubsetOf(either));
    either.clear();
    EXPECT_TRUE(either.none());
    EXPECT_EQ(Members(either), std::set<size_t>{});
  }
}

}  // namespace
}  // namespace netpol::policy::internal
