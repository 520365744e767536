// Does one rule part match everything another matches? Containment (and
// disjointness) of label selectors, address prefixes, domain-name patterns and
// protocol entries, for the ClusterNetworkPolicy lints (lint_cluster.cpp).
//
//   api::LabelSelector dev;  dev.match_labels = {{"env", "dev"}};
//   api::LabelSelector client;  client.match_labels = {{"app", "client"}};
//   ShapeContains(PodShape{{}, {}}, PodShape{dev, client});  // true: {} matches every pod
//   ShapeContains(PodShape{dev, client}, PodShape{dev, {}});  // false: not every dev pod is a client
//   PrefixCovered(a /24, {its two /25s});                     // true
//
// Every answer is sound, not complete: "true" is a proof (tests check it against
// matching every value), "false" may only mean "not shown". The lints fire on
// proofs, so an unsure answer keeps them quiet.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/labels.h"
#include "base/ip.h"
#include "policy/internal/state.h"

namespace netpol::policy::internal {

// Every label set `narrow` matches, `wide` matches too: each requirement of
// `wide` is implied by `narrow`'s requirements on the same key. A selector
// that can match nothing proves nothing (false).
bool SelectorContains(const api::LabelSelector& wide, const api::LabelSelector& narrow);

// Pods by their namespace's labels and their own: a ClusterNetworkPolicy
// subject or namespaces/pods peer (`namespaces: S` is `pods: {S, {}}`).
struct PodShape {
  api::LabelSelector namespaces;
  api::LabelSelector pods;
};
bool ShapeContains(const PodShape& wide, const PodShape& narrow);

// `n` lies inside the union of `cover`.
bool PrefixCovered(const IpPrefix& n, const std::vector<IpPrefix>& cover);

// As the engine compares names: lower case, no final dot.
std::string NormalDomain(std::string_view name);
// Every name the pattern `narrow` matches, `wide` matches ("*.x": names below x).
bool DomainCovers(std::string_view wide, std::string_view narrow);

// A rule with protocol entries `wide` (empty: every protocol and port) matches
// every port the entry `q` matches: numbers by the union of `wide`'s ranges of
// that protocol, a named port by the same name or every port of its protocol.
bool PortsCover(const std::vector<PortRule>& wide, const PortRule& q);
// No port matches both lists (named ports: only on different protocols).
bool PortsDisjoint(const std::vector<PortRule>& a, const std::vector<PortRule>& b);

}  // namespace netpol::policy::internal
