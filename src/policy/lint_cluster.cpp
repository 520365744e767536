// The ClusterNetworkPolicy lints (internal/lint_cluster.h, docs/SEMANTICS.md §22).
// Example: with
//   admin/a priority 10: ingress[0] Deny   from namespaces {}         (every namespace)
//   admin/b priority 20: ingress[0] Accept from namespaces env=dev
// and b's subject inside a's, b's rule is shadowed: a's rule covers its
// subject, peers and ports, so every flow it could match is denied first.
#include "policy/internal/lint_cluster.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "base/strings.h"
#include "policy/flow_text.h"
#include "policy/internal/containment.h"
#include "policy/internal/state.h"
#include "policy/internal/tiers.h"

namespace netpol::policy::internal {
namespace {

using Kind = ClusterPeerRec::Kind;

std::string DirName(Direction dir) {
  return dir == Direction::kIngress ? "ingress" : "egress";
}

std::string RulePath(Direction dir, size_t rule) {
  return "spec." + DirName(dir) + "[" + std::to_string(rule) + "]";
}

std::string PeerPath(Direction dir, size_t rule, size_t peer) {
  return RulePath(dir, rule) + (dir == Direction::kIngress ? ".from[" : ".to[") + std::to_string(peer) + "]";
}

std::optional<PodShape> SubjectShape(const api::ClusterNetworkPolicy& spec) {
  if (!spec.subject) return std::nullopt;
  if (spec.subject->namespaces) return PodShape{*spec.subject->namespaces, {}};
  if (spec.subject->pods) {
    return PodShape{spec.subject->pods->namespace_selector,
                    spec.subject->pods->pod_selector.value_or(api::LabelSelector{})};
  }
  return std::nullopt;
}

PodShape PeerShape(const PeerRule& peer) {
  return {peer.namespace_selector.value_or(api::LabelSelector{}),
          peer.pod_selector.value_or(api::LabelSelector{})};
}

bool Intersect(const DynamicBitset& a, const DynamicBitset& b) {
  DynamicBitset both = a;
  both &= b;
  return !both.none();
}

std::string ActionName(api::RuleAction action) {
  return std::string(api::RuleActionName(action));
}

// ---- the linter ----------------------------------------------------------------

class ClusterLinter {
 public:
  explicit ClusterLinter(const Engine& engine)
      : engine_(engine), s_(engine.state()), order_(engine.ClusterPolicies()) {}

  std::vector<Finding> Run() {
    for (const ClusterPolicyId id : order_) {
      PriorityTie(id);
      const std::vector<std::pair<ClusterPolicyId, bool>> covering = Covering(id);
      for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
        BaselineUnreachable(id, dir);
        for (size_t r = 0; r < s_.cluster_policies[id].rules(dir).size(); ++r) {
          Shadowed(id, dir, r, covering);
          PassToDefault(id, dir, r);
          DomainNames(id, dir, r);
        }
      }
    }
    EgressDeniesDns();
    return std::move(findings_);
  }

 private:
  // A rule evaluated before the one judged, for every pod of its subject:
  // `by_selectors` when the selectors show that (its own policy, or a subject
  // containing the judged one's), else shown by the pods given only.
  struct Earlier {
    ClusterPolicyId policy;
    size_t rule;
    bool by_selectors;
  };

  const ClusterPolicyRec& Policy(ClusterPolicyId id) const { return s_.cluster_policies[id]; }

  const std::string& RuleName(const ClusterPolicyRec& p, Direction dir, size_t r) const {
    return (dir == Direction::kIngress ? p.spec.ingress : p.spec.egress)[r].name;
  }

  void Add(ClusterPolicyId id, std::string check, std::string field, std::string rule, std::string message) {
    const ClusterPolicyRec& p = Policy(id);
    Finding f;
    f.check = std::move(check);
    f.policy = p.full_name;
    f.where = p.spec.metadata.source.Locate(field.empty() ? "metadata.name" : field);
    f.field = std::move(field);
    f.message = std::move(message);
    f.cluster = Finding::ClusterRank{p.tier, p.priority};
    f.rule = std::move(rule);
    findings_.push_back(std::move(f));
  }

