// A pod registration as a JSON object: the form of the registration files
// (registry.h) and of the agent protocol's requests (protocol.h).
//
//   nlohmann::json j = RegistrationToJson(pod);
//   Result<PodRegistration> back = RegistrationFromJson(j);   // == pod
#pragma once

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "cni/registry.h"

namespace netpol::cni::internal {

nlohmann::json RegistrationToJson(const PodRegistration& pod);
// Checks every field's type (never throws): kInvalidArgument naming the field.
Result<PodRegistration> RegistrationFromJson(const nlohmann::json& j);

}  // namespace netpol::cni::internal
