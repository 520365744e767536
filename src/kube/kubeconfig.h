// Where the API server is and who we are to it, found as kubectl finds it.
//
//   Result<ClientConfig> config = LoadKubeconfig({.path = flag_kubeconfig, .context = flag_context});
//   Result<ClientConfig> in_pod = InClusterConfig();   // a DaemonSet's service account
//
// Kubeconfig: `path` if given, else every file in $KUBECONFIG (':'-separated),
// else ~/.kube/config. Several files merge as kubectl merges them: the first
// file to name a cluster, user or context wins, and so does the first
// current-context. The context is `context` if given, else current-context.
// Supported per user: token, tokenFile, client-certificate(-data) and
// client-key(-data); per cluster: server, certificate-authority(-data) and
// insecure-skip-tls-verify. Relative file names are relative to the file
// that names them. Anything else that authenticates (exec and auth-provider
// plugins, username/password) is an error naming it, never silently ignored.
//
// In cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, the pod's
// service account token (re-read before every request, as it is rotated) and
// CA under /var/run/secrets/kubernetes.io/serviceaccount (`root` prefixes
// that path, for tests).
#pragma once

#include <string>

#include "base/result.h"
#include "kube/client.h"

namespace netpol::kube {

struct KubeconfigOptions {
  std::string path = "";     // --kubeconfig; "" = $KUBECONFIG, then ~/.kube/config
  std::string context = "";  // --context; "" = current-context
};

[[nodiscard]] Result<ClientConfig> LoadKubeconfig(const KubeconfigOptions& options);
[[nodiscard]] Result<ClientConfig> InClusterConfig(const std::string& root = "");

}  // namespace netpol::kube
