// The Kubernetes objects netpol understands, as plain value types.
//
// Namespace, Pod, the pod-owning workloads (Deployment, StatefulSet, DaemonSet,
// ReplicaSet, ReplicationController, Job, CronJob) and networking.k8s.io/v1
// NetworkPolicy with every field. Values are what the user wrote after API-server
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

// Field path ("spec.ingress[0].ports[1].endPort") -> where that field's value starts.
using FieldPositions = std::map<std::string, SourceLocation, std::less<>>;

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

using Object = std::variant<Namespace, Pod, Workload, NetworkPolicy>;

const ObjectMeta& MetaOf(const Object& object);
ObjectMeta& MetaOf(Object& object);
std::string_view KindOf(const Object& object);
// "Kind namespace/name" (or "Kind name" when cluster-scoped).
std::string ObjectRef(const Object& object);

}  // namespace netpol::api
