#include "testutil/reference.h"

#include <algorithm>
#include <map>
#include <set>

#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/flow_text.h"
#include "policy/matrix.h"

namespace netpol::testing {

ReferenceEvaluator::ReferenceEvaluator(const std::vector<api::Object>& objects) {
  for (const api::Object& object : objects) {
    if (const auto* ns = std::get_if<api::Namespace>(&object)) namespaces_.push_back(*ns);
    if (const auto* policy = std::get_if<api::NetworkPolicy>(&object)) policies_.push_back(*policy);
    if (const auto* policy = std::get_if<api::ClusterNetworkPolicy>(&object))
      cluster_policies_.push_back(*policy);
    if (const auto* node = std::get_if<api::Node>(&object)) nodes_.push_back(*node);
    if (const auto* pod = std::get_if<api::Pod>(&object)) {
      RefPod p{pod->metadata.namespace_,
               pod->metadata.name,
               pod->metadata.labels,
               pod->spec.node_name,
               pod->spec.host_network,
               std::nullopt,
               {}};
      if (!pod->pod_ips.empty()) p.ip = *IpAddress::Parse(pod->pod_ips.front());
      for (const auto& c : pod->spec.containers)
        p.ports.insert(p.ports.end(), c.ports.begin(), c.ports.end());
      pods_.push_back(std::move(p));
    }
    if (const auto* w = std::get_if<api::Workload>(&object); w && w->kind != api::WorkloadKind::kDaemonSet) {
      for (int32_t i = 0; i < w->replicas; ++i)
        pods_.push_back(FromTemplate(*w, i, w->pod_template.spec.node_name));
    }
  }
  // A DaemonSet: one pod per node the other pods run on (or one when none).
  std::set<std::string> nodes;
  for (const RefPod& p : pods_) {
    if (!p.node.empty()) nodes.insert(p.node);
  }
  for (const api::Object& object : objects) {
    const auto* w = std::get_if<api::Workload>(&object);
    if (w == nullptr || w->kind != api::WorkloadKind::kDaemonSet) continue;
    if (nodes.empty()) pods_.push_back(FromTemplate(*w, 0, w->pod_template.spec.node_name));
    int i = 0;
    for (const std::string& node : nodes) pods_.push_back(FromTemplate(*w, i++, node));
  }
}

RefPod ReferenceEvaluator::FromTemplate(const api::Workload& w, int index, const std::string& node) {
  RefPod p{w.metadata.namespace_,
           w.metadata.name + "-" + std::to_string(index),
           w.pod_template.labels,
           node,
           w.pod_template.spec.host_network,
           std::nullopt,
           {}};
  for (const auto& c : w.pod_template.spec.containers)
    p.ports.insert(p.ports.end(), c.ports.begin(), c.ports.end());
  return p;
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
  // The pod's own node may always connect in (ingress only).
  if (ingress && other.host_network && !other.node.empty() && other.node == self.node) return true;
  if (const auto admin = ClusterTier(api::Tier::kAdmin, self, other, ingress, protocol, port)) return *admin;
  if (const auto np = NetworkPolicyTier(self, other, ingress, protocol, port)) return *np;
  return ClusterTier(api::Tier::kBaseline, self, other, ingress, protocol, port).value_or(true);
}

bool ReferenceEvaluator::ClusterPeerMatches(const api::ClusterPeer& peer, const RefPod& other) const {
  if (peer.namespaces)
    return !other.host_network && peer.namespaces->Matches(NamespaceLabels(other.namespace_));
  if (peer.pods) {
    return !other.host_network && peer.pods->namespace_selector.Matches(NamespaceLabels(other.namespace_)) &&
           peer.pods->pod_selector->Matches(other.labels);
  }
  if (peer.networks) {
    if (!other.ip) return false;
    return std::any_of(peer.networks->begin(), peer.networks->end(),
                       [&](const std::string& n) { return IpPrefix::Parse(n)->Contains(*other.ip); });
  }
  if (peer.nodes) {
    // A hostNetwork pod is its node; another end is a node when a Node lists its address.
    for (const api::Node& node : nodes_) {
      bool is = other.host_network && node.metadata.name == other.node;
      for (const api::NodeAddress& a : node.addresses) {
        is = is || (!other.host_network && other.ip && IpAddress::Parse(a.address) &&
                    *IpAddress::Parse(a.address) == *other.ip);
      }
      if (is) return peer.nodes->Matches(node.metadata.labels);
    }
    return other.host_network && peer.nodes->Matches({});  // a node without a Node object
  }
  return false;  // domainNames: pod-to-pod flows carry no domain
}

std::optional<bool> ReferenceEvaluator::ClusterTier(api::Tier tier, const RefPod& self, const RefPod& other,
                                                    bool ingress, api::Protocol protocol,
                                                    uint16_t port) const {
  std::vector<const api::ClusterNetworkPolicy*> order;
  for (const api::ClusterNetworkPolicy& p : cluster_policies_) {
    if (p.tier == tier) order.push_back(&p);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return std::pair(*a->priority, a->metadata.name) < std::pair(*b->priority, b->metadata.name);
  });
  const api::Labels ns_labels = NamespaceLabels(self.namespace_);
  const RefPod& destination = ingress ? self : other;
  for (const api::ClusterNetworkPolicy* p : order) {
    const api::ClusterSubject& subject = *p->subject;
    const bool selected = subject.namespaces ? subject.namespaces->Matches(ns_labels)
                                             : subject.pods->namespace_selector.Matches(ns_labels) &&
                                                   subject.pods->pod_selector->Matches(self.labels);
    if (!selected) continue;
    for (const api::ClusterRule& rule : ingress ? p->ingress : p->egress) {
      bool port_ok = !rule.protocols;
      for (const api::ClusterProtocol& pr : rule.protocols.value_or(std::vector<api::ClusterProtocol>{})) {
        const api::ClusterProtocolMatch* match = protocol == api::Protocol::kTCP ? pr.tcp ? &*pr.tcp : nullptr
                                                 : protocol == api::Protocol::kUDP
                                                     ? pr.udp ? &*pr.udp : nullptr
                                                 : pr.sctp ? &*pr.sctp
                                                           : nullptr;
        if (match != nullptr) {
          const api::ClusterPort& dp = *match->destination_port;
          port_ok =
              port_ok || (dp.number ? port == *dp.number : port >= dp.range->start && port <= dp.range->end);
        }
        if (pr.destination_named_port && !destination.host_network) {
          const auto named =
              std::find_if(destination.ports.begin(), destination.ports.end(),
                           [&](const auto& cp) { return cp.name == *pr.destination_named_port; });
          port_ok = port_ok || (named != destination.ports.end() && named->protocol == protocol &&
                                named->container_port == port);
        }
      }
      if (!port_ok) continue;
      if (std::none_of(rule.peers->begin(), rule.peers->end(),
                       [&](const api::ClusterPeer& peer) { return ClusterPeerMatches(peer, other); })) {
        continue;
      }
      if (*rule.action == api::RuleAction::kPass) return std::nullopt;
      return *rule.action == api::RuleAction::kAccept;
    }
  }
  return std::nullopt;
}

