// The ClusterNetworkPolicy lints (lint.h lists them; docs/SEMANTICS.md §22).
// Internal to src/policy: Lint() runs them before the NetworkPolicy ones.
//
//   std::vector<Finding> findings = internal::LintClusterPolicies(engine);
//
// Each check fires only on what it can prove for the input: a rule is
// shadowed when containment of subject, peers and ports is shown (by the
// selectors themselves, or by the pods given), never on a guess.
#pragma once

#include <vector>

#include "policy/engine.h"
#include "policy/lint.h"

namespace netpol::policy::internal {

// Findings for every live ClusterNetworkPolicy, in evaluation order (Admin
// tier, then Baseline; priority, then name), each policy's by field.
std::vector<Finding> LintClusterPolicies(const Engine& engine);

// The cluster DNS pods in the input: k8s-app=kube-dns in kube-system (both the
// NetworkPolicy and the ClusterNetworkPolicy egress-blocks-dns checks judge
// flows to them).
std::vector<PodId> ClusterDnsPods(const Engine& engine);

}  // namespace netpol::policy::internal
