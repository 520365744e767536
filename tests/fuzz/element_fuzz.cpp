// Fuzz target: nft set elements from the kernel's bytes (Element::FromKernel)
// and from `nft -j` listings (ParseListing). A decoded element encodes to
// the bytes it came from, and its fields build it again.
//
// Input: byte 0 picks 1-4 field kinds from bytes 1-4; byte 5 holds ranged
// (bit 0) and the verdict (bits 1-3); byte 6 the key length; then the key,
// the key end (when ranged, of the same length) and the chain name. An input
// starting with '{' is a listing instead.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "dataplane/nft/element.h"
#include "dataplane/nft/nft_backend.h"

namespace {

using netpol::dataplane::nft::Element;
using netpol::dataplane::nft::Field;
using netpol::dataplane::nft::FieldKind;
using netpol::dataplane::nft::Verdict;

// An element's bytes decode to itself, and its fields and verdict build it again.
void CheckRoundTrip(const Element& e, const std::vector<FieldKind>& kinds) {
  const auto again = Element::FromKernel(kinds, e.key(), e.key_end(), e.verdict(), e.chain());
  if (!again || !(*again == e)) std::abort();
  std::vector<Field> fields;
  for (size_t i = 0; i < e.size(); ++i) fields.push_back(e.field(i));
  if (fields.size() != kinds.size()) std::abort();
  Element rebuilt = Element::Of(fields, e.ranged());
  if (e.verdict() != Verdict::kNone) rebuilt = std::move(rebuilt).To(e.verdict(), e.chain());
  if (!(rebuilt == e)) std::abort();
  if (e.Text().empty()) std::abort();
}

void FromKernel(std::string_view in) {
  if (in.size() < 7) return;
  const size_t n = static_cast<uint8_t>(in[0]) % 4 + 1;
  std::vector<FieldKind> kinds;
  for (size_t i = 0; i < n; ++i)
    kinds.push_back(static_cast<FieldKind>(static_cast<uint8_t>(in[1 + i]) % 5 + 1));
  const bool ranged = (in[5] & 1) != 0;
  const auto verdict = static_cast<Verdict>((static_cast<uint8_t>(in[5]) >> 1) % 7);
  const size_t length = static_cast<uint8_t>(in[6]);
  in.remove_prefix(7);
  if (in.size() < length * (ranged ? 2 : 1)) return;
  const std::string_view key = in.substr(0, length);
  const std::string_view end = ranged ? in.substr(length, length) : std::string_view{};
  const std::string_view chain = in.substr(length * (ranged ? 2 : 1));
  const auto e = Element::FromKernel(kinds, key, end, verdict, chain);
  if (!e) return;
  if (e->key().size() > key.size() || e->size() != n) std::abort();
  CheckRoundTrip(*e, kinds);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && in[0] == '{') {
    const auto table = netpol::dataplane::nft::ParseListing(std::string(in));
    if (!table) return 0;
    for (const auto& [name, set] : table->sets) {
      const auto kinds = netpol::dataplane::nft::KindsOf(set.type);
      if (!kinds) continue;
      for (const auto& [element, packets] : set.elements) CheckRoundTrip(element, *kinds);
    }
    return 0;
  }
  FromKernel(in);
  return 0;
}
