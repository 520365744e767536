#include "policy/lint.h"

#include <algorithm>
#include <map>
#include <set>

#include "policy/explain.h"
#include "policy/flow_text.h"
#include "policy/internal/lint_cluster.h"
#include "policy/internal/state.h"

namespace netpol::policy {
namespace {

using internal::DynamicBitset;
using internal::PeerRule;
using internal::PolicyRec;
using internal::PortRule;
using internal::RuleRec;
using internal::State;

std::string RulePath(Direction dir, size_t rule) {
  return std::string(dir == Direction::kIngress ? "spec.ingress[" : "spec.egress[") + std::to_string(rule) +
         "]";
}

std::string PeerPath(Direction dir, size_t rule, size_t peer) {
  return RulePath(dir, rule) + (dir == Direction::kIngress ? ".from[" : ".to[") + std::to_string(peer) + "]";
}

class Linter {
 public:
  explicit Linter(const Engine& engine) : engine_(engine), s_(engine.state()) {}

  std::vector<Finding> Run() {
    for (const PolicyId id : engine_.Policies()) {
      SelectsNothing(id);
      for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
        Peers(id, dir);
        NamedPorts(id, dir);
        Shadowed(id, dir);
      }
    }
    EgressBlocksDns();
    std::stable_sort(findings_.begin(), findings_.end(), [](const Finding& a, const Finding& b) {
      return std::tie(a.policy, a.field) < std::tie(b.policy, b.field);
    });
    // ClusterNetworkPolicies first: they are evaluated first, and come in
    // evaluation order already.
    std::vector<Finding> out = internal::LintClusterPolicies(engine_);
    out.insert(out.end(), std::make_move_iterator(findings_.begin()),
               std::make_move_iterator(findings_.end()));
    return out;
  }

 private:
  void Add(PolicyId id, std::string check, std::string field, std::string message) {
    const PolicyRec& p = s_.policies[id];
    api::SourceLocation where = p.spec.metadata.source.Locate(field.empty() ? "metadata.name" : field);
    findings_.push_back({std::move(check), p.full_name, std::move(field), std::move(message),
                         std::move(where), std::nullopt, ""});
  }

  void SelectsNothing(PolicyId id) {
    if (!engine_.SelectedPods(id).empty()) return;
    const PolicyRec& p = s_.policies[id];
    const std::string& ns = p.spec.metadata.namespace_;
    Add(id, "selects-nothing", "spec.podSelector",
        p.spec.pod_selector.empty()
            ? "selects no pod: namespace " + ns + " has no pods (yet), so the policy has no effect"
            : "selects no pod: no pod in namespace " + ns + " matches " + p.spec.pod_selector.ToString() +
                  ", so the policy has no effect");
  }

  void Peers(PolicyId id, Direction dir) {
    const PolicyRec& p = s_.policies[id];
    const auto& rules = p.rules(dir);
    const auto& spec_rules = dir == Direction::kIngress ? p.spec.ingress : p.spec.egress;
    for (size_t r = 0; r < rules.size(); ++r) {
      for (size_t i = 0; i < rules[r].peers.size(); ++i) {
        const PeerRule& peer = rules[r].peers[i];
        const std::string path = PeerPath(dir, r, i);
        if (peer.is_ip_block()) {
          IpBlockCoversPods(id, peer, path);
          continue;
        }
        if (peer.namespace_selector && !peer.namespace_selector->empty()) {
          bool any = false;
          for (const auto& ns : s_.namespaces) any = any || peer.namespace_selector->Matches(ns.labels);
          if (!any) {
            Add(id, "namespace-unmatched", path + ".namespaceSelector",
                "no namespace has labels matching " + peer.namespace_selector->ToString() +
                    " (namespaces are matched by their labels, not their names; every namespace "
                    "has kubernetes.io/metadata.name=<name>)");
            continue;
          }
        }
        if (peer.classes.none()) {
          Add(id, "peer-matches-nothing", path,
              "matches no pod: " + DescribePeer(spec_rules[r].peers[i], p.spec.metadata.namespace_));
        }
      }
    }
  }

