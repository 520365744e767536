// The content hashes behind generated names and ids: stable across runs and
// builds (ids are compared between processes and kept in state), and
// sensitive to every word and its order.
#include "base/hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "base/siphash.h"

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

// SipHash-2-4's published test vectors (key 00..0f; messages 00, 01, ..
// of length 0 and 15), and words added as their eight bytes.
TEST(HashTest, SipHashGivesThePublishedVectors) {
  const SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  EXPECT_EQ(SipHash(key).Finish(), 0x726fdb47dd0e0e31ULL);
  std::string message;
  for (char c = 0; c < 15; ++c) message.push_back(c);
  SipHash whole(key);
  whole.Add(message);
  EXPECT_EQ(whole.Finish(), 0xa129ca6149be45e5ULL);
  // The same bytes in pieces, a word among them, aligned and not.
  SipHash pieces(key);
  pieces.Add(message.substr(0, 3));
  pieces.Add(uint64_t{0x0a09080706050403ULL});
  pieces.Add(message.substr(11));
  EXPECT_EQ(pieces.Finish(), 0xa129ca6149be45e5ULL);
  SipHash aligned(key);
  aligned.Add(uint64_t{0x0706050403020100ULL});
  aligned.Add(message.substr(8));
  EXPECT_EQ(aligned.Finish(), 0xa129ca6149be45e5ULL);
}

TEST(HashTest, SipHashDependsOnItsKey) {
  const SipKey a = SipKey::Random();
  const SipKey b = SipKey::Random();
  EXPECT_FALSE(a.k0 == b.k0 && a.k1 == b.k1);
  SipHash ha(a);
  SipHash hb(b);
  ha.Add("app=web");
  hb.Add("app=web");
  EXPECT_NE(ha.Finish(), hb.Finish());
}

}  // namespace
}  // namespace netpol
