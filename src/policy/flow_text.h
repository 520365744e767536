// Parsing the textual flow ends and ports users type (CLI flags, scenario files).
//
//   Result<Endpoint> from = ParseEndpoint(engine, "default/np-test-wordpress-0", "default");
//   Result<Endpoint> to = ParseEndpoint(engine, "198.51.100.7", "default");
//   Result<PortText> port = ParsePortText("3306/TCP");
//   Result<uint16_t> number = ResolvePort(engine, *port, *to);  // named ports too
//
// Endpoints: NAMESPACE/POD, POD (in the default namespace given), an IP address
// (a pod's address means that pod), or node:NAME.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/objects.h"
#include "base/result.h"
#include "policy/engine.h"

namespace netpol::policy {

struct PortText {
  std::optional<uint16_t> number;
  std::string name;  // a named port, when number is empty
  api::Protocol protocol = api::Protocol::kTCP;
};

Result<Endpoint> ParseEndpoint(const Engine& engine, std::string_view text,
                               std::string_view default_namespace);
// "3306", "3306/TCP", "53/udp", "http", "http/TCP".
Result<PortText> ParsePortText(std::string_view text);
// The port number of `port` at destination `to` (named ports resolve against a pod).
Result<uint16_t> ResolvePort(const Engine& engine, const PortText& port, const Endpoint& to);
// Makes a flow, choosing addresses of one family when pods have several.
Flow MakeFlow(const Engine& engine, Endpoint from, Endpoint to, api::Protocol protocol, uint16_t port);

// A connection in one address family (docs/SEMANTICS.md §19).
struct FamilyFlow {
  std::optional<IpFamily> family;  // set when the ends make a connection in each family
  Flow flow;
};

// The connections `from` -> `to` stands for. Two pods, neither given at an
// address, make one connection per family they can both use: both IPv4 and
// IPv6 when both pods are dual-stack (or one is and the other has no address
// yet), each judged at the pods' addresses of that family; one otherwise
// (MakeFlow). Any end given at an address fixes the family: one connection.
std::vector<FamilyFlow> FamilyFlows(const Engine& engine, const Endpoint& from, const Endpoint& to,
                                    api::Protocol protocol, uint16_t port);
// "IPv4" or "IPv6".
std::string_view FamilyName(IpFamily family);

}  // namespace netpol::policy