  void IpBlockCoversPods(PolicyId id, const PeerRule& peer, const std::string& path) {
    std::vector<std::string> covered;
    for (const auto& [ip, pod] : s_.pod_by_ip) {
      // hostNetwork pods are their node: only an ipBlock can match them.
      const internal::PodRec& rec = s_.pods[pod];
      if (rec.live && !rec.pod.host_network && peer.MatchesIp(ip)) covered.push_back(rec.pod.FullName());
    }
    if (covered.empty()) return;
    std::sort(covered.begin(), covered.end());
    covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
    std::string names;
    for (size_t i = 0; i < covered.size() && i < 3; ++i) names += (i ? ", " : "") + covered[i];
    if (covered.size() > 3) names += ", ...";
    Add(id, "ipblock-covers-pods", path + ".ipBlock",
        peer.cidr->ToString() + " contains the IPs of " + std::to_string(covered.size()) +
            (covered.size() == 1 ? " pod (" : " pods (") + names +
            "); netpol matches pod IPs against ipBlocks, some plugins (Cilium) do not; prefer a "
            "pod or namespace selector for pods");
  }

  void NamedPorts(PolicyId id, Direction dir) {
    const PolicyRec& p = s_.policies[id];
    const auto& rules = p.rules(dir);
    for (size_t r = 0; r < rules.size(); ++r) {
      for (size_t i = 0; i < rules[r].ports.size(); ++i) {
        const PortRule& port = rules[r].ports[i];
        if (port.name.empty()) continue;
        // Destinations: the selected pods for ingress; the peer pods for egress.
        DynamicBitset destinations;
        if (dir == Direction::kIngress) {
          destinations = p.targets;
        } else if (rules[r].peers.empty()) {
          for (const auto& [key, c] : s_.class_index) destinations.set(c);
        } else {
          for (const PeerRule& peer : rules[r].peers) destinations |= peer.classes;
        }
        bool declared = false;
        destinations.ForEach([&](size_t c) {
          declared = declared || (s_.IsLiveClass(static_cast<uint32_t>(c)) &&
                                  s_.classes[c].ResolveNamedPort(port.name, port.protocol));
        });
        if (!declared) {
          Add(id, "named-port-undeclared", RulePath(dir, r) + ".ports[" + std::to_string(i) + "].port",
              "no " + std::string(dir == Direction::kIngress ? "selected" : "destination") +
                  " pod declares a " + std::string(api::ProtocolName(port.protocol)) +
                  " container port named " + port.name + ", so this port matches nothing");
        }
      }
    }
  }

  static bool PortCovers(const PortRule& wide, const PortRule& narrow) {
    if (wide.protocol != narrow.protocol) return false;
    if (wide.any_port) return true;
    if (narrow.any_port) return false;
    if (!wide.name.empty() || !narrow.name.empty()) return wide.name == narrow.name;
    return wide.first <= narrow.first && narrow.last <= wide.last;
  }

  static bool PeerCovers(const PeerRule& wide, const PeerRule& narrow) {
    if (wide.is_ip_block() != narrow.is_ip_block()) return false;
    if (!wide.is_ip_block()) return !narrow.classes.none() && narrow.classes.IsSubsetOf(wide.classes);
    if (!wide.cidr->Contains(*narrow.cidr)) return false;
    // Every hole in `wide` must be inside a hole of `narrow` or outside it.
    return std::all_of(wide.except.begin(), wide.except.end(), [&](const IpPrefix& hole) {
      if (!hole.Overlaps(*narrow.cidr)) return true;
      return std::any_of(narrow.except.begin(), narrow.except.end(),
                         [&](const IpPrefix& n) { return n.Contains(hole); });
    });
  }

  static bool RuleCovers(const RuleRec& wide, const RuleRec& narrow) {
    const bool ports =
        wide.ports.empty() || (!narrow.ports.empty() &&
                               std::all_of(narrow.ports.begin(), narrow.ports.end(), [&](const PortRule& n) {
                                 return std::any_of(wide.ports.begin(), wide.ports.end(),
                                                    [&](const PortRule& w) { return PortCovers(w, n); });
                               }));
    if (!ports) return false;
    return wide.peers.empty() ||
           (!narrow.peers.empty() &&
            std::all_of(narrow.peers.begin(), narrow.peers.end(), [&](const PeerRule& n) {
              return std::any_of(wide.peers.begin(), wide.peers.end(),
                                 [&](const PeerRule& w) { return PeerCovers(w, n); });
            }));
  }

