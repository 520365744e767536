#include "dataplane/nft/installed.h"

#include <algorithm>

namespace netpol::dataplane::nft {

uint32_t InstalledPod::OriginIndex(std::string origin) {
  // A pod's elements name a handful of rules: a linear search is the cheapest.
  const auto it = std::find(origins_.begin(), origins_.end(), origin);
  if (it != origins_.end()) return static_cast<uint32_t>(it - origins_.begin());
  origins_.push_back(std::move(origin));
  return static_cast<uint32_t>(origins_.size() - 1);
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): consumed, its nodes extracted
InstalledPod InstalledPod::From(PodElements elements) {
  InstalledPod pod;
  for (auto& [set, members] : elements) {
    std::vector<Entry>& out = pod.sets_[set];
    out.reserve(members.size());
    // Maps iterate in order: the vector comes out sorted.
    while (!members.empty()) {
      auto node = members.extract(members.begin());
      out.emplace_back(std::move(node.key()), pod.OriginIndex(std::move(node.mapped())));
    }
  }
  return pod;
}

PodEdits InstalledPod::DiffTo(const PodElements& after) const {
  PodEdits edits;
  for (const auto& [set, entries] : sets_) {
    const auto other = after.find(set);
    if (other == after.end()) {
      for (const auto& [element, origin] : entries) edits.removed[set].emplace(element, origins_[origin]);
      continue;
    }
    // Both sorted by element: one merge finds what each side alone has.
    auto a = entries.begin();
    auto b = other->second.begin();
    while (a != entries.end() || b != other->second.end()) {
      if (b == other->second.end() || (a != entries.end() && a->first < b->first)) {
        edits.removed[set].emplace(a->first, origins_[a->second]);
        ++a;
      } else if (a == entries.end() || b->first < a->first) {
        edits.added[set].emplace(b->first, b->second);
        ++b;
      } else {
        if (origins_[a->second] != b->second) {  // the comment would name another rule
          edits.removed[set].emplace(a->first, origins_[a->second]);
          edits.added[set].emplace(b->first, b->second);
        }
        ++a;
        ++b;
      }
    }
  }
  for (const auto& [set, members] : after) {
    if (sets_.contains(set)) continue;
    for (const auto& [element, origin] : members) edits.added[set].emplace(element, origin);
  }
  return edits;
}

const std::string* InstalledPod::Find(const std::string& set, const Element& element) const {
  const auto it = sets_.find(set);
  if (it == sets_.end()) return nullptr;
  const auto at = std::lower_bound(it->second.begin(), it->second.end(), element,
                                   [](const Entry& e, const Element& x) { return e.first < x; });
  return at != it->second.end() && at->first == element ? &origins_[at->second] : nullptr;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): consumed, its nodes extracted
void InstalledPod::Apply(PodEdits edits) {
  for (const auto& entry : edits.removed) {
    const auto& removed =
        entry.second;  // (a structured binding cannot be captured before C++20's fix in clang 16)
    const auto it = sets_.find(entry.first);
    if (it == sets_.end()) continue;
    std::erase_if(it->second, [&](const Entry& e) { return removed.contains(e.first); });
    if (it->second.empty()) sets_.erase(it);
  }
  for (auto& [set, added] : edits.added) {
    std::vector<Entry>& entries = sets_[set];
    std::vector<Entry> incoming;
    incoming.reserve(added.size());
    while (!added.empty()) {
      auto node = added.extract(added.begin());
      incoming.emplace_back(std::move(node.key()), OriginIndex(std::move(node.mapped())));
    }
    std::vector<Entry> merged;
    merged.reserve(entries.size() + incoming.size());
    // An element already installed keeps its origin (as a map's insert would).
    auto a = entries.begin();
    auto b = incoming.begin();
    while (a != entries.end() || b != incoming.end()) {
      if (b == incoming.end() || (a != entries.end() && a->first < b->first)) {
        merged.push_back(std::move(*a++));
      } else if (a == entries.end() || b->first < a->first) {
        merged.push_back(std::move(*b++));
      } else {
        merged.push_back(std::move(*a++));
        ++b;
      }
    }
    entries = std::move(merged);
  }
  // Replaced elements leave their old origins behind: drop them once they
  // could be half of what is kept (amortised: a pass over the pod's elements
  // each time the list has doubled).
  if (origins_.size() > 2 * std::max<size_t>(8, origins_after_compaction_)) {
    CompactOrigins();
    origins_after_compaction_ = origins_.size();
  }
}

void InstalledPod::CompactOrigins() {
  constexpr uint32_t kUnused = ~uint32_t{0};
  std::vector<uint32_t> remap(origins_.size(), kUnused);
  std::vector<std::string> kept;
  for (auto& [set, entries] : sets_) {
    for (Entry& e : entries) {
      uint32_t& to = remap[e.second];
      if (to == kUnused) {
        to = static_cast<uint32_t>(kept.size());
        kept.push_back(std::move(origins_[e.second]));
      }
      e.second = to;
    }
  }
  origins_ = std::move(kept);
}

PodElements InstalledPod::Expand() const {
  PodElements out;
  for (const auto& [set, entries] : sets_) {
    auto& members = out[set];
    for (const auto& [element, origin] : entries)
      members.emplace_hint(members.end(), element, origins_[origin]);
  }
  return out;
}

size_t InstalledPod::size() const {
  size_t n = 0;
  for (const auto& [set, entries] : sets_) n += entries.size();
  return n;
}

}  // namespace netpol::dataplane::nft