std::optional<bool> ReferenceEvaluator::NetworkPolicyTier(const RefPod& self, const RefPod& other,
                                                          bool ingress, api::Protocol protocol,
                                                          uint16_t port) const {
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
          // The first container port with the name is the one it means.
          const auto named =
              std::find_if(destination.ports.begin(), destination.ports.end(),
                           [&](const auto& cp) { return cp.name == std::get<std::string>(*p.port); });
          port_ok = port_ok || (named != destination.ports.end() && named->protocol == protocol &&
                                named->container_port == port);
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
        const bool ns_ok = peer.namespace_selector
                               ? peer.namespace_selector->Matches(NamespaceLabels(other.namespace_))
                               : other.namespace_ == policy.metadata.namespace_;
        const bool pod_ok = !peer.pod_selector || peer.pod_selector->Matches(other.labels);
        peer_ok = peer_ok || (ns_ok && pod_ok);
      }
      if (peer_ok) return true;
    }
  }
  if (isolated) return false;
  return std::nullopt;
}

namespace {

const std::vector<policy::PortProto>& ComparePorts() {
  static const std::vector<policy::PortProto> ports = [] {
    std::vector<policy::PortProto> out;
    for (const uint16_t port : {uint16_t{9}, uint16_t{53}, uint16_t{79}, uint16_t{80}, uint16_t{81},
                                uint16_t{8080}, uint16_t{8081}}) {
      for (const auto proto : {api::Protocol::kTCP, api::Protocol::kUDP, api::Protocol::kSCTP}) {
        out.push_back({proto, port});
      }
    }
    return out;
  }();
  return ports;
}

}  // namespace