  // "admin/a ingress[0] deny-dev (Deny, priority 5)"
  std::string DescribeRule(ClusterPolicyId id, Direction dir, size_t r) const {
    const ClusterPolicyRec& p = Policy(id);
    return ClusterRuleOrigin(p, dir, r) + " (" + ActionName(p.rules(dir)[r].action) + ", priority " +
           std::to_string(p.priority) + ")";
  }

  // How many pods `classes` hold, and the first few by name.
  std::pair<size_t, std::string> Pods(const DynamicBitset& classes) const {
    std::vector<std::string> names;
    classes.ForEach([&](size_t c) {
      if (!s_.IsLiveClass(static_cast<ClassId>(c))) return;
      for (const PodId id : s_.classes[c].pods) names.push_back(s_.pods[id].pod.FullName());
    });
    std::sort(names.begin(), names.end());
    std::string text;
    for (size_t i = 0; i < names.size() && i < 3; ++i) text += (i ? ", " : "") + names[i];
    if (names.size() > 3) text += ", ...";
    return {names.size(), text};
  }

  static std::string CountPods(size_t n) { return std::to_string(n) + (n == 1 ? " pod" : " pods"); }

  const std::vector<PolicyId>& Isolating(const PodClass& cls, Direction dir) const {
    return dir == Direction::kIngress ? cls.ingress_policies : cls.egress_policies;
  }

  // ---- cluster-priority-tie ----

  // Reported on the later of two tied policies in netpol's order (by name).
  void PriorityTie(ClusterPolicyId id) {
    const ClusterPolicyRec& p = Policy(id);
    for (const ClusterPolicyId other_id : order_) {
      if (other_id == id) break;
      const ClusterPolicyRec& other = Policy(other_id);
      if (other.tier != p.tier || other.priority != p.priority) continue;
      std::vector<std::string> dirs;
      for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
        if (!p.rules(dir).empty() && !other.rules(dir).empty()) dirs.push_back(DirName(dir));
      }
      if (dirs.empty()) continue;  // one has ingress rules only, the other egress: order never matters
      DynamicBitset both = p.subjects;
      both &= other.subjects;
      std::string overlap;
      if (!both.none()) {
        const auto [n, names] = Pods(both);
        overlap = "both select " + CountPods(n) + " (" + names + ")";
      } else {
        const auto mine = SubjectShape(p.spec);
        const auto theirs = SubjectShape(other.spec);
        if (!mine || !theirs || (!ShapeContains(*mine, *theirs) && !ShapeContains(*theirs, *mine))) continue;
        overlap =
            "the selectors of one subject contain the other's (every pod of the narrower is a subject of "
            "both)";
      }
      Add(id, "cluster-priority-tie", "spec.priority", "",
          "has the priority of " + other.full_name + " (" + std::to_string(p.priority) + ") and " + overlap +
              ", with " + Join(dirs, " and ") +
              " rules: the API leaves the order of equal priorities to the implementation; netpol "
              "evaluates " +
              other.full_name +
              " first (equal priorities in name order, docs/SEMANTICS.md §21), others may not; give them "
              "different priorities");
    }
  }

  // ---- baseline-unreachable ----

