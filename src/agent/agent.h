// netpold, the node agent: watches namespaces, pods and network policies
// through the Kubernetes API, keeps the engine in step, and programs the
// dataplane for the pods on its node, incrementally.
//
//   Agent agent({.api = {.server = "http://127.0.0.1:6443"}, .node_name = "node-1"},
//               make_backend);   // a BackendFactory: main.cpp's makes the nftables backend
//   std::atomic<bool> stop = false;
//   Status done = agent.Run(stop);   // until stop, or until one of its loops ends or throws
//
// The pods on this node are the ones the CNI plugin registered (cni/registry.h):
// their interface and addresses come from the registration, their labels from
// the API. The plugin asks over the agent's socket and its ADD succeeds only
// once the pod's rules are in force. A registered pod the API has not shown yet
// is isolated both ways until it has (fail closed). With `cni_conf`, a pod the
// API shows scheduled here is programmed before its ADD, for addresses the
// agent reserves in the plugin's allocator (the ADD takes them over).
//
// Restart-safe: the table the previous run left stays in force (the backend
// adopts it, never flushes), nothing is programmed before every watched
// resource has been listed once, and the first program then reconciles the
// table to the cluster as it is.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/log.h"
#include "base/result.h"
#include "dataplane/backend.h"
#include "kube/client.h"

namespace netpol::agent {

struct AgentOptions {
  kube::ClientConfig api;
  std::string node_name;
  std::string netns;                              // node namespace to program; "" = this one
  std::string state_dir = "/var/lib/netpol/cni";  // where netpol-cni registers pods
  std::string socket_path = "/run/netpol/agent.sock";
  // The socket's mode, set explicitly (not left to the umask): only the
  // plugin, run by the container runtime as root, talks to it.
  mode_t socket_mode = 0600;
  // CNI connections served at once (more wait in the listen queue), and how
  // long a client may take to send each line before its connection is closed.
  size_t cni_max_connections = 32;
  std::chrono::milliseconds cni_timeout{5000};
  // netpol-cni's network configuration (conf or conflist). With one in routed
  // mode, a pod seen scheduled here gets its addresses reserved and its rules
  // put in force before its CNI ADD, which takes the addresses over and then
  // only has the pod's interface to add. "" = every pod waits for its ADD.
  std::string cni_conf;
  uint16_t log_group = 100;
  // Read the NFLOG group and write attributed flow lines (GET /flows,
  // `netpol flows`). Off, denied packets are still logged by the rules to a
  // group nobody reads, which the kernel discards.
  bool flow_logs = true;
  // Also log (and attribute to the allowing policy and rule) new connections
  // a rule allowed, rate-limited in the kernel; off by default.
  bool flow_logs_allowed = false;
  LogLevel log_level = LogLevel::kInfo;
  // "host:port" serving /metrics (Prometheus), /healthz and /readyz; "" = none.
  std::string metrics_address;
  // Someone else changing the agent's rules (`nft delete table inet netpol`)
  // is noticed from the kernel's change notifications at once, and by reading
  // the rules back this often besides; either way they are restored.
  std::chrono::milliseconds dataplane_check_interval{30000};
  bool dataplane_notifications = true;  // off: only the periodic read-back
  // /healthz fails once the programming loop, the CNI socket's accept loop or
  // the dataplane change watch has made no progress for this long (each
  // turns at least every 200 ms when idle; a program of 100k pods takes ~5 s).
  std::chrono::milliseconds stuck_after{10000};
};

// Makes the dataplane backend the agent programs, for the node namespace, log
// group and flow logs `options` name. The agent knows only dataplane::Backend;
// netpold's main.cpp chooses nftables. Called once per Run, after the CNI
// socket and the metrics address are bound.
using BackendFactory =
    std::function<Result<std::unique_ptr<dataplane::Backend>>(const AgentOptions& options)>;

struct AgentStats {
  uint64_t programs = 0;  // successful dataplane updates
  uint64_t failures = 0;  // failed ones (retried)
  uint64_t events = 0;    // watch events applied
  uint64_t repairs = 0;   // dataplane changes made by someone else, undone
  bool synced = false;    // every resource listed and the first program in force
  // The last successful update: when the newest change it carries reached the
  // agent (a watch event or a CNI request), and how long it spent compiling
  // and in the dataplane backend.
  std::chrono::steady_clock::time_point last_change_at;
  double last_compile_ms = 0;
  double last_dataplane_ms = 0;
  uint64_t last_elements_changed = 0;  // elements added plus removed
  double last_plan_ms = 0;             // of last_dataplane_ms: render and diff
  double last_send_ms = 0;             // of last_dataplane_ms: encode, kernel transaction
  uint64_t installed_elements = 0;     // nftables elements in force for the node's pods
  uint64_t reservations_in_force = 0;  // pods whose rules went in force ahead of their ADD
  // The last pod staged by the CNI plugin: its namespace's policies read from
  // the API (started when the plugin announced the pod), and attaching it once
  // its addresses came (the lock, the watch catching up with that read).
  double last_policy_read_ms = 0;
  double last_attach_ms = 0;
  // The last ADD that was staged, step by step as the agent saw it, and the
  // program that carried its pod (for `bench-lab`'s slowest ADDs).
  struct AddTimeline {
    std::chrono::steady_clock::time_point stage_received;  // "stage" read from the plugin
    std::chrono::steady_clock::time_point attached;        // attached, program asked for
    std::chrono::steady_clock::time_point checked;         // start-race check passed
    std::chrono::steady_clock::time_point add_received;    // "add" read
    std::chrono::steady_clock::time_point answered;        // "add" answered
    std::chrono::steady_clock::time_point program_started;
    std::chrono::steady_clock::time_point program_compiled;
    std::chrono::steady_clock::time_point program_applied;
  };
  AddTimeline last_add;
};

class Agent {
 public:
  Agent(AgentOptions options, BackendFactory backend);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Serves the CNI socket, watches the API and programs until `stop`. Binds
  // the CNI socket and the metrics address before anything else starts, and
  // returns their error at once; a loop that ends or throws before `stop`
  // stops the others and ends the run with an error naming it (the rules in
  // force stay in force either way). Once per Agent.
  Status Run(const std::atomic<bool>& stop);
  AgentStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace netpol::agent