  // Rule `r` of `id` is shadowed when a rule of a policy selecting at least the
  // same pods covers its peers and ports. Of two identical rules the later one
  // (by policy name, then index) is reported.
  void Shadowed(PolicyId id, Direction dir) {
    const PolicyRec& p = s_.policies[id];
    if (p.targets.none()) return;
    const auto& rules = p.rules(dir);
    for (size_t r = 0; r < rules.size(); ++r) {
      for (const PolicyId other_id : engine_.Policies()) {
        const PolicyRec& other = s_.policies[other_id];
        if ((dir == Direction::kIngress ? !other.ingress : !other.egress) || other.ns != p.ns ||
            !p.targets.IsSubsetOf(other.targets)) {
          continue;
        }
        const auto& other_rules = other.rules(dir);
        bool found = false;
        for (size_t o = 0; o < other_rules.size() && !found; ++o) {
          if (other_id == id && o == r) continue;
          if (!RuleCovers(other_rules[o], rules[r])) continue;
          const bool mutual = RuleCovers(rules[r], other_rules[o]) && other.targets.IsSubsetOf(p.targets);
          const bool other_first = std::tie(other.full_name, o) < std::tie(p.full_name, r);
          if (mutual && !other_first) continue;
          Add(id, "rule-shadowed", RulePath(dir, r),
              "already allowed by " + other.full_name + " " + RulePath(dir, o) +
                  ", which covers its peers and ports for the same pods; this rule adds nothing");
          found = true;
        }
        if (found) break;
      }
    }
  }

  // DNS judged with the engine (docs/SEMANTICS.md §20): from each
  // egress-isolated pod to the cluster's DNS pods (k8s-app=kube-dns in
  // kube-system) on 53/UDP and 53/TCP, in each family the pair connects over;
  // without DNS pods, its egress rules must allow 53 to some kube-system pod
  // or to some IP (the resolver is then unknown: any would do).
  void EgressBlocksDns() {
    const std::vector<PodId> dns = internal::ClusterDnsPods(engine_);
    // Per set of isolating policies: the protocols blocked, and the pods.
    struct Blocked {
      std::set<api::Protocol> protocols;
      std::vector<PodId> pods;
    };
    std::map<std::vector<PolicyId>, Blocked> groups;
    // Without DNS pods the answer depends on the isolating policies only.
    std::map<std::pair<std::vector<PolicyId>, api::Protocol>, bool> by_rules;
    const api::Labels kube_system = KubeSystemLabels();
    for (const PodId id : engine_.Pods()) {
      const internal::PodRec& rec = s_.pods[id];
      if (rec.cls == internal::kNoClass || s_.classes[rec.cls].egress_policies.empty()) continue;
      const std::vector<PolicyId>& isolating = s_.classes[rec.cls].egress_policies;
      std::set<api::Protocol> blocked;
      for (const api::Protocol proto : {api::Protocol::kUDP, api::Protocol::kTCP}) {
        bool allowed = false;
        if (dns.empty()) {
          const auto [it, inserted] = by_rules.try_emplace({isolating, proto}, false);
          if (inserted) it->second = DnsRuleAllows(isolating, proto, kube_system);
          allowed = it->second;
        } else {
          allowed = ReachesAllDns(id, dns, proto);
        }
        if (!allowed) blocked.insert(proto);
      }
      if (blocked.empty()) continue;
      Blocked& group = groups[isolating];
      group.protocols.insert(blocked.begin(), blocked.end());
      group.pods.push_back(id);
    }
    for (const auto& [isolating, group] : groups) {
      std::string names;
      for (const PolicyId pid : isolating) names += (names.empty() ? "" : ", ") + s_.policies[pid].full_name;
      std::string ports;
      for (const api::Protocol proto : {api::Protocol::kUDP, api::Protocol::kTCP}) {
        if (group.protocols.count(proto) != 0) {
          ports += (ports.empty() ? "53/" : " or 53/") + std::string(api::ProtocolName(proto));
        }
      }
      std::string pods = engine_.pod(group.pods[0]).FullName();
      if (group.pods.size() > 1) pods += " (+" + std::to_string(group.pods.size() - 1) + " more)";
      std::string to;
      if (dns.empty()) {
        to = "no egress rule allows " + ports +
             " to a kube-system pod or an IP address (no cluster DNS pods, k8s-app=kube-dns in kube-system, "
             "in the input)";
      } else {
        to = "the cluster DNS (" + engine_.pod(dns[0]).FullName() +
             (dns.size() > 1 ? " and " + std::to_string(dns.size() - 1) + " more" : std::string()) +
             ") is not reachable on " + ports;
      }
      Add(isolating.front(), "egress-blocks-dns", "spec.policyTypes",
          "pods isolated for egress by " + names + " may not send DNS: from " + pods + ", " + to +
              "; name lookups will fail unless you allow it");
    }
  }

