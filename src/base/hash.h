// 64-bit FNV-1a: a small, stable (across runs and machines) hash for ids that
// are derived from content, such as set names and generated object names.
// Its offset basis is not FNV's published one (a digit short), and stays so:
// names already derived from it (host interfaces, pod names) must not change.
//
//   Fnv1a h;
//   h.Add("container-1/eth0");
//   h.Add(uint64_t{42});         // eight bytes, least significant first
//   uint64_t id = h.value();
//
// Not for hash tables facing untrusted keys, and not cryptographic.
#pragma once

#include <cstdint>
#include <string_view>

namespace netpol {

class Fnv1a {
 public:
  void Add(std::string_view bytes) {
    for (const char c : bytes) Byte(static_cast<unsigned char>(c));
  }
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  uint64_t value() const { return h_; }

 private:
  void Byte(uint8_t b) {
    h_ ^= b;
    h_ *= 1099511628211ULL;
  }
  uint64_t h_ = 1469598103934665603ULL;
};

// A stable 64-bit hash of a sequence of 64-bit words, a word at a time (each
// step is splitmix64's finalizer over the state and the word): for content
// ids over many numbers, where Fnv1a's byte at a time is the cost.
//
//   WordHash h;
//   h.Add(ip.high());
//   h.Add(ip.low());
//   uint64_t id = h.value();
class WordHash {
 public:
  void Add(uint64_t v) {
    uint64_t z = h_ ^ (v + 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    h_ = z ^ (z >> 31);
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0x6a09e667f3bcc908ULL;
};

}  // namespace netpol
