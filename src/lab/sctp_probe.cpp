#include "lab/sctp_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace netpol::lab {
namespace {

constexpr uint8_t kInitChunk = 1;
constexpr size_t kCommonHeader = 12;
constexpr size_t kInitLength = 20;

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

socklen_t ToSockaddr(const IpAddress& ip, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(ip.v4());
    return sizeof(sockaddr_in);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&out);
  a->sin6_family = AF_INET6;
  for (int i = 0; i < 8; ++i) {
    a->sin6_addr.s6_addr[i] = static_cast<uint8_t>(ip.high() >> (56 - 8 * i));
    a->sin6_addr.s6_addr[8 + i] = static_cast<uint8_t>(ip.low() >> (56 - 8 * i));
  }
  return sizeof(sockaddr_in6);
}

IpAddress FromSockaddr(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET) {
    return IpAddress::V4(ntohl(reinterpret_cast<const sockaddr_in*>(&s)->sin_addr.s_addr));
  }
  const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(&s)->sin6_addr.s6_addr;
  uint64_t high = 0;
  uint64_t low = 0;
  for (int i = 0; i < 8; ++i) high = (high << 8) | b[i];
  for (int i = 8; i < 16; ++i) low = (low << 8) | b[i];
  return IpAddress::V6(high, low);
}

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t size) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = ~uint32_t{0};
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ data[i]) & 0xffU] ^ (crc >> 8);
  return ~crc;
}

Status SendSctpInit(const std::optional<IpAddress>& source, const IpAddress& destination, uint16_t port,
                    uint32_t initiate_tag) {
  const int fd = ::socket(destination.is_v4() ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_SCTP);
  if (fd < 0) return PermissionDenied(std::string("raw SCTP socket: ") + std::strerror(errno));
  if (source) {
    sockaddr_storage local{};
    const socklen_t len = ToSockaddr(*source, local);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), len) != 0) {
      const int err = errno;
      ::close(fd);
      return FailedPrecondition("cannot bind to " + source->ToString() + ": " + std::strerror(err));
    }
  }
  std::array<uint8_t, kCommonHeader + kInitLength> packet{};
  Put16(&packet[0], 40000);  // source port
  Put16(&packet[2], port);   // destination port
  Put32(&packet[4], 0);      // verification tag: 0 in an INIT
  uint8_t* chunk = &packet[kCommonHeader];
  chunk[0] = kInitChunk;
  chunk[1] = 0;
  Put16(&chunk[2], static_cast<uint16_t>(kInitLength));
  Put32(&chunk[4], initiate_tag);   // initiate tag (non-zero)
  Put32(&chunk[8], 65535);          // advertised receiver window
  Put16(&chunk[12], 1);             // outbound streams
  Put16(&chunk[14], 1);             // inbound streams
  Put32(&chunk[16], initiate_tag);  // initial TSN
  // The checksum is stored little-endian-as-computed (RFC 4960 B: bytes in order).
  const uint32_t crc = Crc32c(packet.data(), packet.size());
  std::memcpy(&packet[8], &crc, sizeof(crc));
  sockaddr_storage to{};
  const socklen_t to_len = ToSockaddr(destination, to);
  const ssize_t sent =
      ::sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), to_len);
  const int err = errno;
  ::close(fd);
  if (sent != static_cast<ssize_t>(packet.size()))
    return Internal(std::string("sendto: ") + std::strerror(err));
  return Ok();
}

Result<SctpInitObserver> SctpInitObserver::Open(IpFamily family) {
  const int fd = ::socket(family == IpFamily::kV4 ? AF_INET : AF_INET6,
                          SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_SCTP);
  if (fd < 0) return PermissionDenied(std::string("raw SCTP socket: ") + std::strerror(errno));
  return SctpInitObserver(fd, family);
}

SctpInitObserver::SctpInitObserver(SctpInitObserver&& other) noexcept
    : fd_(other.fd_), family_(other.family_) {
  other.fd_ = -1;
}

SctpInitObserver::~SctpInitObserver() {
  if (fd_ >= 0) ::close(fd_);
}

Result<bool> SctpInitObserver::Await(const IpAddress& source, uint16_t port, uint32_t initiate_tag,
                                     std::chrono::steady_clock::time_point deadline) {
  std::array<uint8_t, 2048> buffer{};
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n =
        ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    size_t offset = 0;
    if (family_ == IpFamily::kV4)
      offset = static_cast<size_t>(buffer[0] & 0x0f) * 4;  // IPv4 raw: header included
    if (static_cast<size_t>(n) < offset + kCommonHeader + kInitLength) continue;
    const uint8_t* sctp = &buffer[offset];
    if (!(FromSockaddr(from) == source) || Get16(&sctp[2]) != port || sctp[kCommonHeader] != kInitChunk ||
        Get32(&sctp[kCommonHeader + 4]) != initiate_tag) {
      continue;
    }
    return true;
  }
}

}  // namespace netpol::lab
