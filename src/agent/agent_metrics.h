// What netpold's /metrics says, from a snapshot of the agent and the
// dataplane's counters (agent/metrics.h writes the text format).
//
//   AgentMetrics m{.ready = true, .local_pods = 3, ...};
//   std::vector<dataplane::ConnectionCount> counted = *backend->CountConnections();
//   std::string body = RenderMetrics(m, counted, engine);
//
// The per-pod counters become connections per namespace: each counted
// address is looked up in the engine ("unknown" when it is no pod's now).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/cni_server.h"
#include "agent/metrics.h"
#include "dataplane/backend.h"
#include "policy/engine.h"

namespace netpol::agent {

struct AgentMetrics {
  bool ready = false;
  size_t local_pods = 0;
  size_t reserved_pods = 0;
  uint64_t installed_elements = 0;
  uint64_t programs = 0;
  uint64_t failures = 0;
  uint64_t repairs = 0;
  std::optional<CniServerStats> cni{};
  struct Watch {
    std::string kind{};
    uint64_t events = 0;
    int lists = 0;    // lists made, the first included
    int watches = 0;  // watches started, the first included
  };
  std::vector<Watch> watches{};
  uint64_t flow_lines = 0;
  uint64_t flows_suppressed = 0;
  const Histogram* program_seconds = nullptr;  // compile + dataplane, per update
  const Histogram* update_seconds = nullptr;   // change reached the agent -> in force
};

std::string RenderMetrics(const AgentMetrics& agent, const std::vector<dataplane::ConnectionCount>& counted,
                          const policy::Engine& engine);

}  // namespace netpol::agent
