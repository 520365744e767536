// Plain-English descriptions of ClusterNetworkPolicies and their rules, for
// `netpol explain` and verdicts (explain.h).
//
//   DescribeClusterRule(engine, Direction::kIngress, ref)
//     -> "admin/guard ingress[0] allow-monitoring (priority 10; from[0]: all pods in namespaces
//         matching kubernetes.io/metadata.name=monitoring; protocols[0]: 9090/TCP)"
#include <algorithm>
#include <string>
#include <vector>

#include "base/strings.h"
#include "policy/explain.h"

namespace netpol::policy {
namespace {

std::string Namespaces(const api::LabelSelector& selector) {
  return selector.empty() ? "all namespaces" : "namespaces matching " + selector.ToString();
}

std::string Pods(const api::NamespacedPod& pods) {
  const std::string which = !pods.pod_selector || pods.pod_selector->empty()
                                ? "all pods"
                                : "pods matching " + pods.pod_selector->ToString();
  return which + " in " + Namespaces(pods.namespace_selector);
}

std::string PortText(const api::ClusterProtocolMatch& match, std::string_view proto) {
  if (!match.destination_port) return "every " + std::string(proto) + " port";
  const api::ClusterPort& port = *match.destination_port;
  if (port.range) {
    return std::to_string(port.range->start) + "-" + std::to_string(port.range->end) + "/" +
           std::string(proto);
  }
  return std::to_string(port.number.value_or(0)) + "/" + std::string(proto);
}

std::string Action(api::RuleAction action) {
  switch (action) {
    case api::RuleAction::kAccept:
      return "Accepts";
    case api::RuleAction::kDeny:
      return "Denies";
    case api::RuleAction::kPass:
      return "Passes (to the next tier)";
  }
  return "?";
}

}  // namespace

std::string DescribeClusterPeer(const api::ClusterPeer& peer) {
  if (peer.namespaces) return "all pods in " + Namespaces(*peer.namespaces);
  if (peer.pods) return Pods(*peer.pods);
  if (peer.nodes) return peer.nodes->empty() ? "all nodes" : "nodes matching " + peer.nodes->ToString();
  if (peer.networks) return "IPs in " + Join(*peer.networks, ", ");
  if (peer.domain_names) return "the domains " + Join(*peer.domain_names, ", ");
  return "nothing";
}

std::string DescribeClusterProtocol(const api::ClusterProtocol& protocol) {
  if (protocol.tcp) return PortText(*protocol.tcp, "TCP");
  if (protocol.udp) return PortText(*protocol.udp, "UDP");
  if (protocol.sctp) return PortText(*protocol.sctp, "SCTP");
  if (protocol.destination_named_port) return "the port named " + *protocol.destination_named_port;
  return "nothing";
}

std::string DescribeClusterRule(const Engine& engine, Direction dir, const ClusterRuleRef& ref, bool brief) {
  const api::ClusterNetworkPolicy& p = engine.cluster_policy(ref.policy);
  const bool ingress = dir == Direction::kIngress;
  const api::ClusterRule& rule = (ingress ? p.ingress : p.egress)[static_cast<size_t>(ref.rule)];
  std::string out = engine.ClusterPolicyName(ref.policy) + (ingress ? " ingress[" : " egress[") +
                    std::to_string(ref.rule) + "]";
  if (!rule.name.empty()) out += " " + rule.name;
  out += " (priority " + std::to_string(ref.priority);
  if (brief) return out + ")";
  if (rule.peers && ref.peer >= 0 && static_cast<size_t>(ref.peer) < rule.peers->size()) {
    out += std::string("; ") + (ingress ? "from[" : "to[") + std::to_string(ref.peer) +
           "]: " + DescribeClusterPeer((*rule.peers)[static_cast<size_t>(ref.peer)]);
  }
  if (ref.protocol < 0 || !rule.protocols) {
    out += "; protocols: any";
  } else {
    out += "; protocols[" + std::to_string(ref.protocol) +
           "]: " + DescribeClusterProtocol((*rule.protocols)[static_cast<size_t>(ref.protocol)]);
  }
  return out + ")";
}

std::string ExplainClusterPolicy(const Engine& engine, ClusterPolicyId id) {
  const api::ClusterNetworkPolicy& p = engine.cluster_policy(id);
  const api::Tier tier = p.tier.value_or(api::Tier::kAdmin);
  std::string out = "ClusterNetworkPolicy " + p.metadata.name + "\n";
  out += "  Tier: " + std::string(api::TierName(tier)) + ", priority " +
         std::to_string(p.priority.value_or(0)) +
         (tier == api::Tier::kAdmin
              ? " (before NetworkPolicies; lower priorities first)\n"
              : " (only where no NetworkPolicy selects the pod; lower priorities first)\n");
  std::string subject = "nothing";
  if (p.subject && p.subject->namespaces) subject = "all pods in " + Namespaces(*p.subject->namespaces);
  if (p.subject && p.subject->pods) subject = Pods(*p.subject->pods);
  const size_t selected = engine.ClusterSubjectPods(id).size();
  out += "  Subject: " + subject + " (" + std::to_string(selected) + (selected == 1 ? " pod)\n" : " pods)\n");
  for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
    const bool ingress = dir == Direction::kIngress;
    const auto& rules = ingress ? p.ingress : p.egress;
    if (rules.empty()) {
      out += ingress ? "  Ingress: no rules (does not affect ingress)\n"
                     : "  Egress: no rules (does not affect egress)\n";
      continue;
    }
    out += ingress ? "  Ingress, first match decides:\n" : "  Egress, first match decides:\n";
    for (size_t r = 0; r < rules.size(); ++r) {
      const api::ClusterRule& rule = rules[r];
      std::string line =
          "    " + std::to_string(r) + ". " + Action(rule.action.value_or(api::RuleAction::kDeny));
      if (!rule.name.empty()) line += " [" + rule.name + "]";
      std::vector<std::string> peers;
      if (rule.peers) {
        for (size_t i = 0; i < rule.peers->size(); ++i) {
          std::string peer = DescribeClusterPeer((*rule.peers)[i]);
          const api::ClusterPeer& cp = (*rule.peers)[i];
          if (cp.namespaces || cp.pods) {
            const size_t n = engine.ClusterPeerPods(id, dir, r, i).size();
            peer += " (" + std::to_string(n) + (n == 1 ? " pod)" : " pods)");
          }
          peers.push_back(std::move(peer));
        }
      }
      line += (ingress ? " from " : " to ") + Join(peers, ", or ");
      if (!rule.protocols) {
        line += ", on any port";
      } else {
        std::vector<std::string> ports;
        for (const auto& protocol : *rule.protocols) ports.push_back(DescribeClusterProtocol(protocol));
        line += ", on " + Join(ports, ", ");
      }
      out += line + "\n";
      const bool names =
          rule.peers && std::any_of(rule.peers->begin(), rule.peers->end(),
                                    [](const api::ClusterPeer& cp) { return cp.domain_names; });
      if (names) {
        out +=
            rule.action == api::RuleAction::kAccept
                ? "       Not enforced on packets: domain names are not matched by the dataplane, so what "
                  "this "
                  "rule accepts by name is left to the rules after it (denied where they deny).\n"
                : "       Not enforceable on packets: domain names are not matched by the dataplane (the API "
                  "supports them in Accept rules only); netpol enforce refuses this rule.\n";
      }
    }
  }
  return out;
}

}  // namespace netpol::policy
