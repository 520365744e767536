// `netpol lab`: a Kubernetes-compatible cluster on one machine.
//
//   LabOptions lab{.dir = "/var/lib/netpol/lab", .nodes = 2};
//   Status up = LabUp(lab, std::cout);      // control plane + nodes, waits until ready
//   // export KUBECONFIG=$(netpol lab kubeconfig); kubectl create -f ...
//   Status down = LabDown(lab, std::cout);  // removes everything it created
//
// LabUp starts `netpol lab run` as a daemon: the API server on loopback
// (lab/apiserver.h), the deployment and service controllers, one kubelet per
// node (lab/kubelet.h) and one netpold per node (the real agent binary). Each
// node is a network namespace of its own, with its pod CIDR (198.18.<i>.0/24,
// 2001:2:0:<i>::/64), joined to the others through a fabric namespace that
// routes between the pod CIDRs; the root namespace's routes and firewall are
// never touched. Everything created (namespaces, processes, files under
// /etc/netns) is journaled in the lab directory first, so LabDown removes it
// also after a crash.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "base/result.h"
#include "policy/engine.h"
#include "policy/matrix.h"

namespace netpol::lab {

struct LabOptions {
  std::string dir = "/var/lib/netpol/lab";
  std::string name = "nplab";  // prefix of every network namespace the lab creates
  int nodes = 1;
  int port = 0;             // API server port; 0: any free one
  std::string bin_dir;      // where netpol, netpol-cni, netpold and netpol-probe are
  bool keep_state = false;  // down: keep the database (objects come back with `up`)
};

Status LabUp(const LabOptions& options, std::ostream& progress);
Status LabDown(const LabOptions& options, std::ostream& progress);
// The control plane process itself (what `up` starts in the background).
Status LabRun(const LabOptions& options);
std::string KubeconfigPath(const LabOptions& options);

// The real connectivity matrix of a running lab, measured by connecting from
// every pod's namespace to every other pod on each port, beside what the
// engine expects from the same cluster state (read from the lab's API).
//
// A pair counts as reached when it is over each address family both pods
// have (every address of the target is probed, IPv6 too); a UDP port nothing
// listens on counts as reached when the pod answers ICMP port unreachable, as
// a TCP port does with a reset (netpol drops what it denies, silently). Pods
// without an address (not started, finished) are in neither matrix, and SCTP
// ports are not probed (this kernel has no SCTP sockets): both are listed.
struct LabProbe {
  policy::Engine engine;
  policy::Matrix expected;
  policy::Matrix measured;
  std::vector<policy::PortProto> not_probed;  // SCTP ports, in neither matrix
  std::vector<std::string> without_address;   // "namespace/name" of pods left out
};
Result<LabProbe> ProbeLab(const LabOptions& options, const std::vector<policy::PortProto>& ports);

}  // namespace netpol::lab
