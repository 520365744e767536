#include "testutil/reference.h"

namespace netpol::testing {

ReferenceEvaluator::ReferenceEvaluator(const std::vector<api::Object>& objects) {
  for (const api::Object& object : objects) {
    if (const auto* ns = std::get_if<api::Namespace>(&object)) namespaces_.push_back(*ns);
    if (const auto* policy = std::get_if<api::NetworkPolicy>(&object)) policies_.push_back(*policy);
    if (const auto* pod = std::get_if<api::Pod>(&object)) {
      RefPod p{pod->metadata.namespace_, pod->metadata.name, pod->metadata.labels,
               pod->spec.node_name, pod->spec.host_network, std::nullopt, {}};
      if (!pod->pod_ips.empty()) p.ip = *IpAddress::Parse(pod->pod_ips.front());
      for (const auto& c : pod->spec.containers) p.ports.insert(p.ports.end(), c.ports.begin(), c.ports.end());
      pods_.push_back(std::move(p));
    }
    if (const auto* w = std::get_if<api::Workload>(&object)) {
      for (int32_t i = 0; i < w->replicas; ++i) {
        RefPod p{w->metadata.namespace_, w->metadata.name + "-" + std::to_string(i),
                 w->pod_template.labels, w->pod_template.spec.node_name,
                 w->pod_template.spec.host_network, std::nullopt, {}};
        for (const auto& c : w->pod_template.spec.containers) {
          p.ports.insert(p.ports.end(), c.ports.begin(), c.ports.end());
        }
        pods_.push_back(std::move(p));
      }
    }
  }
}

api::Labels ReferenceEvaluator::NamespaceLabels(const std::string& ns) const {
  api::Labels labels;
  for (const auto& n : namespaces_) {
    if (n.metadata.name == ns) labels = n.metadata.labels;
  }
  labels["kubernetes.io/metadata.name"] = ns;
  return labels;
}

bool ReferenceEvaluator::Allowed(const RefPod& from, const RefPod& to, api::Protocol protocol,
                                 uint16_t port) const {
  if (from.namespace_ == to.namespace_ && from.name == to.name) return true;
  return DirectionAllowed(from, to, false, protocol, port) &&
         DirectionAllowed(to, from, true, protocol, port);
}

bool ReferenceEvaluator::DirectionAllowed(const RefPod& self, const RefPod& other, bool ingress,
                                          api::Protocol protocol, uint16_t port) const {
  if (self.host_network) return true;  // a node's traffic, not a managed pod
  if (other.host_network && !other.node.empty() && other.node == self.node) return true;
  bool isolated = false;
  for (const api::NetworkPolicy& policy : policies_) {
    if (policy.metadata.namespace_ != self.namespace_ || !policy.pod_selector.Matches(self.labels)) continue;
    if (ingress ? !policy.AffectsIngress() : !policy.AffectsEgress()) continue;
    isolated = true;
    for (const api::NetworkPolicyRule& rule : ingress ? policy.ingress : policy.egress) {
      const RefPod& destination = ingress ? self : other;
      bool port_ok = rule.ports.empty();
      for (const api::NetworkPolicyPort& p : rule.ports) {
        if (p.protocol != protocol) continue;
        if (!p.port) {
          port_ok = true;
        } else if (const auto* n = std::get_if<int32_t>(&*p.port)) {
          port_ok = port_ok || (port >= *n && port <= p.end_port.value_or(*n));
        } else if (!destination.host_network) {
          for (const auto& cp : destination.ports) {
            port_ok = port_ok || (cp.name == std::get<std::string>(*p.port) && cp.protocol == protocol &&
                                  cp.container_port == port);
          }
        }
      }
      if (!port_ok) continue;
      bool peer_ok = rule.peers.empty();
      for (const api::NetworkPolicyPeer& peer : rule.peers) {
        if (peer.ip_block) {
          if (!other.ip) continue;
          const IpPrefix cidr = *IpPrefix::Parse(peer.ip_block->cidr);
          bool in = cidr.Contains(*other.ip);
          for (const auto& e : peer.ip_block->except) in = in && !IpPrefix::Parse(e)->Contains(*other.ip);
          peer_ok = peer_ok || in;
          continue;
        }
        if (other.host_network) continue;
        const bool ns_ok = peer.namespace_selector ? peer.namespace_selector->Matches(NamespaceLabels(other.namespace_))
                                                   : other.namespace_ == policy.metadata.namespace_;
        const bool pod_ok = !peer.pod_selector || peer.pod_selector->Matches(other.labels);
        peer_ok = peer_ok || (ns_ok && pod_ok);
      }
      if (peer_ok) return true;
    }
  }
  return !isolated;
}

}  // namespace netpol::testing
