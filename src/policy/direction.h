// Which side of a connection a rule judges: shared by the engine, the compiled
// form and the backends (which must not include the engine).
//
//   if (direction == Direction::kIngress) ... the destination pod's rules ...
#pragma once

#include <cstdint>

namespace netpol::policy {

enum class Direction : uint8_t { kIngress, kEgress };

}  // namespace netpol::policy
