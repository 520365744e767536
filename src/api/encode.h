// Encoding api objects back to Kubernetes YAML.
//
//   std::string yaml = Encode(objects);   // multi-document YAML, "---" separated
//
// The output decodes to equal objects (decode(encode(x)) == x, tested), so it is
// what `netpol` prints for `-o yaml` and what the lab stores.
#pragma once

#include <string>
#include <vector>

#include "api/objects.h"

namespace netpol::api {

std::string Encode(const Object& object);
std::string Encode(const std::vector<Object>& objects);

}  // namespace netpol::api
