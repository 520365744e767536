// Small string helpers for code that writes text for people (explanations,
// messages), so each module does not grow its own copy.
//
//   Join({"ingress", "egress"}, " and ")  // "ingress and egress"
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace netpol {

// The parts with `sep` between them ("" for none).
inline std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace netpol
