// The content hashes behind generated names and ids: stable across runs and
// builds (ids are compared between processes and kept in state), and
// sensitive to every word and its order.
#include "base/hash.h"

#include <gtest/gtest.h>

#include <set>

namespace netpol {
namespace {

TEST(HashTest, ValuesAreStable) {
  // Known answers: a change to either function changes every id derived from it.
  Fnv1a empty;
  EXPECT_EQ(empty.value(), 1469598103934665603ULL);
  Fnv1a a;
  a.Add("a");
  EXPECT_EQ(a.value(), 4953267810257967366ULL);
  WordHash w;
  EXPECT_EQ(w.value(), 0x6a09e667f3bcc908ULL);
  w.Add(0);
  const uint64_t one_word = w.value();
  WordHash again;
  again.Add(0);
  EXPECT_EQ(again.value(), one_word);
}

TEST(HashTest, WordHashSeesEveryWordAndItsOrder) {
  std::set<uint64_t> seen;
  for (uint64_t x = 0; x < 64; ++x) {
    for (uint64_t y = 0; y < 64; ++y) {
      WordHash h;
      h.Add(x);
      h.Add(y);
      seen.insert(h.value());
    }
  }
  EXPECT_EQ(seen.size(), 64u * 64u) << "two word pairs hash alike";
  WordHash ab, ba, a;
  ab.Add(1);
  ab.Add(2);
  ba.Add(2);
  ba.Add(1);
  a.Add(1);
  EXPECT_NE(ab.value(), ba.value());
  EXPECT_NE(ab.value(), a.value());
}

}  // namespace
}  // namespace netpol
