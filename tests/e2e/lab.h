// A test cluster on real packets: a node network namespace with routed pods
// (tests/e2e/lab.sh), probe servers inside the pods, and probes between them.
//
//   PacketLab lab;                                   // unique name prefix
//   ASSERT_TRUE(lab.Up({{"198.18.0.10", "2001:2::10"}, {"198.18.0.11", ""}}).ok());
//   lab.Serve({{api::Protocol::kTCP, 3306}});        // every pod listens
//   bool ok = lab.Reaches("198.18.0.11", "198.18.0.10", api::Protocol::kTCP, 3306, 250ms);
//
// Everything it creates is removed by the destructor, also when a test fails.
// Addresses come only from 198.18.0.0/15 and 2001:2::/48.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "base/result.h"

namespace netpol::testing {

// Root, iproute2 and nftables present. In CI (CI=true) a missing prerequisite
// is a failure, elsewhere a skip; the message says which.
std::string MissingE2ePrerequisite();

// A TCP port on 127.0.0.1 that was free a moment ago (for a server a test starts next).
int FreeLoopbackPort();

// At the top of an end-to-end test: in CI a missing prerequisite fails the
// test; elsewhere it skips it.
#define NETPOL_REQUIRE_E2E()                                                                  \
  do {                                                                                        \
    const std::string netpol_missing = ::netpol::testing::MissingE2ePrerequisite();           \
    if (!netpol_missing.empty()) {                                                            \
      const char* netpol_ci = std::getenv("CI");                                              \
      if (netpol_ci != nullptr && std::string(netpol_ci) == "true") FAIL() << netpol_missing; \
      GTEST_SKIP() << netpol_missing;                                                         \
    }                                                                                         \
  } while (false)

class PacketLab {
 public:
  PacketLab();
  ~PacketLab();
  PacketLab(const PacketLab&) = delete;
  PacketLab& operator=(const PacketLab&) = delete;

  // Creates the node and one pod namespace per entry (IPv4 address, optional IPv6),
  // and an "outside" namespace holding the `external` addresses.
  [[nodiscard]] Status Up(const std::vector<std::pair<std::string, std::string>>& pods,
                          const std::vector<std::string>& external = {});
  // Starts a probe server in every pod, listening on these ports.
  [[nodiscard]] Status Serve(const std::vector<std::pair<api::Protocol, uint16_t>>& ports);
  // A connection from the pod that owns `from` to `to` gets through within `timeout`.
  Result<bool> Reaches(const std::string& from, const std::string& to, api::Protocol protocol, uint16_t port,
                       std::chrono::milliseconds timeout);

  // An ICMP echo from the pod that owns `from` (IPv4) to `to` is answered within `timeout`.
  Result<bool> Pings(const std::string& from, const std::string& to, std::chrono::milliseconds timeout);

  const std::string& node() const { return node_; }
  // The pod namespace owning an address ("" if none).
  std::string PodNetns(const std::string& address) const;
  const std::string& prefix() const { return prefix_; }

 private:
  Result<bool> SctpReaches(const std::string& source_ns, const IpAddress& source, const IpAddress& target,
                           uint16_t port, std::chrono::milliseconds timeout);

  std::string prefix_;
  std::string node_;
  std::map<std::string, std::string> netns_by_address_;
  std::vector<std::string> pod_netns_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> servers_;
  bool up_ = false;
};

}  // namespace netpol::testing