  void BaselineUnreachable(ClusterPolicyId id, Direction dir) {
    const ClusterPolicyRec& p = Policy(id);
    if (p.tier != api::Tier::kBaseline || p.rules(dir).empty() || p.subjects.none()) return;
    std::set<std::string> isolating;
    bool every = true;
    p.subjects.ForEach([&](size_t c) {
      if (!s_.IsLiveClass(static_cast<ClassId>(c))) return;
      const std::vector<PolicyId>& list = Isolating(s_.classes[c], dir);
      every = every && !list.empty();
      for (const PolicyId np : list) isolating.insert(engine_.PolicyName(np));
    });
    if (!every || isolating.empty()) return;
    const size_t rules = p.rules(dir).size();
    std::vector<std::string> which;
    for (size_t r = 0; r < rules; ++r)
      which.push_back(ClusterRuleOrigin(p, dir, r).substr(p.full_name.size() + 1));
    const auto [n, names] = Pods(p.subjects);
    const std::vector<std::string> by(isolating.begin(), isolating.end());
    Add(id, "baseline-unreachable", rules == 1 ? RulePath(dir, 0) : "spec." + DirName(dir),
        rules == 1 ? RuleName(p, dir, 0) : "",
        (rules == 1 ? "never applies"
                    : "its " + std::to_string(rules) + " " + DirName(dir) + " rules (" + Join(which, ", ") +
                          ") never apply") +
            ": NetworkPolicies select every pod of its subject for " + DirName(dir) + " (" + CountPods(n) +
            ": " + names + "; by " + Join(by, ", ") +
            "), and a NetworkPolicy is final for the pods it selects; the Baseline tier decides only for "
            "pods "
            "no NetworkPolicy selects");
  }

  // ---- cluster-rule-shadowed ----

  // The policies evaluated before `id` for every pod of its subject (same
  // tier, strictly lower priority number: the order of equal ones is the
  // implementation's, cluster-priority-tie says so instead), each with
  // whether its selectors show it; computed once per policy.
  std::vector<std::pair<ClusterPolicyId, bool>> Covering(ClusterPolicyId id) const {
    const ClusterPolicyRec& p = Policy(id);
    std::vector<std::pair<ClusterPolicyId, bool>> out;
    const std::optional<PodShape> shape = SubjectShape(p.spec);
    for (const ClusterPolicyId other_id : order_) {
      const ClusterPolicyRec& other = Policy(other_id);
      if (other_id == id || other.tier != p.tier || other.priority >= p.priority) continue;
      const std::optional<PodShape> other_shape = SubjectShape(other.spec);
      const bool by_selectors = shape && other_shape && ShapeContains(*other_shape, *shape);
      const bool by_pods = !p.subjects.none() && p.subjects.IsSubsetOf(other.subjects);
      if (by_selectors || by_pods) out.emplace_back(other_id, by_selectors);
    }
    return out;
  }

  void Shadowed(ClusterPolicyId id, Direction dir, size_t r,
                const std::vector<std::pair<ClusterPolicyId, bool>>& covering) {
    const ClusterPolicyRec& p = Policy(id);
    const ClusterRuleRec& rule = p.rules(dir)[r];
    if (rule.peers.empty()) return;
    std::vector<Earlier> earlier;
    for (const auto& [other_id, by_selectors] : covering) {
      for (size_t o = 0; o < Policy(other_id).rules(dir).size(); ++o)
        earlier.push_back({other_id, o, by_selectors});
    }
    for (size_t o = 0; o < r; ++o) earlier.push_back({id, o, true});
    if (earlier.empty()) return;
    std::vector<bool> used(earlier.size(), false);
    bool by_pods = false;
    if (!Covered(rule, earlier, dir, false, used)) {
      used.assign(earlier.size(), false);
      if (!Covered(rule, earlier, dir, true, used)) return;
      by_pods = true;
    }
    std::vector<std::string> rules;
    for (size_t i = 0; i < earlier.size(); ++i) {
      if (used[i]) rules.push_back(DescribeRule(earlier[i].policy, dir, earlier[i].rule));
    }
    const size_t listed = rules.size();
    if (rules.size() > 3) {
      const size_t more = rules.size() - 3;
      rules.resize(3);
      rules.push_back(std::to_string(more) + " more");
    }
    Add(id, "cluster-rule-shadowed", RulePath(dir, r), RuleName(p, dir, r),
        "its " + ActionName(rule.action) +
            " never applies: every flow it could match is decided or passed before it by " +
            Join(rules, ", ") +
            (by_pods ? " (for the pods in the input: the selectors alone do not show it)" : "") +
            "; remove it, or move it before " + (listed == 1 ? "that rule" : "them"));
  }

