// Which pods the CNI plugin attached on this node, for the node agent: the
// pod's identity (from CNI_ARGS), its addresses and its host-side interface.
//
//   PodRegistration pod{.owner = {"c1", "eth0"}, .pod_namespace = "shop", .pod_name = "db-0",
//                       .ips = {ip}, .host_interface = "np3f2a..."};
//   Status s = Register("/var/lib/netpol/cni", pod);          // pods/<container>_<ifname>.json
//
// Registrations are files (written atomically) so an agent that restarts finds
// every attached pod again; the plugin also sends them to the agent
// (cni/agent_client.h, in the protocol of cni/protocol.h).
#pragma once

#include <string>
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

}  // namespace netpol::cni
