// The Kubernetes objects netpol understands, as plain value types.
//
// Namespace, Node, Pod, the pod-owning workloads (Deployment, StatefulSet, DaemonSet,
// ReplicaSet, ReplicationController, Job, CronJob), networking.k8s.io/v1
// NetworkPolicy and policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy
// (sigs.k8s.io/network-policy-api v0.3.0) with every field. Values are what the user wrote after API-server
// defaulting (protocol TCP, replicas 1, namespace "default" unless given); they are
// produced by api/decode.h and checked by api/validate.h.
//
//   Object object = NetworkPolicy{...};
//   const ObjectMeta& meta = MetaOf(object);
//   std::string ref = ObjectRef(object);  // "NetworkPolicy default/default-deny"
//
// Absent-versus-empty is kept only where the API gives the two different
// meanings: a peer's podSelector/namespaceSelector (std::optional). For `from`,
// `to`, `ports` and `policyTypes` absent and empty mean the same, so they are
// plain vectors.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "api/labels.h"

namespace netpol::api {

enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };
std::string_view ProtocolName(Protocol protocol);
std::optional<Protocol> ParseProtocol(std::string_view text);  // exact, case-sensitive

// Where an object (or one of its fields) came from: file, 1-based line and column.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string ToString() const;  // "file:line:column", or "" when unknown
  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
};

// Where each field's value starts in its object's file (Provenance::where.file),
// by field path ("spec.ingress[0].ports[1].endPort"). Compact (the paths in one
// string, in the order they were added): a 10k-pod list records half a
// million of them, and nobody asks for one unless validation finds a problem
// (so Find looks through a few in turn; many are indexed when sealed).
class FieldPositions {
 public:
  // Of a path added twice, the first position stands.
  void Add(std::string_view path, int line, int column);
  // Readies what was added for Find: once, after the last Add.
  void Seal();
  // Room for `paths` paths of `bytes` bytes in all (as many as the object
  // decoded before this one had: pods are alike), so that adding does not
  // grow and sealing does not shrink.
  void Reserve(size_t paths, size_t bytes);
  size_t paths() const { return entries_.size(); }
  size_t bytes() const { return paths_.size(); }
  // (line, column) of `path`, when it was added.
  std::optional<std::pair<int, int>> Find(std::string_view path) const;
  bool empty() const { return entries_.empty(); }
  // The same paths at the same positions, in whatever order added.
  friend bool operator==(const FieldPositions& a, const FieldPositions& b);

 private:
  struct Entry {
    uint32_t offset = 0;  // in paths_
    uint32_t length = 0;
    int line = 0;
    int column = 0;
  };
  std::string_view PathOf(const Entry& e) const {
    const std::string_view all = paths_;
    return all.substr(e.offset, e.length);
  }
  // Each path once (its first entry), sorted by path.
  std::vector<const Entry*> Canonical() const;
  static constexpr size_t kIndexFrom = 128;
  std::string paths_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> sorted_;  // Canonical(), as indices, when there are kIndexFrom entries or more
};

// Provenance of a decoded object. It never takes part in equality: two objects
// are equal when their content is, wherever they were read from.
struct Provenance {
  SourceLocation where;
  std::shared_ptr<const FieldPositions> fields;

  // Location of `field_path`, or of its nearest ancestor that has one.
  SourceLocation Locate(std::string_view field_path) const;
  friend bool operator==(const Provenance&, const Provenance&) { return true; }
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty for cluster-scoped objects (Namespace)
  Labels labels;
  Provenance source;
  friend bool operator==(const ObjectMeta&, const ObjectMeta&) = default;
};

struct Namespace {
  ObjectMeta metadata;
  friend bool operator==(const Namespace&, const Namespace&) = default;
};

struct ContainerPort {
  std::string name;  // optional; IANA_SVC_NAME when set
  int32_t container_port = 0;
  Protocol protocol = Protocol::kTCP;
  friend bool operator==(const ContainerPort&, const ContainerPort&) = default;
};

struct EnvVar {
  std::string name;
  std::string value;
  friend bool operator==(const EnvVar&, const EnvVar&) = default;
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::vector<ContainerPort> ports;
  friend bool operator==(const Container&, const Container&) = default;
};

struct PodSpec {
  std::string node_name;
  bool host_network = false;
  std::vector<Container> containers;
  friend bool operator==(const PodSpec&, const PodSpec&) = default;
};

struct Pod {
  ObjectMeta metadata;
  PodSpec spec;
  std::string phase;                 // status.phase
  std::vector<std::string> pod_ips;  // status.podIPs (status.podIP first), as written
  friend bool operator==(const Pod&, const Pod&) = default;
};

struct PodTemplate {
  Labels labels;  // template.metadata.labels
  PodSpec spec;
  friend bool operator==(const PodTemplate&, const PodTemplate&) = default;
};

enum class WorkloadKind : uint8_t {
  kDeployment,
  kStatefulSet,
  kDaemonSet,
  kReplicaSet,
  kReplicationController,
  kJob,
  kCronJob,
};
std::string_view WorkloadKindName(WorkloadKind kind);
std::optional<WorkloadKind> ParseWorkloadKind(std::string_view kind);

// A workload stands for `replicas` pods built from its template.
struct Workload {
  WorkloadKind kind = WorkloadKind::kDeployment;
  ObjectMeta metadata;
  int32_t replicas = 1;  // Job: parallelism; DaemonSet and CronJob: 1
  std::optional<LabelSelector> selector;
  PodTemplate pod_template;
  friend bool operator==(const Workload&, const Workload&) = default;
};

enum class PolicyType : uint8_t { kIngress, kEgress };
std::string_view PolicyTypeName(PolicyType type);