  const ClusterRuleRec& RuleOf(const Earlier& e, Direction dir) const {
    return Policy(e.policy).rules(dir)[e.rule];
  }

  // Every (peer, protocol entry) pair of `narrow` is matched by the union of
  // the earlier rules whose ports cover that entry. `use_pods`: earlier rules
  // whose subject covers by the pods only count, and selector peers may be
  // compared by the pods they match. Marks the earlier rules the proof used.
  bool Covered(const ClusterRuleRec& narrow, const std::vector<Earlier>& earlier, Direction dir,
               bool use_pods, std::vector<bool>& used) const {
    std::vector<const PortRule*> entries;  // nullptr: every protocol and port
    if (narrow.ports.empty()) entries.push_back(nullptr);
    for (const PortRule& q : narrow.ports) entries.push_back(&q);
    for (const PortRule* q : entries) {
      std::vector<size_t> candidates;
      for (size_t i = 0; i < earlier.size(); ++i) {
        if (!use_pods && !earlier[i].by_selectors) continue;
        const ClusterRuleRec& w = RuleOf(earlier[i], dir);
        if (q == nullptr ? w.ports.empty() : PortsCover(w.ports, *q)) candidates.push_back(i);
      }
      for (const ClusterPeerRec& peer : narrow.peers) {
        if (!PeerCovered(peer, earlier, candidates, dir, use_pods, used)) return false;
      }
    }
    return true;
  }

  bool PeerCovered(const ClusterPeerRec& n, const std::vector<Earlier>& earlier,
                   const std::vector<size_t>& candidates, Direction dir, bool use_pods,
                   std::vector<bool>& used) const {
    // Calls fn(index, peer) for every peer of the kind of `n` of every candidate.
    const auto each = [&](auto&& fn) {
      for (const size_t i : candidates) {
        for (const ClusterPeerRec& w : RuleOf(earlier[i], dir).peers) {
          if (w.kind == n.kind) fn(i, w);
        }
      }
    };
    bool covered = false;
    switch (n.kind) {
      case Kind::kSelector: {
        const PodShape shape = PeerShape(n.selector);
        each([&](size_t i, const ClusterPeerRec& w) {
          if (!covered && ShapeContains(PeerShape(w.selector), shape)) covered = used[i] = true;
        });
        if (covered || !use_pods || n.selector.classes.none()) return covered;
        DynamicBitset all;
        each([&](size_t, const ClusterPeerRec& w) { all |= w.selector.classes; });
        if (!n.selector.classes.IsSubsetOf(all)) return false;
        each([&](size_t i, const ClusterPeerRec& w) {
          if (Intersect(w.selector.classes, n.selector.classes)) used[i] = true;
        });
        return true;
      }
      case Kind::kNetworks: {
        std::vector<IpPrefix> cover;
        each([&](size_t, const ClusterPeerRec& w) {
          cover.insert(cover.end(), w.networks.begin(), w.networks.end());
        });
        if (n.networks.empty()) return false;
        for (const IpPrefix& net : n.networks) {
          if (!PrefixCovered(net, cover)) return false;
        }
        each([&](size_t i, const ClusterPeerRec& w) {
          for (const IpPrefix& a : w.networks) {
            for (const IpPrefix& b : n.networks) used[i] = used[i] || a.Overlaps(b);
          }
        });
        return true;
      }
      case Kind::kNodes:
        each([&](size_t i, const ClusterPeerRec& w) {
          if (!covered && SelectorContains(w.nodes, n.nodes)) covered = used[i] = true;
        });
        return covered;
      case Kind::kDomainNames: {
        if (n.domain_names.empty()) return false;
        for (const std::string& name : n.domain_names) {
          bool one = false;
          each([&](size_t i, const ClusterPeerRec& w) {
            for (const std::string& pattern : w.domain_names) {
              if (!one && DomainCovers(pattern, name)) one = used[i] = true;
            }
          });
          if (!one) return false;
        }
        return true;
      }
    }
    return false;
  }