  // kube-system's labels (its name label only when the input lacks it).
  api::Labels KubeSystemLabels() const {
    for (const auto& [name, labels] : engine_.Namespaces()) {
      if (name == "kube-system") return labels;
    }
    return {{"kubernetes.io/metadata.name", "kube-system"}};
  }

  // `pod` reaches every DNS pod on 53/`proto`, in every family (the Service
  // may pick any of them). A ClusterNetworkPolicy's Deny of that egress is not
  // the NetworkPolicies' doing: the ClusterNetworkPolicy check reports it.
  bool ReachesAllDns(PodId pod, const std::vector<PodId>& dns, api::Protocol proto) const {
    for (const PodId server : dns) {
      for (const FamilyFlow& f :
           FamilyFlows(engine_, Endpoint::OfPod(pod), Endpoint::OfPod(server), proto, uint16_t{53})) {
        if (engine_.Allowed(f.flow)) continue;  // the fast path; explained only when denied
        if (engine_.Evaluate(f.flow).egress.reason != Reason::kClusterDeny) return false;
      }
    }
    return true;
  }

  // Without DNS pods to judge against: some egress rule of the isolating
  // policies allows 53/`proto` (a named port may be it) to anywhere, to an
  // ipBlock, or to peers that can select pods in kube-system.
  bool DnsRuleAllows(const std::vector<PolicyId>& isolating, api::Protocol proto,
                     const api::Labels& kube_system) const {
    for (const PolicyId pid : isolating) {
      const api::NetworkPolicy& policy = s_.policies[pid].spec;
      for (const api::NetworkPolicyRule& rule : policy.egress) {
        const bool port_ok =
            rule.ports.empty() ||
            std::any_of(rule.ports.begin(), rule.ports.end(), [&](const api::NetworkPolicyPort& p) {
              if (p.protocol != proto) return false;
              if (!p.port || std::holds_alternative<std::string>(*p.port)) return true;
              const int32_t first = std::get<int32_t>(*p.port);
              return first <= 53 && 53 <= p.end_port.value_or(first);
            });
        if (!port_ok) continue;
        if (rule.peers.empty()) return true;
        for (const api::NetworkPolicyPeer& peer : rule.peers) {
          if (peer.ip_block) return true;
          const bool ns_ok = peer.namespace_selector ? peer.namespace_selector->Matches(kube_system)
                                                     : policy.metadata.namespace_ == "kube-system";
          if (ns_ok) return true;
        }
      }
    }
    return false;
  }

  const Engine& engine_;
  const State& s_;
  std::vector<Finding> findings_;
};

}  // namespace

std::string Finding::ToString() const {
  std::string out;
  if (const std::string at = where.ToString(); !at.empty()) out += at + ": ";
  out += "warning: [" + check + "] " + std::string(kind()) + " " + policy;
  if (cluster) {
    out += std::string(" (") + std::string(api::TierName(cluster->tier)) + " tier, priority " +
           std::to_string(cluster->priority) + ")";
  }
  out += ": ";
  if (!field.empty()) out += field + (rule.empty() ? "" : " (rule \"" + rule + "\")") + ": ";
  return out + message;
}

std::vector<Finding> Lint(const Engine& engine) {
  return Linter(engine).Run();
}

}  // namespace netpol::policy
