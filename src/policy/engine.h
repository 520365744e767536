// The policy engine: exact NetworkPolicy semantics, a verdict for any flow, and why.
//
//   Engine engine;
//   for (const api::Object& object : loaded.objects) engine.Apply(object);
//   std::optional<PodId> wp = engine.FindPod("default", "np-test-wordpress-0");
//   std::optional<PodId> db = engine.FindPod("default", "np-test-mariadb-0");
//   Flow flow{Endpoint::OfPod(*wp), Endpoint::OfPod(*db), api::Protocol::kTCP, 3306};
//   bool ok = engine.Allowed(flow);          // fast path, no explanation
//   Verdict why = engine.Evaluate(flow);     // which policy and rule, or which isolation
//
// The semantics, and the source of each decision, are in docs/SEMANTICS.md. In short:
// a connection is allowed iff egress is allowed at the source and ingress at the
// destination; each direction is judged in tiers (§21): the Admin tier's
// ClusterNetworkPolicies (lower priority first, then name, then rule order; Accept
// and Deny decide, Pass skips the rest of the tier), then NetworkPolicies (a pod
// they isolate is allowed when some rule of an isolating policy matches the peer
// and the port, and denied otherwise), then the Baseline tier, then allowed.
//
// Design for scale: pods that share namespace, labels and named ports form one
// class, and selectors are evaluated per class, once, when a class, policy or
// namespace appears or changes (not per flow). Each class keeps the list of
// policies that isolate it; each policy peer keeps the set of classes it matches.
// A verdict is then a walk over the few rules that isolate the destination and the
// source, each a bit test or a prefix check. `Apply` and `Delete` update all of
// this incrementally: a pod touches only its class, a policy only its own sets.
//
// Not thread-safe, not even for concurrent readers: verdicts refresh per-class
// caches lazily. One thread owns an Engine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "policy/direction.h"

namespace netpol::policy {

namespace internal {
struct State;
}

using PodId = uint32_t;
using PolicyId = uint32_t;
using ClusterPolicyId = uint32_t;

// A pod as the engine sees it. Workloads are expanded into pods named
// <workload>-0, -1, ... with the template's labels and ports and no IP; a
// DaemonSet into one pod per node that other pods run on.
// Its labels are its class's (Engine::PodLabels): pods mostly share them, so
// they are kept once per class.
struct Pod {
  std::string namespace_;
  std::string name;
  std::string node;
  bool host_network = false;
  std::vector<IpAddress> ips;
  std::vector<api::ContainerPort> ports;  // of all containers
  std::string owner;                      // "Deployment default/web", or "" for a bare Pod

  std::string FullName() const { return namespace_ + "/" + name; }
};

// One end of a flow: a pod, a node, or an address outside the cluster.
struct Endpoint {
  enum class Kind : uint8_t { kPod, kNode, kExternal };

  // A pod, at `ip` (default: its first address, if it has one).
  static Endpoint OfPod(PodId pod, std::optional<IpAddress> ip = std::nullopt);
  static Endpoint OfNode(std::string node, std::optional<IpAddress> ip = std::nullopt);
  static Endpoint OfIp(IpAddress ip);

  Kind kind = Kind::kExternal;
  PodId pod = 0;
  std::string node;
  std::optional<IpAddress> ip;
  // The DNS name the connection was made to, for ClusterNetworkPolicy
  // domainNames peers ("" when unknown: no domainNames peer matches).
  std::string domain;
};

struct Flow {
  Endpoint src;
  Endpoint dst;
  api::Protocol protocol = api::Protocol::kTCP;
  uint16_t port = 0;
};

// Why one direction of a flow is allowed or denied.
enum class Reason : uint8_t {
  kNotIsolated,       // no policy isolates the pod in this direction: allowed
  kAllowedByRule,     // a rule of an isolating policy matched: allowed
  kNoRuleMatched,     // isolated, and no rule matched: denied
  kSelf,              // a pod talking to itself never leaves its netns: allowed
  kOwnNode,           // traffic between a pod and its own node: allowed
  kNotPolicyManaged,  // the end is not a policy-managed pod (external, node, hostNetwork)
  kClusterAccept,     // an Accept rule of a ClusterNetworkPolicy matched: allowed
  kClusterDeny,       // a Deny rule of a ClusterNetworkPolicy matched: denied
};
std::string_view ReasonName(Reason reason);

// A rule position: policy, rule index, and the peer and port that matched
// (-1 when the rule's list is empty, i.e. matches all).
struct RuleRef {
  PolicyId policy = 0;
  int rule = 0;
  int peer = -1;
  int port = -1;
};

// A ClusterNetworkPolicy rule that matched: its policy, tier and priority, the
// rule's index and action, and the peer and protocol entry that matched (-1 for
// a rule without protocols: every port).
struct ClusterRuleRef {
  ClusterPolicyId policy = 0;
  api::Tier tier = api::Tier::kAdmin;
  int32_t priority = 0;
  int rule = 0;
  api::RuleAction action = api::RuleAction::kDeny;
  int peer = 0;
  int protocol = -1;
};

struct DirectionVerdict {
  Reason reason = Reason::kNotIsolated;
  std::vector<PolicyId> isolating;  // policies that select the pod for this direction
  std::optional<RuleRef> allowed_by;
  // The Accept or Deny rule that decided (kClusterAccept, kClusterDeny).
  std::optional<ClusterRuleRef> cluster_rule;
  // The Pass rules that sent the flow on, in order (at most one per tier).
  std::vector<ClusterRuleRef> passed;
  // ClusterNetworkPolicies with rules for this direction whose subject is the
  // pod, in evaluation order (Admin, then Baseline).
  std::vector<ClusterPolicyId> cluster_subjects;

