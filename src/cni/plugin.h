// netpol-cni: the CNI plugin (spec 1.0 and 1.1, also 0.4.0) that wires pods
// into the node in the routed model and registers them for policy.
//
//   Invocation call{.command = "ADD", .container_id = "c1", .netns = "/proc/42/ns/net",
//                   .ifname = "eth0", .args = "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0",
//                   .config = R"({"cniVersion":"1.0.0","name":"netpol","type":"netpol-cni",
//                               "ipam":{"ranges":["198.18.1.0/24"]}})"};
//   Outcome out = RunPlugin(call);   // out.exit_code, out.stdout_text (result or error JSON)
//
// Routed mode (first in its chain): a veth pair, the pod end named CNI_IFNAME
// with the pod's /32 and /128 and a default route via a link-local gateway
// (169.254.1.1, fe80::1); the node end with proxy ARP/NDP and a host route per
// address. Addresses come from the built-in IPAM (cni/ipam.h).
// Chained, policy-only mode (ADD with a prevResult): the addresses are taken
// from the previous plugin's result, which is passed on unchanged.
// Either way the pod is registered for policy (cni/registry.h); with an
// `agentSocket`, ADD succeeds only once the node agent confirms the pod's rules
// are in force, so no packet of the pod goes out or in before its policy.
//
// Configuration (JSON on stdin, with the spec's name/type/cniVersion):
//   ipam.ranges      ["198.18.1.0/24", "2001:2:0:1::/64"]  routed mode: one address per range
//   stateDir         "/var/lib/netpol/cni"                 allocations and registrations
//   agentSocket      "/run/netpol/agent.sock"              confirm policy before ADD returns
//   agentTimeoutMs   5000
//   mtu              (optional)
//   dns              (optional, copied into the result)
#pragma once

#include <string>

#include "base/result.h"
#include "cni/ipam.h"

namespace netpol::cni {

struct Invocation {
  std::string command;       // CNI_COMMAND
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS
  std::string ifname;        // CNI_IFNAME
  std::string args;          // CNI_ARGS
  std::string path;          // CNI_PATH
  std::string config;        // stdin
};

struct Outcome {
  int exit_code = 0;
  std::string stdout_text;  // the result, the version info, or the error JSON
};

Outcome RunPlugin(const Invocation& call);

// The address allocator of a network configuration (a conf, or a conflist
// with a netpol-cni entry) as the plugin's ADD uses it, for the node agent to
// reserve pods' addresses ahead of their ADD (cni/ipam.h). kNotFound when the
// configuration has no netpol-cni entry or no ranges (chained mode).
Result<Ipam> OpenNetworkIpam(const std::string& config);

// The spec's well-known error codes (plugin-specific ones are >= 100).
enum CniError : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kNotAvailable = 50,
  kNotAvailableLimited = 51,
  kCheckFailed = 100,
  kWiringFailed = 101,
  kPolicyNotConfirmed = 102,
};

}  // namespace netpol::cni
