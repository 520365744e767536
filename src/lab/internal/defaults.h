// What the API server does to an object between decoding it and storing it,
// for the kinds the lab serves: the defaults of k8s.io/kubernetes
// pkg/apis/*/v1/defaults.go (and the few fields a create's admission fills),
// and the fields its decoder drops because they are not in the kind's schema.
//
//   ApplyDefaults("networkpolicies", object);   // policyTypes, ports' protocol TCP
//   std::vector<std::string> unknown = DropFields(object, {"spec.ingres"});
//
// Checked against kube-apiserver 1.34.4 (`kubectl create --dry-run=server -o json`).
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace netpol::lab::internal {

using Json = nlohmann::json;

// `plural`: the resource ("pods", "deployments", ...). `create`: also what a
// create alone fills (a pod's service account, priority, ...).
void ApplyDefaults(const std::string& plural, Json& object, bool create);

// The fields of a Service the API server's schema does not have ("spec.selectr",
// "spec.ports[0].prot"), for the kinds src/api does not decode; in document order.
std::vector<std::string> UnknownServiceFields(const Json& service);

// Removes the fields at these paths ("spec.ingress[0].fro", as the decoder
// names them) and returns the paths found, in the order the API server's
// decoder meets them (the body's order: kubectl sends keys sorted).
std::vector<std::string> DropFields(Json& object, const std::set<std::string>& paths);

}  // namespace netpol::lab::internal
