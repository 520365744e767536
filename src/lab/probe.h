// Connectivity probes: a server that answers on TCP and UDP ports, and a client
// that tells whether a connection gets through. Used by the e2e tests and the
// lab (a pod without a command runs the probe server).
//
//   ProbeServer server;
//   Status s = server.Listen({{api::Protocol::kTCP, 80}, {api::Protocol::kUDP, 53}});
//   server.Serve(std::chrono::seconds(60));           // bounded
//
//   bool ok = Probe(*IpAddress::Parse("198.18.0.10"), api::Protocol::kTCP, 80,
//                   std::chrono::milliseconds(300));
//
// TCP: a completed handshake, then every line echoed until the peer closes.
// UDP: a datagram echoed back.
// A dropped connection shows as a timeout, which bounds every probe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "base/result.h"

namespace netpol::lab {

class ProbeServer {
 public:
  ProbeServer() = default;
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;
  ~ProbeServer();

  // Binds every port on all addresses (IPv4 and IPv6).
  [[nodiscard]] Status Listen(const std::vector<std::pair<api::Protocol, uint16_t>>& ports);
  // Answers until `duration` has passed, or `stop` (if given) becomes true.
  void Serve(std::chrono::milliseconds duration, const std::atomic<bool>* stop = nullptr);

 private:
  std::vector<std::pair<int, api::Protocol>> sockets_;
};

// True when a TCP connection (or a UDP echo) to ip:port succeeds within `timeout`,
// from `source` when given (it must be an address of the namespace). With
// `reachability`, the question is only whether packets get through, whatever
// listens: a completed handshake or a refusal (TCP reset, ICMP port
// unreachable) counts, since netpol drops denied packets silently and a
// denial shows as a timeout.
Result<bool> Probe(const IpAddress& ip, api::Protocol protocol, uint16_t port,
                   std::chrono::milliseconds timeout, const std::optional<IpAddress>& source = std::nullopt,
                   bool reachability = false);

}  // namespace netpol::lab
