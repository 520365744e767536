// The lab's API server: enough of the Kubernetes API, on loopback, that a
// stock kubectl and netpol's own agent work against it as against a cluster.
//
//   Result<std::unique_ptr<ApiServer>> api = ApiServer::Start({.port = 0, .database = "lab/state.db"});
//   int port = (*api)->port();                  // kubeconfig: server: http://127.0.0.1:<port>
//
// Served: discovery (/version, /api, /apis, resource lists), OpenAPI v3 enough
// for kubectl to use server-side field validation (and an empty v2 document for
// older kubectl, which then validates nothing itself), and namespaces, nodes,
// pods (and status), services, deployments (apps/v1) and networkpolicies
// (networking.k8s.io/v1): create, get, list (label and field selectors), watch
// (bookmarks, 410 Gone when too old), update, patch (merge and strategic, as
// `kubectl apply` sends it), delete; Table responses for `kubectl get`. Objects
// are validated by netpol's own decoder (src/api) and rejected with the Status
// kubectl prints. State lives in SQLite (lab/internal/store.h).
//
// What a real API server does and this one does not: authentication and
// authorization (loopback only), admission beyond validation and a scheduler
// placing pods on the least-loaded node at create, garbage collection beyond
// namespace and owner deletion, and Service virtual IPs (services are names
// only: clusterIP None).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace netpol::lab {

struct ApiServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;                       // 0: any free port
  std::string database = ":memory:";  // SQLite file
  std::vector<std::string> nodes;     // node objects to serve (the lab's nodes)
  // Watch events reach watchers this much after they happen: a lagging watch,
  // for tests of what a client must not assume about it (start races).
  std::chrono::milliseconds watch_delay{0};
};

class ApiServer {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ApiServer>> Start(const ApiServerOptions& options);
  ~ApiServer();
  int port() const;
  std::string url() const;
  void Stop();

  struct Impl;

 private:
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netpol::lab
