// Elements as nft text, for assertions that read like the table they check.
//
//   EXPECT_EQ(Texts(set.elements), (std::map<std::string, std::string>{{"198.18.0.1 . tcp . 80", "ns/p"}}));
#pragma once

#include <map>
#include <string>

#include "dataplane/nft/element.h"

namespace netpol::dataplane::nft {

// Element text -> what it maps to (an origin, a packet count).
template <typename V>
std::map<std::string, V> Texts(const std::map<Element, V>& elements) {
  std::map<std::string, V> out;
  for (const auto& [element, value] : elements) out.emplace(element.Text(), value);
  return out;
}

}  // namespace netpol::dataplane::nft