struct IpBlock {
  std::string cidr;
  std::vector<std::string> except;
  friend bool operator==(const IpBlock&, const IpBlock&) = default;
};

struct NetworkPolicyPeer {
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> namespace_selector;
  std::optional<IpBlock> ip_block;
  friend bool operator==(const NetworkPolicyPeer&, const NetworkPolicyPeer&) = default;
};

// A numeric or named port (IntOrString).
using PortValue = std::variant<int32_t, std::string>;

struct NetworkPolicyPort {
  Protocol protocol = Protocol::kTCP;
  std::optional<PortValue> port;  // absent: every port of `protocol`
  std::optional<int32_t> end_port;
  friend bool operator==(const NetworkPolicyPort&, const NetworkPolicyPort&) = default;
};

// One ingress or egress rule: `peers` is `from` (ingress) or `to` (egress).
struct NetworkPolicyRule {
  std::vector<NetworkPolicyPort> ports;  // empty: all ports
  std::vector<NetworkPolicyPeer> peers;  // empty: all peers
  friend bool operator==(const NetworkPolicyRule&, const NetworkPolicyRule&) = default;
};

struct NetworkPolicy {
  ObjectMeta metadata;
  LabelSelector pod_selector;
  std::vector<PolicyType> policy_types;  // as written; see EffectivePolicyTypes
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;

  // The API server's defaulting: the written types, or Ingress plus Egress when
  // there are egress rules.
  bool AffectsIngress() const;
  bool AffectsEgress() const;
  friend bool operator==(const NetworkPolicy&, const NetworkPolicy&) = default;
};

// A Node: its labels (for ClusterNetworkPolicy `nodes` peers) and the
// addresses of status.addresses (every type; those that are IPs are its node IPs).
struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, Hostname, ...
  std::string address;
  friend bool operator==(const NodeAddress&, const NodeAddress&) = default;
};

struct Node {
  ObjectMeta metadata;  // cluster-scoped
  std::vector<NodeAddress> addresses;
  friend bool operator==(const Node&, const Node&) = default;
};

// ---- ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) ------------------
//
// Fields the CRD requires, or whose absence differs from an empty value to its
// schema (minItems, minProperties), are optional here so validation can name
// them; validated objects have them all.

enum class Tier : uint8_t { kAdmin, kBaseline };
std::string_view TierName(Tier tier);
enum class RuleAction : uint8_t { kAccept, kDeny, kPass };
std::string_view RuleActionName(RuleAction action);

// `pods`: namespaceSelector AND podSelector.
struct NamespacedPod {
  LabelSelector namespace_selector;           // absent: empty (every namespace)
  std::optional<LabelSelector> pod_selector;  // required
  friend bool operator==(const NamespacedPod&, const NamespacedPod&) = default;
};

// Exactly one field set (validation).
struct ClusterSubject {
  std::optional<LabelSelector> namespaces;
  std::optional<NamespacedPod> pods;
  friend bool operator==(const ClusterSubject&, const ClusterSubject&) = default;
};

// Exactly one field set; nodes, networks and domainNames only in egress.
struct ClusterPeer {
  std::optional<LabelSelector> namespaces;
  std::optional<NamespacedPod> pods;
  std::optional<LabelSelector> nodes;
  std::optional<std::vector<std::string>> networks;      // CIDRs
  std::optional<std::vector<std::string>> domain_names;  // "example.com", "*.example.com"
  friend bool operator==(const ClusterPeer&, const ClusterPeer&) = default;
};

struct PortRange {
  int32_t start = 0;
  int32_t end = 0;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// destinationPort: exactly one of number and range.
struct ClusterPort {
  std::optional<int32_t> number;
  std::optional<PortRange> range;
  friend bool operator==(const ClusterPort&, const ClusterPort&) = default;
};

// tcp/udp/sctp: {destinationPort} (required by the schema's minProperties).
struct ClusterProtocolMatch {
  std::optional<ClusterPort> destination_port;
  friend bool operator==(const ClusterProtocolMatch&, const ClusterProtocolMatch&) = default;
};

// One entry of `protocols`: exactly one field set.
struct ClusterProtocol {
  std::optional<ClusterProtocolMatch> tcp;
  std::optional<ClusterProtocolMatch> udp;
  std::optional<ClusterProtocolMatch> sctp;
  std::optional<std::string> destination_named_port;
  friend bool operator==(const ClusterProtocol&, const ClusterProtocol&) = default;
};

struct ClusterRule {
  std::string name;                                       // optional, at most 100 characters
  std::optional<RuleAction> action;                       // required
  std::optional<std::vector<ClusterPeer>> peers;          // `from` or `to`: required, 1-25
  std::optional<std::vector<ClusterProtocol>> protocols;  // absent: every protocol and port
  friend bool operator==(const ClusterRule&, const ClusterRule&) = default;
};

struct ClusterNetworkPolicy {
  ObjectMeta metadata;  // cluster-scoped
  std::optional<Tier> tier;
  std::optional<int32_t> priority;  // 0-1000, lower first
  std::optional<ClusterSubject> subject;
  std::vector<ClusterRule> ingress;  // at most 25 each
  std::vector<ClusterRule> egress;
  friend bool operator==(const ClusterNetworkPolicy&, const ClusterNetworkPolicy&) = default;
};

using Object = std::variant<Namespace, Pod, Workload, NetworkPolicy, Node, ClusterNetworkPolicy>;

const ObjectMeta& MetaOf(const Object& object);
ObjectMeta& MetaOf(Object& object);
std::string_view KindOf(const Object& object);
// Namespace, Node and ClusterNetworkPolicy have no namespace.
bool IsClusterScoped(std::string_view kind);
// "Kind namespace/name" (or "Kind name" when cluster-scoped).
std::string ObjectRef(const Object& object);

}  // namespace netpol::api
