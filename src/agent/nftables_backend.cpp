#include "agent/nftables_backend.h"

#include <utility>

#include "dataplane/nft/nft_backend.h"

namespace netpol::agent {

Result<std::unique_ptr<dataplane::Backend>> NftablesBackend(const AgentOptions& options) {
  NETPOL_ASSIGN_OR_RETURN(
      std::unique_ptr<dataplane::nft::NftBackend> backend,
      dataplane::nft::NftBackend::Create(
          {options.netns,
           {.log_group = options.log_group, .log_allowed = options.flow_logs && options.flow_logs_allowed},
           /*observe_at_create=*/true}),
      "");
  return std::unique_ptr<dataplane::Backend>(std::move(backend));
}

}  // namespace netpol::agent
