// Plain-English descriptions of policies, peers, ports and verdicts.
//
//   std::cout << ExplainPolicy(engine, *engine.FindPolicy("default", "db-frontend-allow"));
//   std::cout << FormatVerdict(engine, flow, engine.Evaluate(flow));
//
// The words are the CLI's (`netpol explain`, `netpol check`) and are pinned by
// golden tests; wording changes are reviewed there.
#pragma once

#include <string>

#include "api/objects.h"
#include "policy/engine.h"

namespace netpol::policy {

// "pods matching app=web in namespace default", "IPs in 198.18.0.0/15 except ...".
std::string DescribePeer(const api::NetworkPolicyPeer& peer, const std::string& policy_namespace);
// "3306/TCP", "8000-8080/TCP", "the port named http (TCP)", "every TCP port".
std::string DescribePort(const api::NetworkPolicyPort& port);
// "default/web-0 (198.18.0.5)", "node node-1", "203.0.113.9".
std::string DescribeEndpoint(const Engine& engine, const Endpoint& endpoint);
// "default/db ingress[0] (from[1]: ...; ports[0]: 3306/TCP)".
std::string DescribeRule(const Engine& engine, Direction direction, const RuleRef& ref);

// A multi-line account of one policy: what it selects, isolates, allows.
std::string ExplainPolicy(const Engine& engine, PolicyId policy);

// The verdict with one line per direction, ending in a newline.
std::string FormatVerdict(const Engine& engine, const Flow& flow, const Verdict& verdict);

}  // namespace netpol::policy