  // ---- cluster-pass-to-default ----

  void PassToDefault(ClusterPolicyId id, Direction dir, size_t r) {
    const ClusterPolicyRec& p = Policy(id);
    const ClusterRuleRec& rule = p.rules(dir)[r];
    if (rule.action != api::RuleAction::kPass) return;
    if (p.tier == api::Tier::kBaseline) {
      Add(id, "cluster-pass-to-default", RulePath(dir, r), RuleName(p, dir, r),
          "a Pass in the Baseline tier skips the rest of the tier, and below it there is only the default, "
          "which allows: it behaves as Accept (write Accept to say so, or Deny if that was meant)");
      return;
    }
    // Admin: for which subject pods does nothing below decide?
    DynamicBitset open;
    p.subjects.ForEach([&](size_t c) {
      if (!s_.IsLiveClass(static_cast<ClassId>(c))) return;
      const PodClass& cls = s_.classes[c];
      if (!Isolating(cls, dir).empty()) return;  // NetworkPolicies decide
      for (const ClusterPolicyId b : cls.cluster_policies[static_cast<size_t>(api::Tier::kBaseline)]) {
        for (const ClusterRuleRec& below : Policy(b).rules(dir)) {
          if (!Disjoint(rule, below)) return;  // a Baseline rule may decide
        }
      }
      open.set(c);
    });
    if (open.none()) return;
    const auto [n, names] = Pods(open);
    const size_t total = Pods(p.subjects).first;
    Add(id, "cluster-pass-to-default", RulePath(dir, r), RuleName(p, dir, r),
        "nothing below it decides for " + (n == total ? "its " : std::to_string(n) + " of its ") +
            CountPods(total) + " (" + names + "): no NetworkPolicy selects " + (n == 1 ? "it" : "them") +
            " for " + DirName(dir) +
            " and no Baseline rule matches what it passes, so the Pass allows, as Accept would (write Accept "
            "to say so, or add the NetworkPolicy or Baseline rule it defers to)");
  }

  // No flow matches both rules: their ports, or every pair of their peers, are
  // disjoint (selector peers: for the pods given).
  bool Disjoint(const ClusterRuleRec& a, const ClusterRuleRec& b) const {
    if (PortsDisjoint(a.ports, b.ports)) return true;
    for (const ClusterPeerRec& x : a.peers) {
      for (const ClusterPeerRec& y : b.peers) {
        if (!PeersDisjoint(x, y)) return false;
      }
    }
    return true;
  }

  bool PeersDisjoint(const ClusterPeerRec& x, const ClusterPeerRec& y) const {
    if (x.kind == Kind::kSelector && y.kind == Kind::kSelector) {
      return !Intersect(x.selector.classes, y.selector.classes);
    }
    if (x.kind == Kind::kNetworks && y.kind == Kind::kNetworks) {
      for (const IpPrefix& a : x.networks) {
        for (const IpPrefix& b : y.networks) {
          if (a.Overlaps(b)) return false;
        }
      }
      return true;
    }
    // A networks peer matches pods by address.
    if ((x.kind == Kind::kSelector && y.kind == Kind::kNetworks) ||
        (x.kind == Kind::kNetworks && y.kind == Kind::kSelector)) {
      const ClusterPeerRec& sel = x.kind == Kind::kSelector ? x : y;
      const ClusterPeerRec& net = x.kind == Kind::kNetworks ? x : y;
      bool overlap = false;
      sel.selector.classes.ForEach([&](size_t c) {
        if (!s_.IsLiveClass(static_cast<ClassId>(c))) return;
        for (const PodId id : s_.classes[c].pods) {
          for (const IpAddress& ip : s_.pods[id].pod.ips) {
            for (const IpPrefix& prefix : net.networks) overlap = overlap || prefix.Contains(ip);
          }
        }
      });
      return !overlap;
    }
    return false;  // nodes, domain names: not shown
  }

  // ---- domain-names-unenforced, domain-wildcard-apex ----

