// Lint: warnings about policies that are valid but probably not what was meant.
//
//   for (const Finding& f : Lint(engine)) std::cout << f.ToString() << "\n";
//
// NetworkPolicy checks (each Finding names its check):
//   selects-nothing        a policy's podSelector matches no pod
//   peer-matches-nothing   a pod/namespace selector peer matches no pod
//   namespace-unmatched    a namespaceSelector matches no namespace's labels
//   named-port-undeclared  a named port no destination pod declares
//   egress-blocks-dns      egress-isolated pods that cannot reach the cluster DNS pods on 53/UDP or
//                          53/TCP (judged with the engine; without DNS pods in the input: no rule
//                          allows 53 to kube-system or to an IP)
//   rule-shadowed          a rule that a broader rule (same or wider targets) already allows
//   ipblock-covers-pods    an ipBlock that contains pod IPs (matched here, not by every plugin)
// ClusterNetworkPolicy checks (docs/SEMANTICS.md §22):
//   cluster-rule-shadowed      every flow a rule could match is decided or passed before it, by
//                              an earlier rule of its policy or of a lower-priority-number policy
//                              of its tier covering its subject
//   cluster-priority-tie       two policies of a tier with equal priority whose subjects overlap
//                              (their order is the implementation's; netpol's is by name)
//   cluster-pass-to-default    a Pass that nothing below decides for some of its subject pods:
//                              it allows, as Accept would
//   baseline-unreachable       a Baseline policy's rules for a direction in which NetworkPolicies
//                              select every pod of its subject (they are final for those pods)
//   domain-names-unenforced    domainNames peers, which netpol's dataplane does not match
//   domain-wildcard-apex       "*.example.com" without "example.com": the apex is not matched
//   egress-blocks-dns          a Deny rule that decides some pod's egress to the cluster DNS pods
//                              on 53/UDP or 53/TCP (judged with the engine; only with DNS pods
//                              in the input). The NetworkPolicy check leaves such flows to it.
// Findings are judged against the cluster state given (pods, namespaces):
// ClusterNetworkPolicy findings first, in evaluation order, then NetworkPolicy
// findings sorted by policy, then field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/objects.h"
#include "policy/engine.h"

namespace netpol::policy {

struct Finding {
  // Where a ClusterNetworkPolicy stands: its tier and priority.
  struct ClusterRank {
    api::Tier tier = api::Tier::kAdmin;
    int32_t priority = 0;
  };

  std::string check;   // "selects-nothing"
  std::string policy;  // "namespace/name"; a ClusterNetworkPolicy: "admin/name", "baseline/name"
  std::string field;   // "spec.ingress[0].from[1]", or ""
  std::string message;
  api::SourceLocation where;
  std::optional<ClusterRank> cluster;  // set for ClusterNetworkPolicy findings
  std::string rule;                    // the name of the rule `field` is in, if it has one

  std::string_view kind() const { return cluster ? "ClusterNetworkPolicy" : "NetworkPolicy"; }
  // "file:line:col: warning: [check] NetworkPolicy ns/name: field: message"; a
  // ClusterNetworkPolicy's: "...: warning: [check] ClusterNetworkPolicy admin/x (Admin tier,
  // priority 10): spec.ingress[1] (rule "r"): message"
  std::string ToString() const;
};

std::vector<Finding> Lint(const Engine& engine);

}  // namespace netpol::policy
