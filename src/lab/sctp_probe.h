// SCTP probing with raw packets. This kernel has no SCTP sockets (CONFIG_IP_SCTP
// is off) while nftables and conntrack do handle SCTP, so a probe sends an SCTP
// INIT chunk through a raw socket and an observer at the destination watches
// for its arrival: it arrived iff the dataplane let the association start.
//
//   Result<SctpInitObserver> observer = SctpInitObserver::Open(IpFamily::kV4);  // in the destination's netns
//   Status sent = SendSctpInit(source, destination, 9000, tag);                // in the source's netns
//   Result<bool> arrived = observer->Await(source, 9000, tag, deadline);
//
// Both calls act in the network namespace of the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "base/ip.h"
#include "base/result.h"

namespace netpol::lab {

// CRC32c (Castagnoli), the SCTP checksum (RFC 4960 appendix B).
uint32_t Crc32c(const uint8_t* data, size_t size);

// Sends one SCTP packet with an INIT chunk from `source` (an address of this
// namespace; the kernel picks one when empty) to destination:port.
[[nodiscard]] Status SendSctpInit(const std::optional<IpAddress>& source, const IpAddress& destination,
                                  uint16_t port, uint32_t initiate_tag);

class SctpInitObserver {
 public:
  [[nodiscard]] static Result<SctpInitObserver> Open(IpFamily family);
  SctpInitObserver(SctpInitObserver&& other) noexcept;
  SctpInitObserver& operator=(SctpInitObserver&&) = delete;
  ~SctpInitObserver();

  // True when an INIT from `source` to `port` carrying `initiate_tag` arrives
  // before `deadline`.
  Result<bool> Await(const IpAddress& source, uint16_t port, uint32_t initiate_tag,
                     std::chrono::steady_clock::time_point deadline);

 private:
  SctpInitObserver(int fd, IpFamily family) : fd_(fd), family_(family) {}
  int fd_ = -1;
  IpFamily family_;
};

}  // namespace netpol::lab
