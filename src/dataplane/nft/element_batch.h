// Element edits of hash sets sent as one netlink batch through libnftnl,
// without libnftables' parser (which costs about 9 us per element: a pod that
// gains 1,600 elements paid 14 ms in parsing alone).
//
//   std::map<std::string, NftSet> layout = ...;            // set name -> type
//   Status done = SendElementBatch("np-node", edits, layout);
//
// One batch is one transaction: the kernel applies all of it or none. Only
// sets without the interval flag are accepted (interval elements need the
// range encoding libnftables does); the caller sends those through
// libnftables instead.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {

// The key bytes of an element of a set of `type` ("ipv4_addr . inet_proto .
// inet_service"), from the element's canonical text ("198.18.0.1 . tcp . 80"):
// fields in network order, each padded to 4 bytes in a concatenation.
Result<std::vector<uint8_t>> EncodeKey(const std::string& type, const std::string& element);

// True when every edit is of a set in `layout` that is not an interval set.
bool Batchable(const std::vector<ElementEdit>& edits, const std::map<std::string, NftSet>& layout);

Status SendElementBatch(const std::string& netns, const std::vector<ElementEdit>& edits,
                        const std::map<std::string, NftSet>& layout);

}  // namespace netpol::dataplane::nft
