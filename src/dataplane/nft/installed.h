// What the nftables backend remembers of the elements it installed for one
// pod, so that the next update can be computed without listing the kernel.
//
//   InstalledPod pod = InstalledPod::From(RenderPod(name, local, program, options));
//   PodEdits edits = pod.DiffTo(RenderPod(name, changed, program, options));
//   pod.Apply(edits);   // once the transaction holding them committed
//
// The same content as PodElements in well under half its memory (the agent
// keeps one per local pod, tens of thousands of elements each at scale):
// per set a sorted vector instead of a tree, and each element's origin as an
// index into the pod's few distinct origins instead of a copy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {

class InstalledPod {
 public:
  InstalledPod() = default;
  static InstalledPod From(PodElements elements);

  // The elements only this has (removed) and only `after` has (added), as
  // DiffElements(Expand(), after) would give them: an element both have under
  // another origin is replaced (removed and added), so its comment names a
  // rule that allows it now.
  PodEdits DiffTo(const PodElements& after) const;
  // Applies committed edits: removed elements go, added ones come.
  void Apply(PodEdits edits);
  PodElements Expand() const;
  // Distinct origins kept (those of replaced elements are dropped now and then).
  size_t origin_count() const { return origins_.size(); }
  // The origin of an installed element; null when the pod does not have it.
  const std::string* Find(const std::string& set, const Element& element) const;
  size_t size() const;
  // Calls fn(set, element, origin) for every element, in set and element order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [set, entries] : sets_) {
      for (const auto& [element, origin] : entries) fn(set, element, origins_[origin]);
    }
  }

 private:
  using Entry = std::pair<Element, uint32_t>;  // element, origin index
  uint32_t OriginIndex(std::string origin);
  // Drops origins no element names any more.
  void CompactOrigins();

  std::vector<std::string> origins_;
  size_t origins_after_compaction_ = 0;
  std::map<std::string, std::vector<Entry>> sets_;  // set -> entries sorted by element
};

}  // namespace netpol::dataplane::nft
