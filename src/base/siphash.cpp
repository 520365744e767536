#include "base/siphash.h"

#include <sys/random.h>

#include <chrono>

namespace netpol {
namespace {

constexpr uint64_t Rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

// One SipRound over the four state words.
inline void Round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

}  // namespace

SipKey SipKey::Random() {
  SipKey key;
  uint64_t words[2] = {0, 0};
  if (::getrandom(words, sizeof(words), 0) == static_cast<ssize_t>(sizeof(words))) {
    key.k0 = words[0];
    key.k1 = words[1];
    return key;
  }
  key.k0 = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  key.k1 = reinterpret_cast<uintptr_t>(&key) ^ 0x9e3779b97f4a7c15ULL;
  return key;
}

SipHash::SipHash(const SipKey& key)
    : v0_(key.k0 ^ 0x736f6d6570736575ULL),
      v1_(key.k1 ^ 0x646f72616e646f6dULL),
      v2_(key.k0 ^ 0x6c7967656e657261ULL),
      v3_(key.k1 ^ 0x7465646279746573ULL) {}

void SipHash::Compress(uint64_t m) {
  v3_ ^= m;
  Round(v0_, v1_, v2_, v3_);
  Round(v0_, v1_, v2_, v3_);
  v0_ ^= m;
}

void SipHash::Byte(uint8_t b) {
  tail_ |= uint64_t{b} << (8 * (length_ % 8));
  ++length_;
  if (length_ % 8 == 0) {
    Compress(tail_);
    tail_ = 0;
  }
}

void SipHash::Add(std::string_view bytes) {
  for (const char c : bytes) Byte(static_cast<uint8_t>(c));
}

void SipHash::Add(uint64_t v) {
  if (length_ % 8 == 0) {  // aligned: the word is the message word
    length_ += 8;
    Compress(v);
    return;
  }
  for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t SipHash::Finish() const {
  uint64_t v0 = v0_, v1 = v1_, v2 = v2_, v3 = v3_;
  const uint64_t last = tail_ | (length_ << 56);
  v3 ^= last;
  Round(v0, v1, v2, v3);
  Round(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) Round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace netpol
