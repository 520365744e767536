// Element edits of hash sets sent as one netlink batch through libnftnl,
// without libnftables' parser (which costs about 9 us per element: a pod that
// gains 1,600 elements paid 14 ms in parsing alone).
//
//   std::map<std::string, NftSet> layout = ...;            // set name -> type
//   Result<ElementBatcher> batcher = ElementBatcher::Open("np-node");
//   Status done = batcher->Send(edits, layout);
//
// One batch is one transaction: the kernel applies all of it or none. The
// elements' keys are their kernel bytes already (element.h), an interval
// set's with their ends (netpol's interval sets are all concatenations: one
// element per range). Of maps only verdict maps whose elements `goto` a
// chain are accepted (the dispatch maps, the tiers' class maps); the caller
// sends anything else through libnftables instead.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dataplane/nft/ruleset.h"

struct mnl_socket;

namespace netpol::dataplane::nft {

// True when every edit is of a set in `layout` (an interval set a
// concatenation, its elements ranged), and no map but a verdict map whose
// added elements are `goto chain`.
bool Batchable(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout);

// A netfilter netlink socket in one namespace, kept open: closing one right
// after a transaction that deleted elements waits for the kernel to finish
// freeing them (12-17 ms measured), so the sender lives as long as the backend.
// It also reads sets back: a dump's elements are the kernel's bytes, decoded
// straight into Elements (no JSON, no text; the listing of a big table through
// libnftables cost its owner over a second at a restart).
class ElementBatcher {
 public:
  [[nodiscard]] static Result<ElementBatcher> Open(const std::string& netns);
  ElementBatcher(ElementBatcher&&) noexcept;
  ElementBatcher& operator=(ElementBatcher&&) noexcept;
  ~ElementBatcher();

  Status Send(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout);

  // Every element of `set` in netpol's table, keys of `kinds`, with the
  // packets its counter counted (0 without one). NotFound without the set; an
  // error for an element no Element holds (an interval's end of a set that is
  // no concatenation: netpol makes none).
  [[nodiscard]] Result<std::map<Element, uint64_t>> Elements(const std::string& set,
                                                             const std::vector<FieldKind>& kinds);
  // The ruleset's generation: it changes with every commit, so a reading made
  // of several dumps is one state when the generation before and after agree.
  [[nodiscard]] Result<uint32_t> Generation();

 private:
  explicit ElementBatcher(mnl_socket* socket) : socket_(socket) {}
  mnl_socket* socket_ = nullptr;
  uint32_t sequence_ = 0;
};

}  // namespace netpol::dataplane::nft
