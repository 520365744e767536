// Lint: warnings about policies that are valid but probably not what was meant.
//
//   for (const Finding& f : Lint(engine)) std::cout << f.ToString() << "\n";
//
// Checks (each Finding names its check):
//   selects-nothing        a policy's podSelector matches no pod
//   peer-matches-nothing   a pod/namespace selector peer matches no pod
//   namespace-unmatched    a namespaceSelector matches no namespace's labels
//   named-port-undeclared  a named port no destination pod declares
//   egress-blocks-dns      egress-isolated pods that cannot reach the cluster DNS pods on 53/UDP or
//                          53/TCP (judged with the engine; without DNS pods in the input: no rule
//                          allows 53 to kube-system or to an IP)
//   rule-shadowed          a rule that a broader rule (same or wider targets) already allows
//   ipblock-covers-pods    an ipBlock that contains pod IPs (matched here, not by every plugin)
// Findings are judged against the cluster state given (pods, namespaces), sorted
// by policy, then check.
#pragma once

#include <string>
#include <vector>

#include "api/objects.h"
#include "policy/engine.h"

namespace netpol::policy {

struct Finding {
  std::string check;   // "selects-nothing"
  std::string policy;  // "namespace/name"
  std::string field;   // "spec.ingress[0].from[1]", or ""
  std::string message;
  api::SourceLocation where;

  std::string ToString() const;  // "file:line:col: warning: [check] ns/name: field: message"
};

std::vector<Finding> Lint(const Engine& engine);

}  // namespace netpol::policy
