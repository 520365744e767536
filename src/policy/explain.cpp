#include "policy/explain.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/strings.h"
#include "policy/flow_text.h"

namespace netpol::policy {
namespace {

std::string PodCount(size_t n) {
  return std::to_string(n) + (n == 1 ? " pod" : " pods");
}

// "2 pods: a-0, a-1" (at most `limit` names, then "...").
std::string PodList(const Engine& engine, const std::vector<PodId>& pods, const std::string& ns,
                    size_t limit = 5) {
  std::string out = PodCount(pods.size());
  if (pods.empty()) return out;
  out += ": ";
  for (size_t i = 0; i < pods.size() && i < limit; ++i) {
    if (i > 0) out += ", ";
    const Pod& pod = engine.pod(pods[i]);
    out += pod.namespace_ == ns ? pod.name : pod.FullName();
  }
  if (pods.size() > limit) out += ", ...";
  return out;
}

std::string TypesLine(const api::NetworkPolicy& p) {
  std::vector<std::string> types;
  if (p.AffectsIngress()) types.emplace_back("ingress");
  if (p.AffectsEgress()) types.emplace_back("egress");
  std::string line = types.empty() ? "nothing" : Join(types, " and ");
  if (p.policy_types.empty()) {
    line += p.egress.empty() ? " (policyTypes not set: Ingress by default)"
                             : " (policyTypes not set: Ingress, and Egress because egress rules exist)";
  }
  return line;
}

// What a named port means on the pods it is resolved on (SEMANTICS.md §9: the
// destination: the selected pods for ingress, the peer pods for egress, every
// pod for an egress rule to anywhere): " [8080 on 2 pods: web-0, web-1; not
// declared for TCP on 1 pod: db-0]". "" for a numbered port.
std::string NamedPortTargets(const Engine& engine, PolicyId id, Direction dir, size_t rule_index,
                             const api::NetworkPolicyPort& port) {
  const auto* name = port.port ? std::get_if<std::string>(&*port.port) : nullptr;
  if (name == nullptr) return "";
  const api::NetworkPolicy& p = engine.policy(id);
  std::vector<PodId> pods;
  if (dir == Direction::kIngress) {
    pods = engine.SelectedPods(id);
  } else if (p.egress[rule_index].peers.empty()) {
    pods = engine.Pods();
  } else {
    for (size_t i = 0; i < p.egress[rule_index].peers.size(); ++i) {
      for (const PodId pod : engine.PeerPods(id, dir, rule_index, i)) pods.push_back(pod);
    }
    std::sort(pods.begin(), pods.end(),
              [&](PodId a, PodId b) { return engine.pod(a).FullName() < engine.pod(b).FullName(); });
    pods.erase(std::unique(pods.begin(), pods.end()), pods.end());
  }
  std::map<int32_t, std::vector<PodId>> by_number;
  std::vector<PodId> undeclared;
  for (const PodId pod : pods) {
    const Pod& rec = engine.pod(pod);
    if (rec.host_network) continue;  // no port table: a named port never matches it
    // A name declared twice in one pod means its first declaration.
    const auto it = std::find_if(rec.ports.begin(), rec.ports.end(), [&](const api::ContainerPort& c) {
      return c.name == *name && c.protocol == port.protocol;
    });
    if (it == rec.ports.end()) {
      undeclared.push_back(pod);
    } else {
      by_number[it->container_port].push_back(pod);
    }
  }
  if (by_number.empty() && undeclared.empty()) return dir == Direction::kIngress ? " [no pod selected]" : "";
  std::vector<std::string> parts;
  parts.reserve(by_number.size() + 1);
  for (const auto& [number, members] : by_number) {
    parts.push_back(std::to_string(number) + " on " + PodList(engine, members, p.metadata.namespace_));
  }
  if (!undeclared.empty()) {
    parts.push_back("not declared for " + std::string(api::ProtocolName(port.protocol)) + " on " +
                    PodList(engine, undeclared, p.metadata.namespace_));
  }
  return " [" + Join(parts, "; ") + "]";
}

// The pods whose addresses an ipBlock holds, and the dual-stack pods it holds
// by one family only (docs/SEMANTICS.md §19: their other family's connections
// are not this peer's): " [pods inside: 1 pod: legacy; by their IPv4 address
// only: 2 pods: api, web]". "" when it holds none.
std::string BlockPods(const Engine& engine, const api::IpBlock& block, const std::string& ns) {
  const Result<IpPrefix> cidr = IpPrefix::Parse(block.cidr);
  if (!cidr) return "";
  std::vector<IpPrefix> except;
  for (const std::string& e : block.except) {
    if (Result<IpPrefix> prefix = IpPrefix::Parse(e)) except.push_back(*prefix);
  }
  const auto inside = [&](const IpAddress& ip) {
    return cidr->Contains(ip) &&
           std::none_of(except.begin(), except.end(), [&](const IpPrefix& e) { return e.Contains(ip); });
  };
  std::vector<PodId> whole;
  std::map<IpFamily, std::vector<PodId>> partly;
  for (const PodId pod : engine.Pods()) {
    const Pod& rec = engine.pod(pod);
    const auto held = static_cast<size_t>(std::count_if(rec.ips.begin(), rec.ips.end(), inside));
    if (held == 0) continue;
    if (held == rec.ips.size()) {
      whole.push_back(pod);
    } else {
      for (const IpAddress& ip : rec.ips) {
        if (inside(ip)) partly[ip.family()].push_back(pod);
      }
    }
  }
  std::vector<std::string> parts;
  if (!whole.empty()) parts.push_back("pods inside: " + PodList(engine, whole, ns));
  for (const auto& [family, pods] : partly) {
    parts.push_back("by their " + std::string(FamilyName(family)) +
                    " address only: " + PodList(engine, pods, ns));
  }
  return parts.empty() ? "" : " [" + Join(parts, "; ") + "]";
}

void DescribeRules(const Engine& engine, PolicyId id, Direction dir, std::string& out) {
  const api::NetworkPolicy& p = engine.policy(id);
  const bool ingress = dir == Direction::kIngress;
  const auto& rules = ingress ? p.ingress : p.egress;
  const char* heading = ingress ? "  Allows in" : "  Allows out";
  if (rules.empty()) {
    out += heading;
    out += ": nothing. The selected pods get ";
    out += ingress ? "ingress" : "egress";
    out += " only where another policy allows it.\n";
    return;
  }
  out += heading;
  out += ":\n";
  for (size_t r = 0; r < rules.size(); ++r) {
    const api::NetworkPolicyRule& rule = rules[r];
    std::string line = "    " + std::to_string(r + 1) + ". ";
    if (rule.peers.empty()) {
      line += ingress ? "from anywhere" : "to anywhere";
    } else {
      std::vector<std::string> peers;
      for (size_t i = 0; i < rule.peers.size(); ++i) {
        std::string peer = DescribePeer(rule.peers[i], p.metadata.namespace_);
        if (!rule.peers[i].ip_block) {
          peer += " (" + PodCount(engine.PeerPods(id, dir, r, i).size()) + ")";
        } else {
          peer += BlockPods(engine, *rule.peers[i].ip_block, p.metadata.namespace_);
        }
        peers.push_back(std::move(peer));
      }
      line += (ingress ? "from " : "to ") + Join(peers, ", or ");
    }
    if (rule.ports.empty()) {
      line += ", on any port";
    } else {
      std::vector<std::string> ports;
      for (const auto& port : rule.ports) {
        ports.push_back(DescribePort(port) + NamedPortTargets(engine, id, dir, r, port));
      }
      line += ", on " + Join(ports, ", ");
    }
    out += line + "\n";
  }
}

std::string DirectionLine(const Engine& engine, const Flow& flow, Direction dir, const DirectionVerdict& v) {
  const bool ingress = dir == Direction::kIngress;
  const Endpoint& self = ingress ? flow.dst : flow.src;
  const Endpoint& other = ingress ? flow.src : flow.dst;
  std::string line = ingress ? "  ingress at " : "  egress at  ";
  line += DescribeEndpoint(engine, self) + ": ";
  // The Pass chain: "passed by admin/x ingress[1] team (priority 10), then ...".
  for (const ClusterRuleRef& pass : v.passed)
    line += "passed by " + DescribeClusterRule(engine, dir, pass, true) + ", then ";
  switch (v.reason) {
    case Reason::kNotIsolated:
      if (!v.cluster_subjects.empty()) {
        std::vector<std::string> names;
        for (const ClusterPolicyId id : v.cluster_subjects) names.push_back(engine.ClusterPolicyName(id));
        line += "allowed: no NetworkPolicy selects it for " + std::string(ingress ? "ingress" : "egress") +
                " and no rule of " + Join(names, ", ") + " decides";
        break;
      }
      line += std::string("allowed: no policy selects it for ") + (ingress ? "ingress" : "egress");
      break;
    case Reason::kClusterAccept:
      line += "allowed by " + DescribeClusterRule(engine, dir, *v.cluster_rule);
      break;
    case Reason::kClusterDeny:
      line += "denied by " + DescribeClusterRule(engine, dir, *v.cluster_rule);
      break;
    case Reason::kAllowedByRule:
      line += "allowed by " + DescribeRule(engine, dir, *v.allowed_by);
      break;
    case Reason::kNoRuleMatched: {
      std::vector<std::string> names;
      for (const PolicyId id : v.isolating) names.push_back(engine.PolicyName(id));
      line += "denied: isolated by " + Join(names, ", ") + ", and no " + (ingress ? "ingress" : "egress") +
              " rule of " + (names.size() == 1 ? "it" : "them") + " allows " +
              DescribeEndpoint(engine, other) + " on " + std::to_string(flow.port) + "/" +
              std::string(api::ProtocolName(flow.protocol));
      break;
    }
    case Reason::kSelf:
      line += "allowed: a pod's traffic to itself never leaves it";
      break;
    case Reason::kOwnNode:
      line += "allowed: traffic between a pod and its own node is always allowed";
      break;
    case Reason::kNotPolicyManaged:
      line += "not judged: not a policy-managed pod";
      break;
  }
  return line + "\n";
}

}  // namespace

std::string DescribePeer(const api::NetworkPolicyPeer& peer, const std::string& policy_namespace) {
  if (peer.ip_block) {
    std::string out = "IPs in " + peer.ip_block->cidr;
    if (!peer.ip_block->except.empty()) out += " except " + Join(peer.ip_block->except, ", ");
    return out;
  }
  std::string pods = !peer.pod_selector || peer.pod_selector->empty()
                         ? "all pods"
                         : "pods matching " + peer.pod_selector->ToString();
  if (!peer.namespace_selector) return pods + " in namespace " + policy_namespace;
  if (peer.namespace_selector->empty()) return pods + " in all namespaces";
  return pods + " in namespaces matching " + peer.namespace_selector->ToString();
}

std::string DescribePort(const api::NetworkPolicyPort& port) {
  const std::string proto(api::ProtocolName(port.protocol));
  if (!port.port) return "every " + proto + " port";
  if (const auto* name = std::get_if<std::string>(&*port.port)) {
    return "the port named " + *name + " (" + proto + ")";
  }
  const int32_t first = std::get<int32_t>(*port.port);
  if (port.end_port && *port.end_port != first) {
    return std::to_string(first) + "-" + std::to_string(*port.end_port) + "/" + proto;
  }
  return std::to_string(first) + "/" + proto;
}

std::string DescribeEndpoint(const Engine& engine, const Endpoint& e) {
  switch (e.kind) {
    case Endpoint::Kind::kPod: {
      const Pod& pod = engine.pod(e.pod);
      std::string out = pod.FullName();
      if (e.ip) {
        out += " (" + e.ip->ToString() + ")";
      } else if (!pod.ips.empty()) {
        out += " (" + pod.ips.front().ToString() + ")";
      }
      return out;
    }
    case Endpoint::Kind::kNode:
      return "node " + e.node + (e.ip ? " (" + e.ip->ToString() + ")" : std::string());
    case Endpoint::Kind::kExternal:
      return e.ip ? e.ip->ToString() : "?";
  }
  return "?";
}

std::string DescribeRule(const Engine& engine, Direction dir, const RuleRef& ref) {
  const api::NetworkPolicy& p = engine.policy(ref.policy);
  const bool ingress = dir == Direction::kIngress;
  const auto& rule = (ingress ? p.ingress : p.egress)[static_cast<size_t>(ref.rule)];
  std::string out =
      engine.PolicyName(ref.policy) + (ingress ? " ingress[" : " egress[") + std::to_string(ref.rule) + "] (";
  const char* peers = ingress ? "from" : "to";
  if (ref.peer < 0) {
    out += std::string(peers) + ": any";
  } else {
    out += std::string(peers) + "[" + std::to_string(ref.peer) +
           "]: " + DescribePeer(rule.peers[static_cast<size_t>(ref.peer)], p.metadata.namespace_);
  }
  out += "; ";
  if (ref.port < 0) {
    out += "ports: any";
  } else {
    out +=
        "ports[" + std::to_string(ref.port) + "]: " + DescribePort(rule.ports[static_cast<size_t>(ref.port)]);
  }
  return out + ")";
}

std::string ExplainPolicy(const Engine& engine, PolicyId id) {
  const api::NetworkPolicy& p = engine.policy(id);
  const std::string& ns = p.metadata.namespace_;
  std::string out = "NetworkPolicy " + engine.PolicyName(id) + "\n";
  const std::vector<PodId> selected = engine.SelectedPods(id);
  out += "  Selects: ";
  out += p.pod_selector.empty() ? "all pods" : "pods matching " + p.pod_selector.ToString();
  out += " in namespace " + ns + " (" + PodList(engine, selected, ns) + ")\n";
  out += "  Isolates: " + TypesLine(p) + "\n";
  if (p.AffectsIngress()) DescribeRules(engine, id, Direction::kIngress, out);
  if (p.AffectsEgress()) DescribeRules(engine, id, Direction::kEgress, out);
  if (!p.AffectsIngress() && !p.ingress.empty()) {
    out += "  Note: its ingress rules have no effect: policyTypes does not include Ingress.\n";
  }
  if (!p.AffectsEgress() && !p.egress.empty()) {
    out += "  Note: its egress rules have no effect: policyTypes does not include Egress.\n";
  }
  return out;
}

std::string FormatVerdict(const Engine& engine, const Flow& flow, const Verdict& verdict) {
  std::string out = DescribeEndpoint(engine, flow.src) + " -> " + DescribeEndpoint(engine, flow.dst) +
                    " on " + std::to_string(flow.port) + "/" + std::string(api::ProtocolName(flow.protocol)) +
                    ": " + (verdict.allowed ? "ALLOWED" : "DENIED") + "\n";
  out += DirectionLine(engine, flow, Direction::kEgress, verdict.egress);
  out += DirectionLine(engine, flow, Direction::kIngress, verdict.ingress);
  return out;
}

}  // namespace netpol::policy
