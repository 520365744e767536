// A deliberately plain NetworkPolicy and ClusterNetworkPolicy evaluator,
// straight from the API objects.
//
// It knows nothing of classes, bitsets or incremental updates: for every flow it
// walks every policy. Tests compare the engine (and its matrix) against it on
// scenario clusters and on random ones, the way OVS tests its classifier
// against a linear one. Semantics follow docs/SEMANTICS.md (tiers: §21).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "policy/engine.h"

namespace netpol::testing {

struct RefPod {
  std::string namespace_;
  std::string name;
  api::Labels labels;
  std::string node;
  bool host_network = false;
  std::optional<IpAddress> ip;
  std::vector<api::ContainerPort> ports;
};

class ReferenceEvaluator {
 public:
  explicit ReferenceEvaluator(const std::vector<api::Object>& objects);

  const std::vector<RefPod>& pods() const { return pods_; }
  // Pod-to-pod flow over the pods' first addresses.
  bool Allowed(const RefPod& from, const RefPod& to, api::Protocol protocol, uint16_t port) const;

 private:
  bool DirectionAllowed(const RefPod& self, const RefPod& other, bool ingress, api::Protocol protocol,
                        uint16_t port) const;
  // NetworkPolicies: allowed, denied, or no opinion (the pod is not selected).
  std::optional<bool> NetworkPolicyTier(const RefPod& self, const RefPod& other, bool ingress,
                                        api::Protocol protocol, uint16_t port) const;
  // One ClusterNetworkPolicy tier: Accept (true), Deny (false), or no decision
  // (Pass, or no rule matched).
  std::optional<bool> ClusterTier(api::Tier tier, const RefPod& self, const RefPod& other, bool ingress,
                                  api::Protocol protocol, uint16_t port) const;
  bool ClusterPeerMatches(const api::ClusterPeer& peer, const RefPod& other) const;
  api::Labels NamespaceLabels(const std::string& ns) const;
  static RefPod FromTemplate(const api::Workload& w, int index, const std::string& node);

  std::vector<RefPod> pods_;
  std::vector<api::NetworkPolicy> policies_;
  std::vector<api::Namespace> namespaces_;
  std::vector<api::ClusterNetworkPolicy> cluster_policies_;
  std::vector<api::Node> nodes_;
};

// Compares the engine (Allowed, Evaluate and the matrix) with the reference on
// every pod pair over a fixed set of ports. Returns "" or the first mismatch.
std::string CompareEngineWithReference(const policy::Engine& engine, const std::vector<api::Object>& objects);

}  // namespace netpol::testing
