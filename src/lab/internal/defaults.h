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

// A field error of the API server's validation as a 422 carries it: the
// field's path, the cause's reason ("FieldValueInvalid", ...) and the detail
// that follows "<field>: " (field.Error.ErrorBody).
struct FieldError {
  std::string field;
  std::string reason;
  std::string detail;
};

// A Service's cluster IP and IP family fields as the API server's Service
// registry settles them before validation, on create (`old` null) and update,
// in a cluster whose Services have the address families `families` ("IPv4",
// "IPv6"; the first is the default): k8s.io/kubernetes 1.34.4
// pkg/registry/core/service (dropTypeDependentFields, patchAllocatedValues,
// and storage/alloc.go's initIPFamilyFields with the checks of
// ValidateServiceClusterIPsRelatedFields it runs first). An ExternalName
// Service has none of them. Without ipFamilyPolicy: on update the stored one;
// RequireDualStack for a headless Service without selector; SingleStack
// otherwise. Without ipFamilies: the default family, and the other one too
// when the policy is not SingleStack and the cluster has both families, or,
// for a headless Service without selector, whatever the cluster has. Returns
// the errors that reject the request (422), empty when none. A value of the
// wrong type (which the decoder answers) is left as it is.
std::vector<FieldError> SettleServiceIpFamilies(Json& service, const Json* old,
                                                const std::vector<std::string>& families);

// The fields of a Service the API server's schema does not have ("spec.selectr",
// "spec.ports[0].prot"), for the kinds src/api does not decode; in document order.
std::vector<std::string> UnknownServiceFields(const Json& service);

// Removes the fields at these paths ("spec.ingress[0].fro", as the decoder
// names them) and returns the paths found, in the order the API server's
// decoder meets them (the body's order: kubectl sends keys sorted).
std::vector<std::string> DropFields(Json& object, const std::set<std::string>& paths);

}  // namespace netpol::lab::internal