  void DomainNames(ClusterPolicyId id, Direction dir, size_t r) {
    const ClusterPolicyRec& p = Policy(id);
    const ClusterRuleRec& rule = p.rules(dir)[r];
    std::set<std::string> names;  // every name of the rule, for the apex check
    for (const ClusterPeerRec& peer : rule.peers) {
      for (const std::string& name : peer.domain_names) names.insert(NormalDomain(name));
    }
    for (size_t i = 0; i < rule.peers.size(); ++i) {
      const ClusterPeerRec& peer = rule.peers[i];
      if (peer.kind != Kind::kDomainNames) continue;
      const std::string field = PeerPath(dir, r, i) + ".domainNames";
      for (const std::string& pattern : peer.domain_names) {
        const std::string normal = NormalDomain(pattern);
        if (!normal.starts_with("*.") || names.count(normal.substr(2)) != 0) continue;
        Add(id, "domain-wildcard-apex", field, RuleName(p, dir, r),
            "\"" + pattern + "\" matches the names below " + normal.substr(2) + ", not " + normal.substr(2) +
                " itself (docs/SEMANTICS.md §21); add " + normal.substr(2) + " if it is meant too");
      }
      Add(id, "domain-names-unenforced", field, RuleName(p, dir, r), DomainMessage(id, dir, r));
    }
  }

  std::string DomainMessage(ClusterPolicyId id, Direction dir, size_t r) const {
    const ClusterPolicyRec& p = Policy(id);
    const ClusterRuleRec& rule = p.rules(dir)[r];
    if (rule.action != api::RuleAction::kAccept) {
      return "a " + ActionName(rule.action) +
             " for domain names cannot be enforced: netpol's dataplane does not match names, so it would be "
             "enforced more loosely than written; `netpol enforce` refuses such input, and netpold programs "
             "the rest and logs an error (connections to these names are left to the rules after it); the "
             "API supports domainNames in Accept rules only";
    }
    // What after this rule could deny egress to these names, for some subject pod.
    std::string denier;
    const auto deny_in = [&](ClusterPolicyId pid, size_t from) {
      const auto& rules = Policy(pid).rules(dir);
      for (size_t o = from; o < rules.size() && denier.empty(); ++o) {
        if (rules[o].action == api::RuleAction::kDeny) denier = DescribeRule(pid, dir, o);
      }
    };
    deny_in(id, r + 1);
    p.subjects.ForEach([&](size_t c) {
      if (!s_.IsLiveClass(static_cast<ClassId>(c))) return;
      const PodClass& cls = s_.classes[c];
      const std::vector<ClusterPolicyId>& tier = cls.cluster_policies[static_cast<size_t>(p.tier)];
      for (auto it = std::find(tier.begin(), tier.end(), id); it != tier.end(); ++it) {
        if (*it != id) deny_in(*it, 0);
      }
      if (p.tier == api::Tier::kBaseline) return;  // below Baseline: the default
      if (!Isolating(cls, dir).empty() && denier.empty()) {
        denier = "the NetworkPolicies isolating " + s_.pods[cls.pods.front()].pod.FullName() + " for " +
                 DirName(dir) + " (" + engine_.PolicyName(Isolating(cls, dir).front()) + ")";
      }
      for (const ClusterPolicyId b : cls.cluster_policies[static_cast<size_t>(api::Tier::kBaseline)])
        deny_in(b, 0);
    });
    if (denier.empty() && !p.subjects.none()) {
      return "has no effect: nothing after it can deny " + DirName(dir) + " for its " +
             CountPods(Pods(p.subjects).first) +
             " (no later Deny rule, no NetworkPolicy isolating them, no Baseline Deny), so connections to "
             "these names are allowed anyway (netpol's dataplane does not match domain names either)";
    }
    return "not enforced: netpol's dataplane does not match domain names (docs/SEMANTICS.md §21), so on the "
           "node a connection to them is judged by what comes after this rule" +
           (denier.empty() ? std::string() : ", such as " + denier + ", which may deny it") +
           ": `netpol check` accepts it by name, the node may not; if the names' addresses are stable, "
           "accept them with a networks peer";
  }

