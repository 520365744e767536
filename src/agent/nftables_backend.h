// The dataplane netpold programs in production: nftables in the node's network
// namespace, with the log group and flow-log choice of AgentOptions. The agent
// itself knows only dataplane::Backend (it takes a BackendFactory); this is the
// factory netpold's main.cpp, the end-to-end tests and the lab benchmark pass.
//
//   agent::Agent agent(options, agent::NftablesBackend);
#pragma once

#include <memory>

#include "agent/agent.h"
#include "base/result.h"
#include "dataplane/backend.h"

namespace netpol::agent {

// An nftables backend for `options.netns`, having read the table already
// installed there (so a restarted agent adopts it).
[[nodiscard]] Result<std::unique_ptr<dataplane::Backend>> NftablesBackend(const AgentOptions& options);

}  // namespace netpol::agent
