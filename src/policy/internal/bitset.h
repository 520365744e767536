// A growable bitset over dense ids (pod classes, pods). Internal to the engine.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace netpol::policy::internal {

class DynamicBitset {
 public:
  bool test(size_t i) const {
    const size_t word = i >> 6;
    return word < words_.size() && ((words_[word] >> (i & 63)) & 1U) != 0;
  }
  void set(size_t i) {
    Grow(i);
    words_[i >> 6] |= uint64_t{1} << (i & 63);
  }
  void reset(size_t i) {
    if ((i >> 6) < words_.size()) words_[i >> 6] &= ~(uint64_t{1} << (i & 63));
  }
  void assign(size_t i, bool value) { value ? set(i) : reset(i); }
  void clear() { words_.clear(); }
  bool none() const {
    return std::all_of(words_.begin(), words_.end(), [](uint64_t w) { return w == 0; });
  }
  size_t count() const {
    size_t n = 0;
    for (const uint64_t w : words_) n += static_cast<size_t>(std::popcount(w));
    return n;
  }
  bool IsSubsetOf(const DynamicBitset& other) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      const uint64_t theirs = i < other.words_.size() ? other.words_[i] : 0;
      if ((words_[i] & ~theirs) != 0) return false;
    }
    return true;
  }
  DynamicBitset& operator&=(const DynamicBitset& other) {
    if (words_.size() > other.words_.size()) words_.resize(other.words_.size());
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= other.words_[i];
    return *this;
  }
  DynamicBitset& operator|=(const DynamicBitset& other) {
    if (other.words_.size() > words_.size()) words_.resize(other.words_.size(), 0);
    for (size_t i = 0; i < other.words_.size(); ++i) words_[i] |= other.words_[i];
    return *this;
  }
  // Calls fn(i) for every set bit, in increasing order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      uint64_t bits = words_[w];
      while (bits != 0) {
        fn(w * 64 + static_cast<size_t>(std::countr_zero(bits)));
        bits &= bits - 1;
      }
    }
  }
  size_t memory_bytes() const { return words_.capacity() * sizeof(uint64_t); }

 private:
  void Grow(size_t i) {
    if ((i >> 6) >= words_.size()) words_.resize((i >> 6) + 1, 0);
  }

  std::vector<uint64_t> words_;
};

}  // namespace netpol::policy::internal
