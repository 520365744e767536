// Which pods are local: the host routes of the node's network namespace.
//
//   Result<std::map<IpAddress, std::string>> routes = HostRoutes("np-node");
//   // 198.18.0.10 -> "nph1a2b3c" : a /32 (or /128) route straight to an interface
//
// In the routed model every local pod has a host route without a gateway to its
// host-side interface; remote pods are reached through a gateway. Read from
// /proc/thread-self/net/{route,ipv6_route} inside the namespace.
#pragma once

#include <map>
#include <string>

#include "base/ip.h"
#include "base/result.h"

namespace netpol::dataplane {

Result<std::map<IpAddress, std::string>> HostRoutes(const std::string& netns);

}  // namespace netpol::dataplane