  // egress-blocks-dns for ClusterNetworkPolicies: a Deny rule that decides the
  // egress of some pod to the cluster DNS pods on 53/UDP or 53/TCP (judged with
  // the engine, per family, like the NetworkPolicy check). Without DNS pods in
  // the input there is no flow to judge, and no finding.
  void EgressDeniesDns() {
    const std::vector<PodId> dns = ClusterDnsPods(engine_);
    if (dns.empty()) return;
    struct Denied {
      std::set<api::Protocol> protocols;
      std::vector<PodId> pods;
    };
    std::map<std::pair<ClusterPolicyId, int>, Denied> by_rule;  // the deciding Deny rule
    for (const PodId pod : engine_.Pods()) {
      for (const api::Protocol proto : {api::Protocol::kUDP, api::Protocol::kTCP}) {
        std::optional<ClusterRuleRef> denier;
        for (size_t i = 0; i < dns.size() && !denier; ++i) {
          for (const FamilyFlow& f :
               FamilyFlows(engine_, Endpoint::OfPod(pod), Endpoint::OfPod(dns[i]), proto, uint16_t{53})) {
            const DirectionVerdict v = engine_.Evaluate(f.flow).egress;
            if (v.reason == Reason::kClusterDeny && v.cluster_rule) {
              denier = v.cluster_rule;
              break;
            }
          }
        }
        if (!denier) continue;
        Denied& d = by_rule[{denier->policy, denier->rule}];
        d.protocols.insert(proto);
        if (d.pods.empty() || d.pods.back() != pod) d.pods.push_back(pod);
      }
    }
    for (const auto& [at, denied] : by_rule) {
      const auto [policy, rule] = at;
      const ClusterPolicyRec& p = Policy(policy);
      std::string ports;
      for (const api::Protocol proto : {api::Protocol::kUDP, api::Protocol::kTCP}) {
        if (denied.protocols.count(proto) != 0) {
          ports += (ports.empty() ? "53/" : " and 53/") + std::string(api::ProtocolName(proto));
        }
      }
      std::string pods = engine_.pod(denied.pods.front()).FullName();
      if (denied.pods.size() > 1) pods += " (+" + std::to_string(denied.pods.size() - 1) + " more)";
      Add(policy, "egress-blocks-dns", RulePath(Direction::kEgress, static_cast<size_t>(rule)),
          RuleName(p, Direction::kEgress, static_cast<size_t>(rule)),
          "denies DNS: from " + pods + ", the cluster DNS (" + engine_.pod(dns.front()).FullName() +
              (dns.size() > 1 ? " and " + std::to_string(dns.size() - 1) + " more" : std::string()) +
              ") on " + ports +
              (p.tier == api::Tier::kAdmin
                   ? "; an Admin Deny is final, no NetworkPolicy can allow it back: name lookups will fail "
                     "unless an Accept for 53 comes before it"
                   : "; no NetworkPolicy isolates these pods for egress, so the Baseline tier decides: name "
                     "lookups will fail unless an Accept for 53 comes before it or a NetworkPolicy allows "
                     "it"));
    }
  }

  const Engine& engine_;
  const State& s_;
  const std::vector<ClusterPolicyId> order_;
  std::vector<Finding> findings_;
};

}  // namespace

std::vector<Finding> LintClusterPolicies(const Engine& engine) {
  return ClusterLinter(engine).Run();
}

std::vector<PodId> ClusterDnsPods(const Engine& engine) {
  std::vector<PodId> dns;
  for (const PodId id : engine.Pods()) {
    const api::Labels& labels = engine.PodLabels(id);
    const auto app = labels.find("k8s-app");
    if (engine.pod(id).namespace_ == "kube-system" && app != labels.end() && app->second == "kube-dns") {
      dns.push_back(id);
    }
  }
  return dns;
}

}  // namespace netpol::policy::internal
