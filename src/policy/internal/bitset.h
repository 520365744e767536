// A growable bitset over dense ids (pod classes, pods). Internal to the engine.
//
//   DynamicBitset classes;
//   classes.set(40'001);                         // one word held, not 626
//   if (classes.test(c)) ...
//   classes.ForEach([](size_t c) { ... });       // increasing order
//
// It holds only the words between its lowest and highest word ever set (a
// window), not every word from id 0: most sets are one namespace's classes
// (a policy's targets, a podSelector peer's matches), whose ids lie close
// together, while a cluster of 100k pods has ~40k class ids. A dense set (a
// namespaceSelector peer's) costs what a plain bitset costs.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace netpol::policy::internal {

class DynamicBitset {
 public:
  bool test(size_t i) const { return ((word(i >> 6) >> (i & 63)) & 1U) != 0; }
  void set(size_t i) {
    Cover(i >> 6, i >> 6);
    words_[(i >> 6) - base_] |= uint64_t{1} << (i & 63);
  }
  void reset(size_t i) {
    const size_t w = i >> 6;
    if (w >= base_ && w - base_ < words_.size()) words_[w - base_] &= ~(uint64_t{1} << (i & 63));
  }
  void assign(size_t i, bool value) { value ? set(i) : reset(i); }
  void clear() {
    words_.clear();
    base_ = 0;
  }
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
      if ((words_[i] & ~other.word(base_ + i)) != 0) return false;
    }
    return true;
  }
  DynamicBitset& operator&=(const DynamicBitset& other) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= other.word(base_ + i);
    return *this;
  }
  DynamicBitset& operator|=(const DynamicBitset& other) {
    // Only the other's words that hold bits widen this window.
    size_t first = 0;
    size_t last = other.words_.size();
    while (first < last && other.words_[first] == 0) ++first;
    while (last > first && other.words_[last - 1] == 0) --last;
    if (first == last) return *this;
    Cover(other.base_ + first, other.base_ + last - 1);
    for (size_t i = first; i < last; ++i) words_[other.base_ + i - base_] |= other.words_[i];
    return *this;
  }
  // Calls fn(i) for every set bit, in increasing order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      uint64_t bits = words_[w];
      while (bits != 0) {
        fn((base_ + w) * 64 + static_cast<size_t>(std::countr_zero(bits)));
        bits &= bits - 1;
      }
    }
  }
  size_t memory_bytes() const { return words_.capacity() * sizeof(uint64_t); }

 private:
  // Word `w` (absolute), 0 outside the window.
  uint64_t word(size_t w) const { return w >= base_ && w - base_ < words_.size() ? words_[w - base_] : 0; }
  // Widens the window to hold words `first` to `last` (absolute).
  void Cover(size_t first, size_t last) {
    if (words_.empty()) {
      base_ = first;
      words_.assign(last - first + 1, 0);
      return;
    }
    if (first < base_) {
      words_.insert(words_.begin(), base_ - first, 0);
      base_ = first;
    }
    const size_t size = last - base_ + 1;
    if (size <= words_.size()) return;
    // Grown by half, not doubled: the sets of a large cluster grow one class
    // at a time while it is listed, and keep their capacity afterwards.
    if (size > words_.capacity()) words_.reserve(std::max(size, words_.size() + words_.size() / 2));
    words_.resize(size, 0);
  }

  size_t base_ = 0;              // the absolute index of words_[0]
  std::vector<uint64_t> words_;  // words base_ .. base_ + size - 1
};

}  // namespace netpol::policy::internal
