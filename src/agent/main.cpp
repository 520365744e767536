// netpold: flags, signals and wiring only (the dataplane it programs is
// nftables); the agent is agent/agent.h.
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/agent.h"
#include "agent/nftables_backend.h"
#include "dataplane/nft/ruleset.h"
#include "kube/kubeconfig.h"

namespace {
std::atomic<bool> stop_requested{false};
}  // namespace

// What may escape is std::bad_alloc (CLI11's parse errors are handled by
// CLI11_PARSE), and ending the process is the answer to it.
// NOLINTNEXTLINE(bugprone-exception-escape)
int main(int argc, char** argv) {
  // Lists and full programs pass through large short-lived buffers. A fixed
  // mmap threshold keeps them out of the heap (glibc would otherwise raise
  // the threshold after the first such buffer is freed, and later ones would
  // fragment the heap the agent's long-lived state lives in).
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_ARENA_MAX, 1);
  netpol::agent::AgentOptions options;
  std::string level = "info";
  CLI::App app{
      "netpold: the netpol node agent. Watches namespaces, pods and NetworkPolicies through the\n"
      "Kubernetes API and enforces the policies for this node's pods in nftables.\n\n"
      "Example (the lab starts it like this, one per node):\n"
      "  netpold --server http://127.0.0.1:6443 --node-name node-1 --netns lab-node-1 \\\n"
      "          --state-dir /var/lib/netpol/lab/node-1/cni --socket /run/netpol/node-1.sock"};
  std::string kubeconfig;
  std::string context;
  app.add_option("--server", options.api.server,
                 "API server URL, instead of a kubeconfig or the pod's service account");
  app.add_option("--token-file", options.api.bearer_token_file,
                 "with --server: a file holding the bearer token (read before every request)");
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig file (default: $KUBECONFIG, then, outside a pod, ~/.kube/config)");
  app.add_option("--context", context, "kubeconfig context (default: its current-context)");
  app.add_option("--node-name", options.node_name, "this node's name (pods with spec.nodeName equal to it)")
      ->required();
  app.add_option("--netns", options.netns,
                 "network namespace of the node to program (default: the current one)");
  app.add_option("--state-dir", options.state_dir, "netpol-cni's state directory (pod registrations)")
      ->capture_default_str();
  app.add_option("--socket", options.socket_path, "unix socket netpol-cni confirms pods on")
      ->capture_default_str();
  app.add_option("--cni-conf", options.cni_conf,
                 "netpol-cni's network configuration (conf or conflist): reserve the addresses of pods "
                 "scheduled here and put their rules in force before their CNI ADD");
  app.add_option("--cni-max-connections", options.cni_max_connections,
                 "CNI plugin connections served at once (more wait in the socket's listen queue)")
      ->capture_default_str();
  int64_t cni_timeout_ms = options.cni_timeout.count();
  app.add_option("--cni-timeout-ms", cni_timeout_ms,
                 "how long the CNI plugin may take to send each request line before its connection is closed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  int64_t check_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(options.dataplane_check_interval).count();
  app.add_option("--dataplane-check-interval", check_seconds,
                 "seconds between read-backs of the node's rules, which restore what others changed "
                 "(changes are also noticed at once from nftables' notifications)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--log-group", options.log_group, "NFLOG group for denied connections")
      ->capture_default_str();
  app.add_option("--flow-logs", options.flow_logs,
                 "read denied connections from the NFLOG group and serve them as flow lines "
                 "(GET /flows, `netpol flows`)")
      ->capture_default_str();
  app.add_option("--flow-logs-allowed", options.flow_logs_allowed,
                 "also log new connections a rule allowed, with the policy and rule (at most " +
                     std::to_string(netpol::dataplane::nft::kAllowedLogRate) + "/s per direction and family)")
      ->capture_default_str();
  app.add_option("--metrics-address", options.metrics_address,
                 "host:port to serve /metrics (Prometheus), /healthz and /readyz on (default: none)");
  app.add_option("--log-level", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.cni_timeout = std::chrono::milliseconds(cni_timeout_ms);
  options.dataplane_check_interval = std::chrono::seconds(check_seconds);
  // Where the API is: --server; else a kubeconfig when one is named; else the
  // pod's service account (a DaemonSet); else ~/.kube/config.
  if (options.api.server.empty()) {
    const bool named = !kubeconfig.empty() || std::getenv("KUBECONFIG") != nullptr || !context.empty();
    netpol::Result<netpol::kube::ClientConfig> found =
        !named && std::getenv("KUBERNETES_SERVICE_HOST") != nullptr
            ? netpol::kube::InClusterConfig()
            : netpol::kube::LoadKubeconfig({.path = kubeconfig, .context = context});
    if (!found) {
      std::cerr << "netpold: " << found.error().message() << "\n";
      return 2;
    }
    options.api = std::move(*found);
  }
  options.log_level = level == "debug"   ? netpol::agent::LogLevel::kDebug
                      : level == "warn"  ? netpol::agent::LogLevel::kWarn
                      : level == "error" ? netpol::agent::LogLevel::kError
                                         : netpol::agent::LogLevel::kInfo;
  std::signal(SIGTERM, [](int) { stop_requested = true; });
  std::signal(SIGINT, [](int) { stop_requested = true; });
  // The agent programs a dataplane::Backend; netpold's is nftables in the node's namespace.
  netpol::agent::Agent agent(options, netpol::agent::NftablesBackend);
  const netpol::Status done = agent.Run(stop_requested);
  if (!done.ok()) {
    std::cerr << "netpold: " << done.error().message() << "\n";
    return 1;
  }
  return 0;
}
