// Packets the dataplane logged to an NFLOG group (netpol's drop rules log
// every denied new connection there), read from the kernel over nfnetlink.
//
//   Result<NflogReader> log = NflogReader::Open("np-node", 100);
//   Result<std::vector<LoggedPacket>> p = log->Next(std::chrono::milliseconds(200));
//   for (const LoggedPacket& packet : *p) use(packet.prefix, packet.src, packet.dst, packet.dst_port);
//
// Reading never delays or changes a verdict: the kernel copies the logged
// packet's first bytes to the socket and drops what a slow reader cannot take.
// The reader fills LoggedPacket's addresses, ports and prefix; what the prefix
// means is the backend's that wrote it (nft: nft::ParseLogPrefix).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "base/result.h"
#include "dataplane/backend.h"

struct mnl_socket;

namespace netpol::dataplane {

// The addresses, protocol and ports of an IPv4 or IPv6 packet (from its first
// bytes); nullopt when it is neither or too short.
std::optional<LoggedPacket> ParsePacketHeaders(std::span<const uint8_t> packet);

class NflogReader {
 public:
  [[nodiscard]] static Result<NflogReader> Open(const std::string& netns, uint16_t group);
  NflogReader(NflogReader&& other) noexcept;
  NflogReader& operator=(NflogReader&& other) noexcept;
  ~NflogReader();

  // The next logged packets (the kernel sends them in batches: up to 64, or
  // after 10 ms), or none when nothing came within `timeout`.
  Result<std::vector<LoggedPacket>> Next(std::chrono::milliseconds timeout);

 private:
  explicit NflogReader(mnl_socket* socket) : socket_(socket) {}
  mnl_socket* socket_ = nullptr;
};

}  // namespace netpol::dataplane
