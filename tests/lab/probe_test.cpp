// The lab's connectivity probe on loopback (no root): what counts as reached.
#include "lab/probe.h"

#include <gtest/gtest.h>

#include <chrono>

namespace netpol::lab {
namespace {

using std::chrono::milliseconds;

// A port nothing listens on, found by binding one and letting it go.
uint16_t ClosedPort(api::Protocol protocol) {
  for (uint16_t port = 40000; port < 40100; ++port) {
    ProbeServer probe;
    if (probe.Listen({{protocol, port}}).ok()) return port;
  }
  return 0;
}

// UDP to a port nothing listens on: the pod answers ICMP port unreachable,
// which is as much an answer as TCP's reset (it used to be ignored: `netpol
// lab probe` showed such UDP ports DENY! on a cluster without policies).
TEST(ProbeTest, ARefusalCountsAsReachedForUdpAsForTcp) {
  for (const char* address : {"127.0.0.1", "::1"}) {
    const IpAddress ip = *IpAddress::Parse(address);
    for (const api::Protocol protocol : {api::Protocol::kTCP, api::Protocol::kUDP}) {
      const uint16_t port = ClosedPort(protocol);
      ASSERT_NE(port, 0);
      const Result<bool> reached = Probe(ip, protocol, port, milliseconds(500), std::nullopt, true);
      ASSERT_TRUE(reached.ok()) << reached.error().message();
      EXPECT_TRUE(*reached) << address << " " << api::ProtocolName(protocol);
      // Without `reachability`, a refusal is no answer.
      const Result<bool> answered = Probe(ip, protocol, port, milliseconds(500), std::nullopt, false);
      ASSERT_TRUE(answered.ok());
      EXPECT_FALSE(*answered) << address << " " << api::ProtocolName(protocol);
    }
  }
}

}  // namespace
}  // namespace netpol::lab
