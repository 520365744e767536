// How a compiled program names its peer sets: by a 64-bit hash of their
// contents, so equal sets share one entry and a changed set is a new id.
//
//   const std::string& id = internal::AddSet(program.sets, "p0123456789abcdef", set);
//
// Two different sets hashing alike must not share an id (the second would be
// enforced with the first's members): a colliding set gets the next free
// "~n" suffix. Compiles add sets in the same order, so a kept compile and a
// fresh one suffix alike.
#pragma once

#include <map>
#include <string>

#include "policy/compiled.h"

namespace netpol::policy::internal {

// Adds `set` under `id` (or finds it there); the id it is known by.
const std::string& AddSet(std::map<std::string, SharedAddressSet>& sets, const std::string& id,
                          const SharedAddressSet& set);

}  // namespace netpol::policy::internal
