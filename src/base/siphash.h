// SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash for hash tables
// whose keys come from others (pod labels from the API). With a secret random
// key, nobody can choose keys that collide, which would turn a table's
// lookups into scans; Fnv1a and WordHash (hash.h) are for stable content ids.
//
//   const SipKey key = SipKey::Random();  // once per table
//   SipHash h(key);
//   h.Add("app");
//   h.Add(uint64_t{7});                   // eight bytes, least significant first
//   uint64_t bucket = h.Finish();
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace netpol {

struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  // From the kernel's random source (a weaker mix of clock and address if it
  // cannot be read, which on Linux does not happen).
  static SipKey Random();
};

class SipHash {
 public:
  explicit SipHash(const SipKey& key);
  void Add(std::string_view bytes);
  void Add(uint64_t v);
  // The hash of everything added (the state stays as it was).
  uint64_t Finish() const;

 private:
  void Byte(uint8_t b);
  void Compress(uint64_t m);

  uint64_t v0_, v1_, v2_, v3_;
  uint64_t tail_ = 0;  // the bytes of the word being filled, least significant first
  uint64_t length_ = 0;
};

}  // namespace netpol
