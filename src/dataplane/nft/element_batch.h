// Element edits of hash sets sent as one netlink batch through libnftnl,
// without libnftables' parser (which costs about 9 us per element: a pod that
// gains 1,600 elements paid 14 ms in parsing alone).
//
//   std::map<std::string, NftSet> layout = ...;            // set name -> type
//   Result<ElementBatcher> batcher = ElementBatcher::Open("np-node");
//   Status done = batcher->Send(edits, layout);
//
// One batch is one transaction: the kernel applies all of it or none. Only
// sets without the interval flag are accepted (interval elements need the
// range encoding libnftables does), and of maps only verdict maps whose
// elements `goto` a chain (the dispatch maps: a pod joining a group); the
// caller sends the others through libnftables instead.
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

// The key bytes of an element of a set of `type` ("ipv4_addr . inet_proto .
// inet_service"), from the element's canonical text ("198.18.0.1 . tcp . 80"):
// fields in network order, each padded to 4 bytes in a concatenation.
Result<std::vector<uint8_t>> EncodeKey(const std::string& type, const std::string& element);
// The same into `key` (cleared first), for a caller encoding many elements.
Status EncodeKeyInto(std::string_view type, std::string_view element, std::vector<uint8_t>& key);

// True when every edit is of a set in `layout` that is no interval set, and
// no map but a verdict map whose added elements are `goto chain`.
bool Batchable(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout);

// A netfilter netlink socket in one namespace, kept open: closing one right
// after a transaction that deleted elements waits for the kernel to finish
// freeing them (12-17 ms measured), so the sender lives as long as the backend.
class ElementBatcher {
 public:
  [[nodiscard]] static Result<ElementBatcher> Open(const std::string& netns);
  ElementBatcher(ElementBatcher&&) noexcept;
  ElementBatcher& operator=(ElementBatcher&&) noexcept;
  ~ElementBatcher();

  Status Send(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout);

 private:
  explicit ElementBatcher(mnl_socket* socket) : socket_(socket) {}
  mnl_socket* socket_ = nullptr;
  uint32_t sequence_ = 0;
};

}  // namespace netpol::dataplane::nft
