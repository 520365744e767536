// The engine's indexed state. Internal to src/policy: engine.cpp maintains it,
// matrix.cpp and lint.cpp read it. See engine.h for the design.
//
// Invariants (kept by engine.cpp after every Apply/Delete):
//  - a live class has members > 0 and appears in class_index and in its
//    namespace's `classes`;
//  - for every live policy P and live class C:
//      P.targets.test(C)  <=>  C in P's namespace and P.spec.pod_selector matches C;
//      C.ingress_policies contains P <=> P.targets.test(C) and P affects ingress
//      (same for egress), sorted by policy name;
//      peer.classes.test(C) <=> the selector peer matches C (namespace and pod labels);
//  - for every namespace N: N.classes_by_label holds (LabelHash(k, v), C) for
//    exactly N's live classes C and their labels k=v, sorted; if N.selectors.built, it holds
//    exactly the SelectorRefs of N's candidate policies (N.policies and
//    N.selected_by) whose namespace part matches N, but for peers whose
//    namespaceSelector is empty (every namespace): those are in `everywhere`
//    once, for every live policy;
//  - retired class and policy ids are on the free lists and match nothing.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "base/siphash.h"
#include "policy/direction.h"
#include "policy/engine.h"
#include "policy/internal/bitset.h"

namespace netpol::policy::internal {

using ClassId = uint32_t;
using NamespaceId = uint32_t;
inline constexpr ClassId kNoClass = UINT32_MAX;

struct NamedPort {
  std::string name;
  api::Protocol protocol;
  uint16_t port;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const NamedPort&, const NamedPort&) = default;
};

struct ClassKey {
  NamespaceId ns;
  api::Labels labels;
  std::vector<NamedPort> named_ports;  // sorted by name; names are unique in a pod
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const ClassKey&, const ClassKey&) = default;
};

// ClassKey's hash for State::class_index, keyed (SipHash) so that labels
// chosen by whoever creates pods cannot make classes collide.
struct ClassKeyHash {
  SipKey key = SipKey::Random();
  size_t operator()(const ClassKey& k) const {
    SipHash h(key);
    h.Add(uint64_t{k.ns});
    for (const auto& [label, value] : k.labels) {
      h.Add(uint64_t{label.size()});
      h.Add(label);
      h.Add(uint64_t{value.size()});
      h.Add(value);
    }
    for (const NamedPort& port : k.named_ports) {
      h.Add(uint64_t{port.name.size()});
      h.Add(port.name);
      h.Add(uint64_t{port.port} << 8 | static_cast<uint64_t>(port.protocol));
    }
    return h.Finish();
  }
};

struct PodClass;

struct PortRule {
  api::Protocol protocol = api::Protocol::kTCP;
  bool any_port = false;
  uint16_t first = 0;
  uint16_t last = 0;
  std::string name;  // named port; resolved against the destination pod

  bool Matches(api::Protocol proto, uint16_t port, const PodClass* destination) const;
  friend bool operator==(const PortRule&, const PortRule&) = default;
};

struct PeerRule {
  // Selector peer: namespace (selector, or the policy's own) and pod selector.
  std::optional<api::LabelSelector> namespace_selector;
  std::optional<api::LabelSelector> pod_selector;
  NamespaceId own_namespace = 0;
  DynamicBitset classes;
  // State::clock when `classes` last changed in a way the classes' own ticks
  // do not show: a class dropped, or an existing class newly matched.
  uint64_t changed_at = 0;
  // Whether a view (PodClass::views) was built from this peer's rule since
  // the policy came: while not, a new class the peer matches has no built view
  // to join, and the policy's targets are not walked (at a start, none is built).
  mutable bool in_views = false;
  // ipBlock peer.
  std::optional<IpPrefix> cidr;
  std::vector<IpPrefix> except;

  bool is_ip_block() const { return cidr.has_value(); }
  bool MatchesIp(const IpAddress& ip) const;
};

// The rules that isolate a class in one direction, flattened for the verdict
// fast path: rules with the same ports are merged, and their selector peers
// OR-ed into one class bitset, so a verdict is a port check and a bit test per
// entry. Built lazily. Kept exact incrementally: a class's views are dropped
// when its policy list changes; a new class's bit is set in the built views of
// every policy peer that matches it; a retired class's bit is cleared from all;
// a namespace label change drops every view.
struct ViewEntry {
  std::vector<PortRule> ports;          // empty: every port
  bool any_peer = false;                // some merged rule has no peers
  DynamicBitset classes;                // union of the selector peers
  std::vector<const PeerRule*> blocks;  // ipBlock peers (PolicyRec storage is stable)
};

