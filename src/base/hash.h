// 64-bit FNV-1a: a small, stable (across runs and machines) hash for ids that
// are derived from content, such as set names and generated object names.
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

}  // namespace netpol