std::string CompareEngineWithReference(const policy::Engine& engine,
                                       const std::vector<api::Object>& objects) {
  const ReferenceEvaluator ref(objects);
  const auto& ports = ComparePorts();
  const policy::Matrix matrix = policy::ComputeMatrix(engine, ports);
  const auto pods = engine.Pods();
  if (pods.size() != ref.pods().size()) return "pod count differs";
  const auto find = [&](const policy::Pod& p) {
    return std::find_if(ref.pods().begin(), ref.pods().end(),
                        [&](const RefPod& r) { return r.namespace_ == p.namespace_ && r.name == p.name; });
  };
  // The compiled form, one program per node, as the dataplane of each node
  // would enforce it: egress at the source's node, ingress at the destination's.
  std::map<std::string, std::map<std::string, std::string>> local_by_node;
  for (const policy::PodId id : pods) local_by_node[engine.pod(id).node][engine.pod(id).FullName()] = "";
  std::map<std::string, policy::NodeProgram> programs;
  for (const auto& [node, local] : local_by_node) programs[node] = policy::CompileNode(engine, local);
  for (size_t i = 0; i < pods.size(); ++i) {
    for (size_t j = 0; j < pods.size(); ++j) {
      const policy::Pod& a = engine.pod(pods[i]);
      const policy::Pod& b = engine.pod(pods[j]);
      const auto ra = find(a);
      const auto rb = find(b);
      if (ra == ref.pods().end() || rb == ref.pods().end()) return "pod missing in reference";
      const bool from_node = a.host_network && !a.node.empty() && a.node == b.node;
      for (size_t p = 0; p < ports.size(); ++p) {
        const policy::PortProto& pp = ports[p];
        // Per family (docs/SEMANTICS.md §19): each of the pair's connections.
        for (const policy::FamilyFlow& f :
             policy::FamilyFlows(engine, policy::Endpoint::OfPod(pods[i]), policy::Endpoint::OfPod(pods[j]),
                                 pp.protocol, pp.port)) {
          RefPod from = *ra;
          RefPod to = *rb;
          if (f.flow.src.ip) from.ip = f.flow.src.ip;
          if (f.flow.dst.ip) to.ip = f.flow.dst.ip;
          const std::string where = a.FullName() + " -> " + b.FullName() + " " + pp.ToString() +
                                    (f.family ? " over " + std::string(policy::FamilyName(*f.family)) : "");
          const bool want = ref.Allowed(from, to, pp.protocol, pp.port);
          const bool fast = engine.Allowed(f.flow);
          const bool full = engine.Evaluate(f.flow).allowed;
          const bool mat = f.family ? matrix.AllowedOver(p, i, j, *f.family) : matrix.Allowed(p, i, j);
          if (fast != want || full != want || mat != want) {
            return where + ": reference " + std::to_string(want) + ", Allowed " + std::to_string(fast) +
                   ", Evaluate " + std::to_string(full) + ", matrix " + std::to_string(mat);
          }
          // The compiled form sees packets: both ends need an address of one family.
          if (i == j || !from.ip || !to.ip || from.ip->family() != to.ip->family()) {
            continue;
          }
          const bool compiled = programs[a.node].Allows(*from.ip, *to.ip, pp.protocol, pp.port, from_node) &&
                                programs[b.node].Allows(*from.ip, *to.ip, pp.protocol, pp.port, from_node);
          if (compiled != want) {
            return where + ": engine " + std::to_string(want) + ", compiled form " + std::to_string(compiled);
          }
        }
      }
    }
  }
  return "";
}

}  // namespace netpol::testing
