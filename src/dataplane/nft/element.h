// One element of a set or map of netpol's table, as typed values: the key's
// fields (addresses, protocols, ports, interface names), each a value or, in
// an interval set, a range; and a map element's verdict.
//
//   Element e = Element::Of({Field::Address(peer), Field::Proto(6), Field::Port(80)});
//   Element d = Element::Of({Field::Address(pod)}).Goto("in_np_g3_v4");
//   e.key();    // the kernel's key bytes: what a netlink batch sends
//   d.Text();   // "198.18.0.5 : goto in_np_g3_v4": nft commands, goldens, --show
//
// Kept in the kernel's own byte layout (fields in network order, each padded
// to 4 bytes inside a concatenation), so the batch encoder copies the key and
// a listing decodes into it: no key is ever parsed back from text. Elements
// of one set compare in key order, which is numeric order.
#pragma once

#include <compare>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/result.h"

namespace netpol::dataplane::nft {

// What a key field holds (the nft types ipv4_addr, ipv6_addr, inet_proto,
// inet_service, ifname).
enum class FieldKind : uint8_t { kIpv4 = 1, kIpv6 = 2, kProto = 3, kPort = 4, kIfname = 5 };

__extension__ using FieldValue = unsigned __int128;  // wide enough for an IPv6 address

// One field of a key: a value (first == last) or a range.
struct Field {
  FieldKind kind = FieldKind::kProto;
  FieldValue first = 0;
  FieldValue last = 0;
  std::string_view name;  // kIfname's (at most 15 bytes are kept)

  static Field Address(const IpAddress& ip) { return Addresses(ip, ip); }
  static Field Addresses(const IpAddress& first, const IpAddress& last);
  static Field Proto(uint8_t p) { return {FieldKind::kProto, p, p, {}}; }
  static Field Protos(uint8_t first, uint8_t last) { return {FieldKind::kProto, first, last, {}}; }
  static Field Port(uint16_t p) { return {FieldKind::kPort, p, p, {}}; }
  static Field Ports(uint16_t first, uint16_t last) { return {FieldKind::kPort, first, last, {}}; }
  static Field Ifname(std::string_view name) { return {FieldKind::kIfname, 0, 0, name}; }

  // The field's address (first or last) as an IpAddress; kIpv4 and kIpv6 only.
  IpAddress FirstAddress() const;
  IpAddress LastAddress() const;
};

// A map element's value. netpol's maps `goto` a chain; another process's
// element may hold any verdict, and reads back as what it is.
enum class Verdict : uint8_t { kNone = 0, kGoto, kJump, kAccept, kDrop, kReturn, kContinue };

class Element {
 public:
  static constexpr size_t kMaxFields = 4;

  Element() = default;
  // A set element of `fields` (at most kMaxFields; more are dropped). `ranged`
  // for an interval set's: it carries the end of every field's range (the
  // kernel's key end) even where a field is one value.
  static Element Of(std::initializer_list<Field> fields, bool ranged = false) {
    return Of(std::span<const Field>(fields.begin(), fields.size()), ranged);
  }
  static Element Of(std::span<const Field> fields, bool ranged = false);
  // The element mapped to `verdict` (a chain for goto and jump).
  Element Goto(std::string_view chain) && { return std::move(*this).To(Verdict::kGoto, chain); }
  Element To(Verdict verdict, std::string_view chain = {}) &&;

  // From the kernel's bytes, as a listing reports them: fields of `kinds`, the
  // key (and its end when `key_end` is not empty). An error when the bytes do
  // not fit the kinds.
  static Result<Element> FromKernel(std::span<const FieldKind> kinds, std::string_view key,
                                    std::string_view key_end, Verdict verdict = Verdict::kNone,
                                    std::string_view chain = {});

  size_t size() const;  // fields
  Field field(size_t i) const;
  bool ranged() const;
  Verdict verdict() const;
  std::string_view chain() const;  // of goto and jump; "" otherwise
  // The kernel's key bytes, and the key end's ("" unless ranged).
  std::string_view key() const;
  std::string_view key_end() const;
  // The same key without a verdict: what a delete names.
  Element KeyOnly() const;

  // As nft writes it: "198.18.0.1 . tcp . 80-90", "\"veth1\" . 198.18.0.5",
  // "198.18.0.5 : goto in_np_g3_v4".
  std::string Text() const;
  std::string KeyText() const;  // without the verdict

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const Element&, const Element&) = default;
  friend bool operator==(const Element&, const Element&) = default;

 private:
  explicit Element(std::string data) : data_(std::move(data)) {}
  uint16_t header() const;
  size_t KeySize() const;
  size_t ChainOffset() const;

  // Two header bytes (the fields' kinds, 3 bits each; ranged; the verdict),
  // the key, the key end when ranged, the verdict's chain. An IPv4 peer .
  // protocol . port element is 14 bytes: no allocation.
  std::string data_;
};

// A verdict by the word nft uses for it ("goto", "accept"); nullopt for another word.
std::optional<Verdict> VerdictNamed(std::string_view word);

// Writes Text() (for logs and test failures).
std::ostream& operator<<(std::ostream& os, const Element& element);

// The fields' kinds of a set's nft type ("ipv4_addr . inet_proto .
// inet_service", a map's with " : verdict"); an error for a type netpol never
// makes.
Result<std::vector<FieldKind>> KindsOf(std::string_view type);

}  // namespace netpol::dataplane::nft
