// The lab's API server: enough of the Kubernetes API, on loopback, that a
// stock kubectl and netpol's own agent work against it as against a cluster.
//
//   Result<std::unique_ptr<ApiServer>> api = ApiServer::Start({.port = 0, .database = "lab/state.db"});
//   int port = (*api)->port();                  // kubeconfig: server: http://127.0.0.1:<port>
//   // with .tls_cert and .tls_key (lab/internal/pki.h): https://127.0.0.1:<port>
//
// Served: discovery (/version, /api, /apis, resource lists), OpenAPI v3 enough
// for kubectl to use server-side field validation (and an empty v2 document for
// older kubectl, which then validates nothing itself), and namespaces, nodes,
// pods (and status), services, deployments (apps/v1) and networkpolicies
// (networking.k8s.io/v1): create, get, list (label and field selectors), watch
// (bookmarks, 410 Gone when too old), update, patch (JSON, merge and strategic,
// as `kubectl apply` sends it), delete; Table responses for `kubectl get`. Objects
// are validated by netpol's own decoder (src/api) and rejected with the Status
// kubectl prints. State lives in SQLite (lab/internal/store.h).
//
// Authentication is one bearer token (ApiServerOptions::token): whoever holds
// it may do anything, as cluster-admin may. HTTPS with a certificate and key
// given (the lab's own CA, lab/internal/pki.h), plain HTTP otherwise (tests).
// Bodies are decoded as the API server decodes them: fieldValidation (Strict,
// Warn, Ignore) judges unknown fields (never stored) and fields given twice
// (lab/internal/body.h), then the kind's defaults (lab/internal/defaults.h; a
// Service's IP families for service_ip_families), then validation. What a
// real API server does and
// this one does not: users, authorization, admission beyond validation and a scheduler
// placing pods on the least-loaded node at create, garbage collection beyond
// namespace and owner deletion, and Service virtual IPs (services are names
// only: clusterIP None; ExternalName Services have none).
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
  // The address families of the cluster's Services, the default first (as
  // kube-apiserver's --service-cluster-ip-range orders them): what a Service's
  // ipFamilyPolicy and ipFamilies default to and may ask for. The lab's pods
  // have an address of each family, IPv4 first, so its Services are dual-stack.
  std::vector<std::string> service_ip_families = {"IPv4", "IPv6"};
  // When set, every request must carry "Authorization: Bearer <token>"; others
  // get the API server's 401. The lab writes it to a kubeconfig only root reads.
  std::string token{};
  // HTTPS with this certificate and key (PEM) when set; plain HTTP otherwise.
  std::string tls_cert{};
  std::string tls_key{};
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
