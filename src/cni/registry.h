// Which pods the CNI plugin attached on this node, for the node agent: the
// pod's identity (from CNI_ARGS), its addresses and its host-side interface.
//
//   PodRegistration pod{.owner = {"c1", "eth0"}, .pod_namespace = "shop", .pod_name = "db-0",
//                       .ips = {ip}, .host_interface = "np3f2a..."};
//   Status s = Register("/var/lib/netpol/cni", pod);          // pods/<container>_<ifname>.json
//   Status c = ConfirmWithAgent("/run/netpol/agent.sock", pod, 5000ms);
//
// Registrations are files (written atomically) so an agent that restarts finds
// every attached pod again. ConfirmWithAgent speaks one JSON line each way over
// the agent's unix socket: {"op":"add"|"del", "registration": {...}} and
// {"ok": true} once the pod's rules are in force (or {"ok": false, "error": "..."}).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "cni/ipam.h"

namespace netpol::cni {

struct PodRegistration {
  Owner owner;
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  std::vector<IpAddress> ips;
  std::string host_interface;  // "" in chained mode: the interface is not ours to vouch for
  std::string netns;
  bool chained = false;
  friend bool operator==(const PodRegistration&, const PodRegistration&) = default;
};

std::string EncodeRegistration(const PodRegistration& pod);
Result<PodRegistration> DecodeRegistration(const std::string& json);

Status Register(const std::string& state_dir, const PodRegistration& pod);
// No error when it was not registered.
Status Unregister(const std::string& state_dir, const Owner& owner);
Result<std::vector<PodRegistration>> ListRegistrations(const std::string& state_dir);
Result<PodRegistration> FindRegistration(const std::string& state_dir, const Owner& owner);

// Asks the agent to enforce (op "add") or forget (op "del") the pod and waits
// for its answer. kUnavailable when the agent cannot be reached or does not
// answer within `timeout`; kFailedPrecondition when it answers with an error.
Status ConfirmWithAgent(const std::string& socket_path, const std::string& op, const PodRegistration& pod,
                        std::chrono::milliseconds timeout);

// One conversation with the agent, for an ADD that announces the pod before it
// wires it: the agent starts reading the pod's namespace's policies from the
// API while the plugin creates interfaces, instead of after.
//
//   Result<AgentConnection> agent = AgentConnection::Open(socket);
//   if (agent) (void)agent->Announce("shop", "db-0");   // no answer awaited
//   ... allocate addresses ...
//   if (agent) (void)agent->Stage(pod);                  // no answer awaited
//   ... wire ...
//   Status s = agent ? agent->Confirm("add", pod, 5000ms) : ConfirmWithAgent(socket, "add", pod, 5000ms);
class AgentConnection {
 public:
  [[nodiscard]] static Result<AgentConnection> Open(const std::string& socket_path);
  AgentConnection(AgentConnection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  AgentConnection& operator=(AgentConnection&&) = delete;
  ~AgentConnection();

  Status Announce(const std::string& pod_namespace, const std::string& pod_name);
  // The pod's registration as soon as its addresses are known, before it is
  // wired: the agent programs its rules while the plugin wires (no answer
  // awaited). Confirm("add") with the same registration then waits for them
  // to be in force; a connection closed without it withdraws the pod.
  Status Stage(const PodRegistration& pod);
  // As ConfirmWithAgent, on this connection; once per connection.
  Status Confirm(const std::string& op, const PodRegistration& pod, std::chrono::milliseconds timeout);

 private:
  explicit AgentConnection(int fd) : fd_(fd) {}
  Status SendLine(const std::string& line);
  int fd_;
};

}  // namespace netpol::cni
