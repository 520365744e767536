// Validation of api objects as the Kubernetes API server does it.
//
//   Diagnostics problems = Validate(object);  // all of them, not just the first
//
// Names and namespaces (RFC 1123), label keys and values, selector operators and
// their values, port numbers and IANA_SVC_NAME port names, endPort rules,
// protocols, CIDRs and `except` inside `cidr`, peers, policy types, container
// ports and workload selectors. Messages use apimachinery's wording
// ("Invalid value: 80: must be greater than or equal to `port`"), and each
// diagnostic carries the field path and, from the object's Provenance, where in
// the file that field is.
//
// The Is* checks return apimachinery's messages (empty when valid) so the lab API
// server and the CLI report the same words.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/diagnostic.h"
#include "api/objects.h"

namespace netpol::api {

Diagnostics Validate(const Object& object);

std::vector<std::string> IsDns1123Label(std::string_view value);
std::vector<std::string> IsDns1123Subdomain(std::string_view value);
std::vector<std::string> IsQualifiedName(std::string_view value);
std::vector<std::string> IsValidLabelValue(std::string_view value);
std::vector<std::string> IsValidPortNum(int64_t port);
std::vector<std::string> IsValidPortName(std::string_view port);

}  // namespace netpol::api