struct DirectionView {
  bool built = false;
  std::vector<ViewEntry> entries;
};

// (The NOLINT: clang-tidy 14 reports the loop variable of the implicit copy
// of `views`, an array, as a reserved identifier.)
struct PodClass {  // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
  ClassKey key;
  uint32_t members = 0;
  std::vector<PodId> pods;  // the members, in no particular order
  uint64_t changed_at = 0;  // State::clock when a member came, went or was replaced
  std::vector<PolicyId> ingress_policies;
  std::vector<PolicyId> egress_policies;
  // ClusterNetworkPolicies whose subject selects the class, per tier
  // ([api::Tier]), in evaluation order (priority, then name).
  std::vector<ClusterPolicyId> cluster_policies[2];
  mutable DirectionView views[2];  // [Direction]

  // The port number `name` resolves to for `protocol`, if this class declares it.
  std::optional<uint16_t> ResolveNamedPort(const std::string& name, api::Protocol protocol) const;
};

struct RuleRec;

// A selector of a policy that can match classes of one namespace, as far as
// the namespace tells: the policy's podSelector (`peer` null; the policy's own
// namespace only), or a selector peer whose namespace part (namespaceSelector,
// else the policy's namespace) matches the namespace. Pointers into the
// policy's record, which does not move (State::policies is a deque) and is
// unindexed before it is cleared.
// (Pointers first: 24 bytes, not 32; at 100k pods the namespaces' indexes
// hold about a million.)
struct SelectorRef {
  RuleRec* rule = nullptr;  // null for the podSelector
  PeerRule* peer = nullptr;
  PolicyId policy = 0;
  Direction direction = Direction::kIngress;
  bool in_force = false;  // the policy isolates pods in `direction` (policyTypes)
};
static_assert(sizeof(SelectorRef) <= 24);

// A label (key, value) as 64 bits (FNV-1a; 0xff, which no label key holds,
// between the two).
inline uint64_t LabelHash(std::string_view key, std::string_view value) {
  uint64_t h = 14695981039346656037ULL;
  const auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ULL; };
  for (const char c : key) mix(static_cast<unsigned char>(c));
  mix(0xff);
  for (const char c : value) mix(static_cast<unsigned char>(c));
  return h;
}

// The SelectorRefs of one namespace, so that a new class checks only the pod
// selectors it can match (a few of the ~700 candidate policies' at 1,000
// namespaces / 10k policies) and never re-matches a namespaceSelector: each
// selector with matchLabels is filed under one of them, by LabelHash (a class
// without that label cannot match; a collision only adds selectors the class
// is then matched against), the others (no selector, empty, expressions only)
// in `unkeyed`. Built when the namespace's first new class needs it; kept as
// policies come and go; dropped when the namespace's labels change.
struct SelectorIndex {
  bool built = false;
  std::unordered_map<uint64_t, std::vector<SelectorRef>> by_label;  // by LabelHash
  std::vector<SelectorRef> unkeyed;
};

struct NamespaceRec {
  std::string name;
  api::Labels labels;  // always includes kubernetes.io/metadata.name
  bool declared = false;
  std::vector<ClassId> classes;  // live classes in this namespace
  // The same by each of their labels, as (LabelHash, class) sorted, so that
  // a new policy checks only the classes with a label its pod selector
  // requires. A hash, not the label: 16 bytes an entry, where a map of
  // strings took ~120 (30 MB at 100k pods, 250k labels); a collision only
  // adds a class the selector is then matched against.
  std::vector<std::pair<uint64_t, ClassId>> classes_by_label;
  // The live policies that can match a class of this namespace, so a new
  // class is matched against these and not against every policy of the
  // cluster (10k policies x 40k classes at 100k pods): the namespace's own
  // (sorted) ...
  std::vector<PolicyId> policies;
  // ... and those elsewhere with a namespaceSelector peer that selects this
  // namespace's labels (sorted; kept when policies or these labels change).
  std::vector<PolicyId> selected_by;
  // The selectors of those policies that can match a class of this namespace.
  SelectorIndex selectors;
};

struct RuleRec {
  std::vector<PortRule> ports;  // empty: all
  std::vector<PeerRule> peers;  // empty: all
  uint64_t serial = 0;          // unique over the engine's life (State::clock at creation)
};

struct PolicyRec {
  api::NetworkPolicy spec;
  std::string full_name;
  NamespaceId ns = 0;
  bool live = false;
  bool ingress = false;  // effective policyTypes
  bool egress = false;
  DynamicBitset targets;
  std::vector<RuleRec> ingress_rules;
  std::vector<RuleRec> egress_rules;

