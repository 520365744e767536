// netpol-cni's side of the node agent's socket (the protocol is
// cni/protocol.h): asks the agent to enforce or forget a pod and waits for its
// answer.
//
//   Status c = ConfirmWithAgent("/run/netpol/agent.sock", AgentOp::kAdd, pod, 5000ms);
//
// One conversation, for an ADD that announces the pod before it wires it: the
// agent starts reading the pod's namespace's policies from the API while the
// plugin creates interfaces, instead of after.
//
//   Result<AgentConnection> agent = AgentConnection::Open(socket);
//   if (agent) (void)agent->Announce("shop", "db-0");   // no answer awaited
//   ... allocate addresses ...
//   if (agent) (void)agent->Stage(pod);                  // no answer awaited
//   ... wire ...
//   Status s = agent ? agent->Confirm(AgentOp::kAdd, pod, 5000ms) : ConfirmWithAgent(...);
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "base/result.h"
#include "cni/protocol.h"
#include "cni/registry.h"

namespace netpol::cni {

// Asks the agent to enforce (kAdd) or forget (kDel) the pod, or to answer
// kCheck or kStatus, and waits for its answer. kUnavailable when the agent
// cannot be reached or does not answer within `timeout`; kFailedPrecondition
// when it answers with an error.
Status ConfirmWithAgent(const std::string& socket_path, AgentOp op, const PodRegistration& pod,
                        std::chrono::milliseconds timeout);

class AgentConnection {
 public:
  [[nodiscard]] static Result<AgentConnection> Open(const std::string& socket_path);
  AgentConnection(AgentConnection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  AgentConnection& operator=(AgentConnection&&) = delete;
  ~AgentConnection();

  Status Announce(const std::string& pod_namespace, const std::string& pod_name);
  // The pod's registration as soon as its addresses are known, before it is
  // wired: the agent programs its rules while the plugin wires (no answer
  // awaited). Confirm(kAdd) with the same registration then waits for them
  // to be in force; a connection closed without it withdraws the pod.
  Status Stage(const PodRegistration& pod);
  // As ConfirmWithAgent, on this connection; once per connection. kStatus
  // sends no registration.
  Status Confirm(AgentOp op, const PodRegistration& pod, std::chrono::milliseconds timeout);

 private:
  explicit AgentConnection(int fd) : fd_(fd) {}
  Status Send(const AgentRequest& request);
  int fd_;
};

}  // namespace netpol::cni
