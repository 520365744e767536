// Runs a scenario file (tests/testutil/scenario.h) on real packets: every pod
// with an address becomes a network namespace routed through a node namespace,
// netpol programs the node's nftables after every apply and delete, and each
// `check` between two such pods is answered by a real TCP or UDP connection.
// The packet verdict must equal both the file's expectation and the engine's.
//
// Checks the lab cannot express on packets (node: endpoints, external IPs,
// hostNetwork or address-less pods, a pod to itself, SCTP) are counted as
// skipped and reported; engine-only records (matrix, explain, lint, reject) are
// covered by the engine runner.
#pragma once

#include <string>
#include <vector>

namespace netpol::testing {

struct PacketRunResult {
  std::vector<std::string> failures;
  int checked = 0;
  int skipped = 0;
};

PacketRunResult RunScenarioOnPackets(const std::string& text, const std::string& file);

}  // namespace netpol::testing