  const std::vector<RuleRec>& rules(Direction d) const {
    return d == Direction::kIngress ? ingress_rules : egress_rules;
  }
  std::vector<RuleRec>& rules(Direction d) { return d == Direction::kIngress ? ingress_rules : egress_rules; }
};

// A ClusterNetworkPolicy peer: namespaces and pods peers are selector peers
// (their classes kept like a NetworkPolicy peer's), the others are matched per flow.
struct ClusterPeerRec {
  enum class Kind : uint8_t { kSelector, kNetworks, kNodes, kDomainNames };
  Kind kind = Kind::kSelector;
  PeerRule selector;  // kSelector: namespace_selector always set
  std::vector<IpPrefix> networks;
  api::LabelSelector nodes;
  std::vector<std::string> domain_names;
};

struct ClusterRuleRec {
  api::RuleAction action = api::RuleAction::kDeny;
  std::vector<PortRule> ports;      // empty: every protocol and port
  std::vector<int> port_protocols;  // ports[i] came from protocols[port_protocols[i]]
  std::vector<ClusterPeerRec> peers;
};

struct ClusterPolicyRec {
  api::ClusterNetworkPolicy spec;
  std::string full_name;  // "admin/name", "baseline/name"
  bool live = false;
  api::Tier tier = api::Tier::kAdmin;
  int32_t priority = 0;
  DynamicBitset subjects;  // classes the subject selects
  std::vector<ClusterRuleRec> ingress_rules;
  std::vector<ClusterRuleRec> egress_rules;

  const std::vector<ClusterRuleRec>& rules(Direction d) const {
    return d == Direction::kIngress ? ingress_rules : egress_rules;
  }
};

// A Node object: its labels and IP addresses (status.addresses).
struct NodeRec {
  api::Labels labels;
  std::vector<IpAddress> ips;
};

struct PodRec {
  Pod pod;
  ClassId cls = kNoClass;  // kNoClass for hostNetwork pods
  bool live = false;
};

struct State {
  // Ticks on every change that can alter a rule's peer addresses, so that a
  // compiler may keep what it derived from a rule until one of the parts it
  // read has a newer tick (compile.cpp): a class's members, a peer's classes,
  // any pod at all (for ipBlock peers matched against pod addresses).
  uint64_t clock = 0;
  uint64_t pods_changed_at = 0;

  std::vector<NamespaceRec> namespaces;
  std::map<std::string, NamespaceId, std::less<>> namespace_index;
  // The peers whose namespaceSelector is empty, which every namespace's index
  // would hold alike (at 100k pods ~1,600 egress peers, 51 MB as 1,000
  // copies): a new class meets them here.
  SelectorIndex everywhere;

  std::vector<PodClass> classes;
  std::vector<ClassId> free_classes;
  // Hashed: looking a pod's class up in an ordered map compared ~16 keys
  // (namespace, then labels as strings) and was a tenth of the first sync's
  // CPU at 100k pods. Nothing iterates it in an order that matters.
  std::unordered_map<ClassKey, ClassId, ClassKeyHash> class_index;

  std::deque<PodRec> pods;  // a deque: no spare capacity, no copies on growth
  std::vector<PodId> free_pods;
  std::map<std::pair<std::string, std::string>, PodId, std::less<>> pod_index;
  std::map<IpAddress, PodId> pod_by_ip;
  // "Kind namespace/name" of a bare Pod or workload -> the pods it stands for.
  std::map<std::string, std::vector<PodId>, std::less<>> owners;

  // Nodes named by pods (other than DaemonSet pods), with how many pods name
  // each: a DaemonSet stands for one pod per node known.
  std::map<std::string, uint32_t, std::less<>> node_refs;
  std::map<std::string, api::Workload, std::less<>> daemonsets;  // by owner key

  // A deque: view entries point into PolicyRec rules, which must not move when
  // other policies are added.
  std::deque<PolicyRec> policies;
  std::vector<PolicyId> free_policies;
  std::map<std::pair<std::string, std::string>, PolicyId, std::less<>> policy_index;

  // A deque, like policies: records do not move.
  std::deque<ClusterPolicyRec> cluster_policies;
  std::vector<ClusterPolicyId> free_cluster_policies;
  std::map<std::string, ClusterPolicyId, std::less<>> cluster_policy_index;

  std::map<std::string, NodeRec, std::less<>> nodes;  // Node objects by name
  std::map<IpAddress, std::string> node_by_ip;

  bool IsLiveClass(ClassId c) const { return c < classes.size() && classes[c].members > 0; }
  const PodClass* ClassOfPod(PodId id) const {
    const ClassId c = pods[id].cls;
    return c == kNoClass ? nullptr : &classes[c];
  }
};

}  // namespace netpol::policy::internal
