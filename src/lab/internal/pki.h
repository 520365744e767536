// The lab's own certificate authority: a CA and the API server's certificate
// for 127.0.0.1 and localhost, made when the lab starts (ECDSA P-256, SHA-256),
// as PEM. Clients trust the CA through the kubeconfig's
// certificate-authority-data, as they would a cluster's.
//
//   Result<Pki> pki = MakePki();
//   ApiServer::Start({.tls_cert = pki->server_cert, .tls_key = pki->server_key, ...});
#pragma once

#include <string>

#include "base/result.h"

namespace netpol::lab::internal {

struct Pki {
  std::string ca_cert;      // PEM
  std::string server_cert;  // PEM, signed by the CA; SANs IP:127.0.0.1, IP:::1, DNS:localhost
  std::string server_key;   // PEM (PKCS#8)
};

Result<Pki> MakePki();

// Standard base64 with padding (a kubeconfig's *-data fields).
std::string Base64(const std::string& bytes);

}  // namespace netpol::lab::internal