  bool allowed() const { return reason != Reason::kNoRuleMatched && reason != Reason::kClusterDeny; }
};

struct Verdict {
  bool allowed = false;
  DirectionVerdict egress;   // judged at the source
  DirectionVerdict ingress;  // judged at the destination
};

struct EngineStats {
  size_t pods = 0;
  size_t classes = 0;
  size_t namespaces = 0;
  size_t policies = 0;
  size_t cluster_policies = 0;
  size_t nodes = 0;  // Node objects
};

class Engine {
 public:
  Engine();
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  // Adds or replaces an object (matched by kind, namespace and name). The object
  // must have passed api::Validate; the engine does not re-check it.
  void Apply(const api::Object& object);
  // Removes an object; false when there was none. Deleting a Namespace deletes
  // everything in it, as the API server does.
  bool Delete(std::string_view kind, std::string_view namespace_, std::string_view name);

  bool Allowed(const Flow& flow) const;
  Verdict Evaluate(const Flow& flow) const;

  std::optional<PodId> FindPod(std::string_view namespace_, std::string_view name) const;
  std::optional<PodId> FindPodByIp(const IpAddress& ip) const;
  std::optional<PolicyId> FindPolicy(std::string_view namespace_, std::string_view name) const;

  const Pod& pod(PodId id) const;
  // A pod's labels (none for hostNetwork pods, which policies never select).
  const api::Labels& PodLabels(PodId id) const;
  const api::NetworkPolicy& policy(PolicyId id) const;
  std::string PolicyName(PolicyId id) const;  // "namespace/name"

  std::optional<ClusterPolicyId> FindClusterPolicy(std::string_view name) const;
  const api::ClusterNetworkPolicy& cluster_policy(ClusterPolicyId id) const;
  // "admin/name" or "baseline/name".
  std::string ClusterPolicyName(ClusterPolicyId id) const;
  // Live ClusterNetworkPolicies in evaluation order: Admin tier, then Baseline;
  // within a tier by priority, then name.
  std::vector<ClusterPolicyId> ClusterPolicies() const;
  // Pods a ClusterNetworkPolicy's subject selects, sorted by name.
  std::vector<PodId> ClusterSubjectPods(ClusterPolicyId policy) const;
  // Pods matched by a namespaces or pods peer of a rule (empty for other peers).
  std::vector<PodId> ClusterPeerPods(ClusterPolicyId policy, Direction direction, size_t rule,
                                     size_t peer) const;

  // Live pods and policies, sorted by namespace/name.
  std::vector<PodId> Pods() const;
  std::vector<PolicyId> Policies() const;
  // Namespaces known (declared or referenced), with labels, sorted by name.
  std::vector<std::pair<std::string, api::Labels>> Namespaces() const;

  // Pods a policy selects (its targets), sorted by name.
  std::vector<PodId> SelectedPods(PolicyId policy) const;
  // Pods matched by a selector peer of a rule (empty for ipBlock peers).
  std::vector<PodId> PeerPods(PolicyId policy, Direction direction, size_t rule, size_t peer) const;
  // Policies isolating a pod for a direction, sorted by name.
  std::vector<PolicyId> IsolatingPolicies(PodId pod, Direction direction) const;

  EngineStats stats() const;

  // For modules in src/policy only (matrix, lint): the indexed state.
  const internal::State& state() const { return *state_; }

 private:
  bool DeleteObject(std::string_view kind, std::string_view namespace_, std::string_view name);

  std::unique_ptr<internal::State> state_;
};

}  // namespace netpol::policy
