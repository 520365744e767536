// Compiling the ClusterNetworkPolicy tiers of one pod class (compile_tiers.cpp).
//
//   std::map<std::string, CompileNote> notes;
//   TierDecisions admin = internal::CompileTier(state, cls, Direction::kIngress, api::Tier::kAdmin, notes);
//
// A tier's rules, in evaluation order (priority, name, rule order), become
// disjoint boxes (peer range x protocols x ports) each carrying the action of
// the first rule that matches it; boxes where a Pass comes first are left out
// (the next tier decides), and so is any traffic no rule matches. domainNames
// peers match nothing here (no packet carries the name); each such rule adds
// a note.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "policy/compiled.h"
#include "policy/internal/state.h"

namespace netpol::policy::internal {

// `notes` collects one note per rule with domainNames peers, by origin.
TierDecisions CompileTier(const State& s, const PodClass& cls, Direction dir, api::Tier tier,
                          std::map<std::string, CompileNote>& notes);

// "admin/guard ingress[0] deny-dev": the rule's origin in comments and logs.
std::string ClusterRuleOrigin(const ClusterPolicyRec& policy, Direction dir, size_t rule);

}  // namespace netpol::policy::internal
