// IP addresses and prefixes, IPv4 and IPv6, valid by construction.
//
// An `IpAddress` or `IpPrefix` can only be obtained from a validating factory
// (`Parse`), so code that holds one never re-checks it:
//
//   Result<IpPrefix> block = IpPrefix::Parse("198.18.0.0/15");
//   Result<IpAddress> pod = IpAddress::Parse("198.18.3.7");
//   if (block && pod && block->Contains(*pod)) { ... }
//
// Addresses are stored as 128-bit values (IPv4 in the low 32 bits, tagged with
// its family), so comparisons and prefix checks are a few integer operations: the
// policy engine tests them per flow.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace netpol {

enum class IpFamily : uint8_t { kV4 = 4, kV6 = 6 };

class IpAddress {
 public:
  // Accepts dotted-quad IPv4 and RFC 4291 IPv6 text (including "::ffff:a.b.c.d").
  static Result<IpAddress> Parse(std::string_view text);
  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(uint64_t high, uint64_t low);

  IpFamily family() const { return family_; }
  bool is_v4() const { return family_ == IpFamily::kV4; }
  uint64_t high() const { return high_; }
  uint64_t low() const { return low_; }
  uint32_t v4() const { return static_cast<uint32_t>(low_); }
  int bits() const { return is_v4() ? 32 : 128; }

  std::string ToString() const;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  IpAddress(IpFamily family, uint64_t high, uint64_t low) : family_(family), high_(high), low_(low) {}

  IpFamily family_;
  uint64_t high_;  // always 0 for IPv4
  uint64_t low_;
};

class IpPrefix {
 public:
  // Parses "addr/len". Host bits are cleared, as the API server's legacy CIDR
  // parsing does ("198.18.0.7/16" is 198.18.0.0/16). A bare address is rejected.
  static Result<IpPrefix> Parse(std::string_view text);
  // The prefix of `length` bits containing `address`; length must fit the family.
  static Result<IpPrefix> Make(IpAddress address, int length);

  const IpAddress& address() const { return address_; }
  int length() const { return length_; }
  IpFamily family() const { return address_.family(); }

  bool Contains(const IpAddress& ip) const;
  // True when every address of `other` is in this prefix.
  bool Contains(const IpPrefix& other) const;
  bool Overlaps(const IpPrefix& other) const { return Contains(other) || other.Contains(*this); }

  std::string ToString() const;

  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;

 private:
  IpPrefix(IpAddress address, int length) : address_(address), length_(length) {}

  IpAddress address_;
  int length_;
};

}  // namespace netpol
