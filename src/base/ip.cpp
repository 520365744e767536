#include "base/ip.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>

namespace netpol {
namespace {

// Mask with the top `length` bits of a 64-bit word set; length in [0, 64].
uint64_t HighMask(int length) {
  if (length <= 0) return 0;
  if (length >= 64) return ~uint64_t{0};
  return ~uint64_t{0} << (64 - length);
}

}  // namespace

IpAddress IpAddress::V4(uint32_t host_order) {
  return {IpFamily::kV4, 0, host_order};
}

IpAddress IpAddress::V6(uint64_t high, uint64_t low) {
  return {IpFamily::kV6, high, low};
}

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return InvalidArgument("\"" + std::string(text) + "\" is not a valid IP address");
  }
  std::array<char, INET6_ADDRSTRLEN + 1> buffer{};
  std::memcpy(buffer.data(), text.data(), text.size());
  if (text.find(':') == std::string_view::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, buffer.data(), &v4) == 1) return V4(ntohl(v4.s_addr));
  } else {
    std::array<uint8_t, 16> bytes{};
    if (inet_pton(AF_INET6, buffer.data(), bytes.data()) == 1) {
      uint64_t high = 0;
      uint64_t low = 0;
      for (size_t i = 0; i < 8; ++i) high = (high << 8) | bytes[i];
      for (size_t i = 8; i < 16; ++i) low = (low << 8) | bytes[i];
      return V6(high, low);
    }
  }
  return InvalidArgument("\"" + std::string(text) + "\" is not a valid IP address");
}

std::string IpAddress::ToString() const {
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  if (is_v4()) {
    // By hand: the dataplane writes hundreds of thousands of these, and
    // inet_ntop goes through printf.
    char* out = buffer.data();
    for (int shift = 24; shift >= 0; shift -= 8) {
      const unsigned octet = (v4() >> shift) & 0xffU;
      if (octet >= 100) *out++ = static_cast<char>('0' + octet / 100);
      if (octet >= 10) *out++ = static_cast<char>('0' + octet / 10 % 10);
      *out++ = static_cast<char>('0' + octet % 10);
      if (shift != 0) *out++ = '.';
    }
    return std::string(buffer.data(), out);
  } else {
    std::array<uint8_t, 16> bytes{};
    for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(high_ >> (56 - 8 * i));
    for (size_t i = 0; i < 8; ++i) bytes[8 + i] = static_cast<uint8_t>(low_ >> (56 - 8 * i));
    inet_ntop(AF_INET6, bytes.data(), buffer.data(), buffer.size());
  }
  return buffer.data();
}

Result<IpPrefix> IpPrefix::Make(IpAddress address, int length) {
  if (length < 0 || length > address.bits()) {
    return InvalidArgument("prefix length " + std::to_string(length) + " is out of range for " +
                           address.ToString());
  }
  if (address.is_v4()) {
    const uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
    return IpPrefix(IpAddress::V4(address.v4() & mask), length);
  }
  return IpPrefix(IpAddress::V6(address.high() & HighMask(length), address.low() & HighMask(length - 64)),
                  length);
}

Result<IpPrefix> IpPrefix::Parse(std::string_view text) {
  const auto invalid = [&] {
    return InvalidArgument("\"" + std::string(text) +
                           "\" is not a valid CIDR (e.g. 198.18.0.0/15 or 2001:2::/48)");
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return invalid();
  Result<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  if (!address) return invalid();
  const std::string_view len_text = text.substr(slash + 1);
  int length = -1;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
  if (ec != std::errc() || end != len_text.data() + len_text.size() || len_text.empty() ||
      len_text.size() > 3 || length < 0 || length > address->bits()) {
    return invalid();
  }
  return Make(*address, length);
}

bool IpPrefix::Contains(const IpAddress& ip) const {
  if (ip.family() != family()) return false;
  if (ip.is_v4()) {
    const uint32_t mask = length_ == 0 ? 0 : ~uint32_t{0} << (32 - length_);
    return (ip.v4() & mask) == address_.v4();
  }
  return (ip.high() & HighMask(length_)) == address_.high() &&
         (ip.low() & HighMask(length_ - 64)) == address_.low();
}

bool IpPrefix::Contains(const IpPrefix& other) const {
  return other.family() == family() && other.length_ >= length_ && Contains(other.address_);
}

std::string IpPrefix::ToString() const {
  return address_.ToString() + "/" + std::to_string(length_);
}

}  // namespace netpol
