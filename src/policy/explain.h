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

// ClusterNetworkPolicy (explain_cluster.cpp).
// "all pods in namespaces matching env=prod", "nodes matching role=dns", "IPs in 10.0.0.0/8".
std::string DescribeClusterPeer(const api::ClusterPeer& peer);
// "9090/TCP", "53-54/UDP", "the port named http".
std::string DescribeClusterProtocol(const api::ClusterProtocol& protocol);
// "admin/x ingress[0] allow-monitoring (priority 10; from[0]: ...; protocols[0]: 9090/TCP)",
// or without the parenthesis' peer and port when `brief` ("... (priority 10)").
std::string DescribeClusterRule(const Engine& engine, Direction direction, const ClusterRuleRef& ref,
                                bool brief = false);
// A multi-line account: tier, priority, subject, and each rule in evaluation order.
std::string ExplainClusterPolicy(const Engine& engine, ClusterPolicyId policy);

// The verdict with one line per direction, ending in a newline.
std::string FormatVerdict(const Engine& engine, const Flow& flow, const Verdict& verdict);

}  // namespace netpol::policy
