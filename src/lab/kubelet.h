// The lab's kubelet: realises the pods the API server puts on its node as
// network namespaces running host programs, wired by the CNI plugin exactly
// as a container runtime wires them.
//
//   Kubelet kubelet({.node = "node-1", .node_netns = "nplab-node-1", .api = "http://127.0.0.1:PORT", ...});
//   std::thread t([&] { kubelet.Run(stop); });
//
// For each pod (watched with fieldSelector spec.nodeName=<node>): a network
// namespace, the CNI conflist's plugins run in the node's namespace with
// CNI_* and the config on stdin, then each container's command and args (and
// env) run through `ip netns exec` (so /etc/netns/<pod>/hosts is the pod's
// /etc/hosts); a container without a command runs netpol-probe on its
// declared ports. Readiness and liveness probes (httpGet, tcpSocket, exec) run
// from the node's namespace, as a kubelet's do, and drive the Ready condition;
// an exited process or a failed liveness probe restarts the container with
// back-off (CrashLoopBackOff, restartCount). Status goes back to the API
// server. A deleted pod's processes are stopped, CNI DEL runs, and the
// namespace is removed.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace netpol::lab {

struct KubeletOptions {
  std::string node;          // node name
  std::string node_netns;    // the node's network namespace
  std::string api;           // API server URL
  std::string token;         // the API server's bearer token ("" for none)
  std::string ca;            // PEM of the CA its certificate chains to (with https)
  std::string conflist;      // CNI conflist file
  std::string cni_path;      // directory of the CNI plugins
  std::string probe_binary;  // netpol-probe
  std::string log_dir;       // container logs
  std::string netns_prefix;  // pods' namespaces are <prefix><namespace>.<name>
  // Records what the kubelet creates (netns names, pids) so `lab down` can
  // remove it after a crash.
  std::function<void(const std::string& kind, const std::string& what)> journal;
};

class Kubelet {
 public:
  explicit Kubelet(KubeletOptions options);
  ~Kubelet();
  // Runs until `stop`; then stops every pod it runs.
  void Run(const std::atomic<bool>& stop);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace netpol::lab
