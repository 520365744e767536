#include "policy/engine.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <iterator>
#include <tuple>

#include "policy/internal/state.h"

namespace netpol::policy {

using internal::ClassId;
using internal::ClassKey;
using internal::kNoClass;
using internal::NamespaceId;
using internal::PeerRule;
using internal::PodClass;
using internal::PolicyRec;
using internal::PortRule;
using internal::RuleRec;
using internal::State;

namespace internal {

std::optional<uint16_t> PodClass::ResolveNamedPort(const std::string& name, api::Protocol protocol) const {
  for (const NamedPort& p : key.named_ports) {
    if (p.name == name) {
      if (p.protocol == protocol) return p.port;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool PortRule::Matches(api::Protocol proto, uint16_t port, const PodClass* destination) const {
  if (proto != protocol) return false;
  if (any_port) return true;
  if (name.empty()) return port >= first && port <= last;
  // A named port means the destination pod's port of that name; a destination
  // that is not a policy-managed pod has no named ports.
  if (destination == nullptr) return false;
  const std::optional<uint16_t> resolved = destination->ResolveNamedPort(name, proto);
  return resolved && *resolved == port;
}

bool PeerRule::MatchesIp(const IpAddress& ip) const {
  if (!cidr || !cidr->Contains(ip)) return false;
  return std::none_of(except.begin(), except.end(), [&](const IpPrefix& hole) { return hole.Contains(ip); });
}

}  // namespace internal

namespace {

constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

bool PeerMatchesClass(const State& s, const PeerRule& peer, const PodClass& cls) {
  if (peer.is_ip_block()) return false;
  if (peer.namespace_selector) {
    if (!peer.namespace_selector->Matches(s.namespaces[cls.key.ns].labels)) return false;
  } else if (cls.key.ns != peer.own_namespace) {
    return false;
  }
  return !peer.pod_selector || peer.pod_selector->Matches(cls.key.labels);
}

void InsertSortedByName(const State& s, std::vector<PolicyId>& list, PolicyId id) {
  const auto pos = std::lower_bound(list.begin(), list.end(), id, [&](PolicyId a, PolicyId b) {
    return s.policies[a].spec.metadata.name < s.policies[b].spec.metadata.name;
  });
  list.insert(pos, id);
}

bool SubjectMatchesClass(const State& s, const internal::ClusterPolicyRec& p, const PodClass& cls) {
  if (!p.spec.subject) return false;
  const api::ClusterSubject& subject = *p.spec.subject;
  const api::Labels& ns_labels = s.namespaces[cls.key.ns].labels;
  if (subject.namespaces) return subject.namespaces->Matches(ns_labels);
  if (subject.pods) {
    return subject.pods->namespace_selector.Matches(ns_labels) &&
           (!subject.pods->pod_selector || subject.pods->pod_selector->Matches(cls.key.labels));
  }
  return false;
}

// Evaluation order within a tier: priority, then name (docs/SEMANTICS.md §21).
void InsertByPriority(const State& s, std::vector<ClusterPolicyId>& list, ClusterPolicyId id) {
  const auto key = [&](ClusterPolicyId c) {
    return std::pair<int32_t, const std::string&>(s.cluster_policies[c].priority,
                                                  s.cluster_policies[c].spec.metadata.name);
  };
  const auto pos = std::lower_bound(list.begin(), list.end(), id,
                                    [&](ClusterPolicyId a, ClusterPolicyId b) { return key(a) < key(b); });
  list.insert(pos, id);
}

template <typename Fn>
void ForEachClusterSelector(internal::ClusterPolicyRec& p, Fn&& fn) {
  for (auto* rules : {&p.ingress_rules, &p.egress_rules}) {
    for (internal::ClusterRuleRec& rule : *rules) {
      for (internal::ClusterPeerRec& peer : rule.peers) {
        if (peer.kind == internal::ClusterPeerRec::Kind::kSelector) fn(peer.selector);
      }
    }
  }
}

// Whether a namespaceSelector peer of `p` selects a namespace with `labels`.
bool SelectsNamespace(const PolicyRec& p, const api::Labels& labels) {
  for (const auto* rules : {&p.ingress_rules, &p.egress_rules}) {
    for (const RuleRec& rule : *rules) {
      for (const PeerRule& peer : rule.peers) {
        if (peer.namespace_selector && peer.namespace_selector->Matches(labels)) return true;
      }
    }
  }
  return false;
}

void InsertSorted(std::vector<PolicyId>& list, PolicyId id) {
  const auto pos = std::lower_bound(list.begin(), list.end(), id);
  if (pos == list.end() || *pos != id) list.insert(pos, id);
}

void EraseSorted(std::vector<PolicyId>& list, PolicyId id) {
  const auto pos = std::lower_bound(list.begin(), list.end(), id);
  if (pos != list.end() && *pos == id) list.erase(pos);
}

void Erase(std::vector<PolicyId>& list, PolicyId id) {
  list.erase(std::remove(list.begin(), list.end(), id), list.end());
}

// A slot for a new record: a freed one if any, else a new one at the end. The
// slot is reset to a default record.
template <typename Id, typename Container>
Id AllocateSlot(Container& records, std::vector<Id>& free_ids) {
  Id id;
  if (!free_ids.empty()) {
    id = free_ids.back();
    free_ids.pop_back();
  } else {
    id = static_cast<Id>(records.size());
    records.emplace_back();
  }
  records[id] = {};
  return id;
}

template <typename Fn>
void ForEachPeer(PolicyRec& p, Fn&& fn) {
  for (auto* rules : {&p.ingress_rules, &p.egress_rules}) {
    for (RuleRec& rule : *rules) {
      for (PeerRule& peer : rule.peers) fn(peer);
    }
  }
}

class Mutator {
 public:
  explicit Mutator(State& s) : s_(s) {}

  State& state() { return s_; }

  static void DropViews(const PodClass& cls) {
    for (auto& view : cls.views) {
      view.built = false;
      view.entries.clear();
    }
  }
  void DropAllViews() {
    for (const PodClass& cls : s_.classes) DropViews(cls);
  }

  // DaemonSets follow the node set: re-expand them when it changed.
  void SyncDaemonSets(const std::vector<std::string>& nodes_before);

  NamespaceId EnsureNamespace(const std::string& name) {
    if (const auto it = s_.namespace_index.find(name); it != s_.namespace_index.end()) {
      return it->second;
    }
    const auto id = static_cast<NamespaceId>(s_.namespaces.size());
    internal::NamespaceRec rec;
    rec.name = name;
    rec.labels[std::string(kNamespaceNameLabel)] = name;
    s_.namespaces.push_back(std::move(rec));
    s_.namespace_index.emplace(name, id);
    RefreshSelectedBy(id);  // a selector may match the name label alone
    return id;
  }

  // The policies whose namespaceSelector peers select namespace `ns`, from scratch.
  void RefreshSelectedBy(NamespaceId ns) {
    internal::NamespaceRec& rec = s_.namespaces[ns];
    rec.selected_by.clear();
    rec.selectors = {};  // rebuilt from the new candidates when a class needs it
    for (PolicyId pid = 0; pid < s_.policies.size(); ++pid) {
      if (s_.policies[pid].live && SelectsNamespace(s_.policies[pid], rec.labels)) {
        rec.selected_by.push_back(pid);
      }
    }
  }

  void SetNamespaceLabels(NamespaceId ns, api::Labels labels, bool declared) {
    // The API server labels every namespace with its name.
    labels[std::string(kNamespaceNameLabel)] = s_.namespaces[ns].name;
    internal::NamespaceRec& rec = s_.namespaces[ns];
    rec.declared = declared;
    if (rec.labels == labels) return;
    rec.labels = std::move(labels);
    RefreshSelectedBy(ns);
    DropAllViews();
    // Only namespaceSelector peers look at namespace labels.
    const auto refresh = [&](PeerRule& peer) {
      if (!peer.namespace_selector) return;
      for (const ClassId c : rec.classes) {
        const bool matches = PeerMatchesClass(s_, peer, s_.classes[c]);
        if (peer.classes.test(c) != matches) peer.changed_at = ++s_.clock;
        peer.classes.assign(c, matches);
      }
    };
    for (PolicyRec& p : s_.policies) {
      if (p.live) ForEachPeer(p, refresh);
    }
    // ClusterNetworkPolicy subjects and peers select namespaces by label too.
    for (ClusterPolicyId cid = 0; cid < s_.cluster_policies.size(); ++cid) {
      internal::ClusterPolicyRec& p = s_.cluster_policies[cid];
      if (!p.live) continue;
      ForEachClusterSelector(p, refresh);
      for (const ClassId c : rec.classes) {
        PodClass& cls = s_.classes[c];
        const bool matches = SubjectMatchesClass(s_, p, cls);
        if (p.subjects.test(c) == matches) continue;
        p.subjects.assign(c, matches);
        auto& list = cls.cluster_policies[static_cast<size_t>(p.tier)];
        if (matches) {
          InsertByPriority(s_, list, cid);
        } else {
          Erase(list, cid);
        }
      }
    }
  }

  // The LabelHash of the first label `selector` requires, or none when it
  // requires none (null: every pod; empty; expressions only).
  static std::optional<uint64_t> RequiredLabel(const api::LabelSelector* selector) {
    if (selector == nullptr || selector->match_labels.empty()) return std::nullopt;
    const auto& [key, value] = *selector->match_labels.begin();
    return internal::LabelHash(key, value);
  }

  // Calls fn for the live classes of namespace `n` with the label `required`
  // (RequiredLabel: its hash; a class of a colliding label too), or for all
  // when there is none.
  template <typename Fn>
  void ForEachCandidateClass(NamespaceId n, std::optional<uint64_t> required, Fn&& fn) {
    const internal::NamespaceRec& rec = s_.namespaces[n];
    if (!required) {
      std::for_each(rec.classes.begin(), rec.classes.end(), fn);
      return;
    }
    const auto& index = rec.classes_by_label;
    auto it = std::lower_bound(index.begin(), index.end(), std::pair<uint64_t, ClassId>{*required, 0});
    for (; it != index.end() && it->first == *required; ++it) fn(it->second);
  }

  // A peer whose namespaceSelector selects every namespace: filed once, in
  // State::everywhere, not in each namespace's index.
  static bool Everywhere(const PeerRule& peer) {
    return peer.namespace_selector && peer.namespace_selector->empty();
  }

  // Files `ref` in `index` under the first label `selector` requires (or
  // with the unkeyed ones); with `remove`, takes policy `pid`'s refs out of
  // that list instead.
  static void File(internal::SelectorIndex& index, const api::LabelSelector* selector,
                   const internal::SelectorRef& ref, PolicyId pid, bool remove) {
    const std::optional<uint64_t> required = RequiredLabel(selector);
    std::vector<internal::SelectorRef>& list = required ? index.by_label[*required] : index.unkeyed;
    if (!remove) {
      list.push_back(ref);
      return;
    }
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const internal::SelectorRef& r) { return r.policy == pid; }),
               list.end());
  }

  // The index entry of a selector peer of policy `pid`'s rule.
  internal::SelectorRef PeerRef(PolicyId pid, Direction dir, RuleRec& rule, PeerRule& peer) const {
    const PolicyRec& p = s_.policies[pid];
    return {.rule = &rule,
            .peer = &peer,
            .policy = pid,
            .direction = dir,
            .in_force = dir == Direction::kIngress ? p.ingress : p.egress};
  }

  // Files policy `pid`'s peers that select every namespace in
  // State::everywhere; with `remove`, takes them out.
  void IndexEverywhere(PolicyId pid, bool remove = false) {
    PolicyRec& p = s_.policies[pid];
    for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
      for (RuleRec& rule : p.rules(dir)) {
        for (PeerRule& peer : rule.peers) {
          if (!Everywhere(peer)) continue;
          File(s_.everywhere, peer.pod_selector ? &*peer.pod_selector : nullptr,
               PeerRef(pid, dir, rule, peer), pid, remove);
        }
      }
    }
  }

  // Files the selectors of policy `pid` that can match a class of namespace
  // `n` (SelectorRef) in its index; with `remove`, takes them out instead.
  // Peers that select every namespace are in State::everywhere instead.
  void IndexPolicy(NamespaceId n, PolicyId pid, bool remove = false) {
    PolicyRec& p = s_.policies[pid];
    internal::SelectorIndex& index = s_.namespaces[n].selectors;
    const api::Labels& ns_labels = s_.namespaces[n].labels;
    const auto file = [&](const api::LabelSelector* selector, const internal::SelectorRef& ref) {
      File(index, selector, ref, pid, remove);
    };
    if (p.ns == n) file(&p.spec.pod_selector, {.policy = pid});
    for (const Direction dir : {Direction::kIngress, Direction::kEgress}) {
      for (RuleRec& rule : p.rules(dir)) {
        for (PeerRule& peer : rule.peers) {
          if (peer.is_ip_block() || Everywhere(peer)) continue;
          if (!remove && (peer.namespace_selector ? !peer.namespace_selector->Matches(ns_labels)
                                                  : peer.own_namespace != n)) {
            continue;
          }
          file(peer.pod_selector ? &*peer.pod_selector : nullptr, PeerRef(pid, dir, rule, peer));
        }
      }
    }
  }

  void BuildSelectorIndex(NamespaceId n) {
    internal::NamespaceRec& ns = s_.namespaces[n];
    ns.selectors = {};
    ns.selectors.built = true;
    std::vector<PolicyId> candidates;
    candidates.reserve(ns.policies.size() + ns.selected_by.size());
    std::set_union(ns.policies.begin(), ns.policies.end(), ns.selected_by.begin(), ns.selected_by.end(),
                   std::back_inserter(candidates));
    for (const PolicyId pid : candidates) IndexPolicy(n, pid);
  }

  // Whether the selector `ref` matches the new class `id` by its pod labels
  // (its namespace part matches, or it would not be in the namespace's
  // index), and if so, the class joins the policy's targets or the peer's classes.
  void MatchNewClass(const internal::SelectorRef& ref, ClassId id) {
    const api::Labels& labels = s_.classes[id].key.labels;
    if (ref.peer == nullptr) {
      PolicyRec& p = s_.policies[ref.policy];
      if (!p.spec.pod_selector.Matches(labels)) return;
      p.targets.set(id);
      PodClass& cls = s_.classes[id];
      if (p.ingress) InsertSortedByName(s_, cls.ingress_policies, ref.policy);
      if (p.egress) InsertSortedByName(s_, cls.egress_policies, ref.policy);
      return;
    }
    // The policy record is not read on this path unless views need the class:
    // at 100k pods most new classes meet ~1,600 peers that match every pod.
    PeerRule& peer = *ref.peer;
    if (peer.pod_selector && !peer.pod_selector->Matches(labels)) return;
    peer.classes.set(id);
    // The views built from this rule (at the policy's targets) gain the
    // class, if the rule is in force: the rules of a direction the policy does
    // not isolate (policyTypes) are in no view, and an entry of another
    // policy's rule with the same ports must not gain it. (The new class's own
    // views are not built yet, so the order of the visits does not matter.)
    if (!ref.in_force || !peer.in_views) return;
    const std::vector<PortRule>& ports = ref.rule->ports;
    s_.policies[ref.policy].targets.ForEach([&](size_t t) {
      internal::DirectionView& view = s_.classes[t].views[static_cast<size_t>(ref.direction)];
      for (internal::ViewEntry& entry : view.entries) {
        if (entry.ports == ports) entry.classes.set(id);
      }
    });
  }

  ClassId InternClass(ClassKey key) {
    if (const auto it = s_.class_index.find(key); it != s_.class_index.end()) return it->second;
    const ClassId id = AllocateSlot(s_.classes, s_.free_classes);
    PodClass& cls = s_.classes[id];
    cls.key = key;
    cls.changed_at = ++s_.clock;  // the id may have served a retired class
    s_.class_index.emplace(std::move(key), id);
    s_.namespaces[cls.key.ns].classes.push_back(id);
    // Its labels' hashes, each once (two labels may collide).
    std::vector<uint64_t> hashes;
    hashes.reserve(cls.key.labels.size());
    for (const auto& [label, value] : cls.key.labels) hashes.push_back(internal::LabelHash(label, value));
    std::sort(hashes.begin(), hashes.end());
    hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
    for (const uint64_t hash : hashes) {
      auto& index = s_.namespaces[cls.key.ns].classes_by_label;
      const std::pair<uint64_t, ClassId> entry{hash, id};
      index.insert(std::lower_bound(index.begin(), index.end(), entry), entry);
    }
    // Evaluate once for the new class the selectors that can match it: of
    // the policies of its namespace and those selecting its namespace, those
    // whose namespace part matches, filed under a label the class has or under
    // none (SelectorIndex).
    internal::NamespaceRec& ns = s_.namespaces[cls.key.ns];
    if (!ns.selectors.built) BuildSelectorIndex(cls.key.ns);
    const auto visit = [&](const internal::SelectorRef& ref) { MatchNewClass(ref, id); };
    for (const internal::SelectorIndex* index : {&ns.selectors, &s_.everywhere}) {
      for (const uint64_t hash : hashes) {
        const auto it = index->by_label.find(hash);
        if (it != index->by_label.end()) std::for_each(it->second.begin(), it->second.end(), visit);
      }
      std::for_each(index->unkeyed.begin(), index->unkeyed.end(), visit);
    }
    for (ClusterPolicyId cid = 0; cid < s_.cluster_policies.size(); ++cid) {
      internal::ClusterPolicyRec& p = s_.cluster_policies[cid];
      if (!p.live) continue;
      if (SubjectMatchesClass(s_, p, cls)) {
        p.subjects.set(id);
        InsertByPriority(s_, cls.cluster_policies[static_cast<size_t>(p.tier)], cid);
      }
      ForEachClusterSelector(p, [&](PeerRule& peer) {
        if (PeerMatchesClass(s_, peer, cls)) peer.classes.set(id);
      });
    }
    return id;
  }

  void RetireClass(ClassId id) {
    // The id may be reused by a new class: no view may keep its bit.
    for (const PodClass& other : s_.classes) {
      for (auto& view : other.views) {
        for (auto& entry : view.entries) entry.classes.reset(id);
      }
    }
    PodClass& cls = s_.classes[id];
    for (PolicyRec& p : s_.policies) {
      if (!p.live) continue;
      p.targets.reset(id);
      ForEachPeer(p, [&](PeerRule& peer) {
        if (!peer.classes.test(id)) return;
        peer.classes.reset(id);
        peer.changed_at = ++s_.clock;
      });
    }
    for (internal::ClusterPolicyRec& p : s_.cluster_policies) {
      if (!p.live) continue;
      p.subjects.reset(id);
      ForEachClusterSelector(p, [&](PeerRule& peer) { peer.classes.reset(id); });
    }
    internal::NamespaceRec& ns = s_.namespaces[cls.key.ns];
    ns.classes.erase(std::remove(ns.classes.begin(), ns.classes.end(), id), ns.classes.end());
    for (const auto& [label, value] : cls.key.labels) {
      auto& index = ns.classes_by_label;
      const std::pair<uint64_t, ClassId> entry{internal::LabelHash(label, value), id};
      if (const auto it = std::lower_bound(index.begin(), index.end(), entry);
          it != index.end() && *it == entry)
        index.erase(it);
    }
    s_.class_index.erase(cls.key);
    cls = PodClass{};
    s_.free_classes.push_back(id);
  }

  PodId AddPod(Pod pod, const api::Labels& labels) {
    const NamespaceId ns = EnsureNamespace(pod.namespace_);
    ClassId cls = kNoClass;
    if (!pod.host_network) {
      ClassKey key{ns, labels, {}};
      for (const api::ContainerPort& port : pod.ports) {
        // A name declared twice (in two containers) means its first declaration,
        // as for Services and probes.
        const bool seen = std::any_of(key.named_ports.begin(), key.named_ports.end(),
                                      [&](const internal::NamedPort& p) { return p.name == port.name; });
        if (!port.name.empty() && !seen) {
          key.named_ports.push_back({port.name, port.protocol, static_cast<uint16_t>(port.container_port)});
        }
      }
      std::sort(key.named_ports.begin(), key.named_ports.end());
      cls = InternClass(std::move(key));
    }
    const PodId id = AllocateSlot(s_.pods, s_.free_pods);
    s_.pods_changed_at = ++s_.clock;
    if (cls != kNoClass) {
      PodClass& c = s_.classes[cls];
      ++c.members;
      c.pods.push_back(id);
      c.changed_at = s_.clock;
    }
    s_.pod_index[{pod.namespace_, pod.name}] = id;
    for (const IpAddress& ip : pod.ips) s_.pod_by_ip[ip] = id;
    if (!pod.node.empty() && !pod.owner.starts_with("DaemonSet ")) ++s_.node_refs[pod.node];
    s_.pods[id] = {std::move(pod), cls, true};
    return id;
  }

  void RemovePod(PodId id) {
    internal::PodRec& rec = s_.pods[id];
    if (const auto it = s_.pod_index.find(std::pair{rec.pod.namespace_, rec.pod.name});
        it != s_.pod_index.end() && it->second == id) {
      s_.pod_index.erase(it);
    }
    for (const IpAddress& ip : rec.pod.ips) {
      if (const auto it = s_.pod_by_ip.find(ip); it != s_.pod_by_ip.end() && it->second == id) {
        s_.pod_by_ip.erase(it);
      }
    }
    s_.pods_changed_at = ++s_.clock;
    if (rec.cls != kNoClass) {
      PodClass& c = s_.classes[rec.cls];
      c.pods.erase(std::find(c.pods.begin(), c.pods.end(), id));
      c.changed_at = s_.clock;
      if (--c.members == 0) RetireClass(rec.cls);
    }
    if (!rec.pod.node.empty() && !rec.pod.owner.starts_with("DaemonSet ")) {
      if (const auto it = s_.node_refs.find(rec.pod.node); it != s_.node_refs.end() && --it->second == 0) {
        s_.node_refs.erase(it);
      }
    }
    rec = internal::PodRec{};
    s_.free_pods.push_back(id);
  }

  // The pods of one owner share its labels (a bare Pod's own, or a workload's
  // template's).
  void ReplaceOwner(const std::string& owner, std::vector<Pod> pods, const api::Labels& labels = {}) {
    // Add the new pods before removing the old ones so that an unchanged class
    // is not retired and rebuilt in between.
    std::vector<PodId> added;
    added.reserve(pods.size());
    for (Pod& pod : pods) added.push_back(AddPod(std::move(pod), labels));
    if (const auto it = s_.owners.find(owner); it != s_.owners.end()) {
      for (const PodId old : it->second) RemovePod(old);
      // Removing an old pod may have dropped the index entry of a same-named new one.
      for (const PodId id : added) {
        s_.pod_index[{s_.pods[id].pod.namespace_, s_.pods[id].pod.name}] = id;
        for (const IpAddress& ip : s_.pods[id].pod.ips) s_.pod_by_ip[ip] = id;
      }
    }
    if (added.empty()) {
      s_.owners.erase(owner);
    } else {
      s_.owners[owner] = std::move(added);
    }
  }

  static PortRule CompilePort(const api::NetworkPolicyPort& port) {
    PortRule rule;
    rule.protocol = port.protocol;
    if (!port.port) {
      rule.any_port = true;
    } else if (const auto* number = std::get_if<int32_t>(&*port.port)) {
      rule.first = static_cast<uint16_t>(*number);
      rule.last = static_cast<uint16_t>(port.end_port.value_or(*number));
    } else {
      rule.name = std::get<std::string>(*port.port);
    }
    return rule;
  }

  PeerRule CompilePeer(const api::NetworkPolicyPeer& peer, NamespaceId own) {
    PeerRule rule;
    rule.own_namespace = own;
    if (peer.ip_block) {
      // Validated input: both parse.
      rule.cidr = *IpPrefix::Parse(peer.ip_block->cidr);
      for (const std::string& hole : peer.ip_block->except) rule.except.push_back(*IpPrefix::Parse(hole));
      return rule;
    }
    rule.namespace_selector = peer.namespace_selector;
    rule.pod_selector = peer.pod_selector;
    return rule;
  }

  std::vector<RuleRec> CompileRules(const std::vector<api::NetworkPolicyRule>& rules, NamespaceId ns) {
    std::vector<RuleRec> out;
    for (const api::NetworkPolicyRule& rule : rules) {
      RuleRec rec;
      rec.serial = ++s_.clock;
      for (const auto& port : rule.ports) rec.ports.push_back(CompilePort(port));
      for (const auto& peer : rule.peers) rec.peers.push_back(CompilePeer(peer, ns));
      out.push_back(std::move(rec));
    }
    return out;
  }

  void AddPolicy(const api::NetworkPolicy& spec) {
    const NamespaceId ns = EnsureNamespace(spec.metadata.namespace_);
    const PolicyId id = AllocateSlot(s_.policies, s_.free_policies);
    PolicyRec& p = s_.policies[id];
    p.spec = spec;
    p.full_name = spec.metadata.namespace_ + "/" + spec.metadata.name;
    p.ns = ns;
    p.live = true;
    p.ingress = spec.AffectsIngress();
    p.egress = spec.AffectsEgress();
    p.ingress_rules = CompileRules(spec.ingress, ns);
    p.egress_rules = CompileRules(spec.egress, ns);
    s_.policy_index[{spec.metadata.namespace_, spec.metadata.name}] = id;
    InsertSorted(s_.namespaces[ns].policies, id);
    ForEachCandidateClass(ns, RequiredLabel(&spec.pod_selector), [&](ClassId c) {
      PodClass& cls = s_.classes[c];
      if (!spec.pod_selector.Matches(cls.key.labels)) return;
      p.targets.set(c);
      if (p.ingress) InsertSortedByName(s_, cls.ingress_policies, id);
      if (p.egress) InsertSortedByName(s_, cls.egress_policies, id);
      DropViews(cls);
    });
    // Per peer: the namespaces it admits (a namespaceSelector requiring the
    // name label admits at most that one), and of their classes, those with
    // the label its pod selector requires.
    std::vector<bool> selects(s_.namespaces.size());  // some namespaceSelector peer selects n
    ForEachPeer(p, [&](PeerRule& peer) {
      if (peer.is_ip_block()) return;
      const api::LabelSelector* pods = peer.pod_selector ? &*peer.pod_selector : nullptr;
      const std::optional<uint64_t> required = RequiredLabel(pods);
      const auto match = [&](NamespaceId n) {
        ForEachCandidateClass(n, required, [&](ClassId c) {
          if (pods == nullptr || pods->Matches(s_.classes[c].key.labels)) peer.classes.set(c);
        });
      };
      if (!peer.namespace_selector) {
        match(peer.own_namespace);
        return;
      }
      const auto admit = [&](NamespaceId n) {
        if (!peer.namespace_selector->Matches(s_.namespaces[n].labels)) return;
        selects[n] = true;
        match(n);
      };
      const api::Labels& required_ns = peer.namespace_selector->match_labels;
      if (const auto name = required_ns.find(kNamespaceNameLabel); name != required_ns.end()) {
        // Every namespace carries its name label (EnsureNamespace, SetNamespaceLabels).
        if (const auto it = s_.namespace_index.find(name->second); it != s_.namespace_index.end()) {
          admit(it->second);
        }
        return;
      }
      for (NamespaceId n = 0; n < s_.namespaces.size(); ++n) admit(n);
    });
    for (NamespaceId n = 0; n < s_.namespaces.size(); ++n) {
      if (selects[n]) InsertSorted(s_.namespaces[n].selected_by, id);
      if ((selects[n] || n == ns) && s_.namespaces[n].selectors.built) IndexPolicy(n, id);
    }
    IndexEverywhere(id);
  }

  bool RemovePolicy(std::string_view ns, std::string_view name) {
    const auto it = s_.policy_index.find(std::pair{std::string(ns), std::string(name)});
    if (it == s_.policy_index.end()) return false;
    const PolicyId id = it->second;
    PolicyRec& p = s_.policies[id];
    p.targets.ForEach([&](size_t c) {
      Erase(s_.classes[c].ingress_policies, id);
      Erase(s_.classes[c].egress_policies, id);
      DropViews(s_.classes[c]);
    });
    s_.policy_index.erase(it);
    for (NamespaceId n = 0; n < s_.namespaces.size(); ++n) {
      std::vector<PolicyId>& selected_by = s_.namespaces[n].selected_by;
      const bool candidate = n == p.ns || std::binary_search(selected_by.begin(), selected_by.end(), id);
      if (candidate && s_.namespaces[n].selectors.built) IndexPolicy(n, id, /*remove=*/true);
      EraseSorted(selected_by, id);
    }
    IndexEverywhere(id, /*remove=*/true);
    EraseSorted(s_.namespaces[p.ns].policies, id);
    p = PolicyRec{};
    s_.free_policies.push_back(id);
    return true;
  }

  static internal::ClusterRuleRec CompileClusterRule(const api::ClusterRule& rule) {
    internal::ClusterRuleRec rec;
    rec.action = rule.action.value_or(api::RuleAction::kDeny);
    if (rule.protocols) {
      for (size_t i = 0; i < rule.protocols->size(); ++i) {
        const api::ClusterProtocol& protocol = (*rule.protocols)[i];
        const auto add = [&](api::Protocol proto, const api::ClusterProtocolMatch& match) {
          PortRule port;
          port.protocol = proto;
          if (const auto& p = match.destination_port; p && p->number) {
            port.first = port.last = static_cast<uint16_t>(*p->number);
          } else if (p && p->range) {
            port.first = static_cast<uint16_t>(p->range->start);
            port.last = static_cast<uint16_t>(p->range->end);
          } else {
            port.any_port = true;
          }
          rec.ports.push_back(std::move(port));
          rec.port_protocols.push_back(static_cast<int>(i));
        };
        if (protocol.tcp) add(api::Protocol::kTCP, *protocol.tcp);
        if (protocol.udp) add(api::Protocol::kUDP, *protocol.udp);
        if (protocol.sctp) add(api::Protocol::kSCTP, *protocol.sctp);
        if (protocol.destination_named_port) {
          // A named port carries the protocol its container port declares.
          for (const auto proto : {api::Protocol::kTCP, api::Protocol::kUDP, api::Protocol::kSCTP}) {
            PortRule port;
            port.protocol = proto;
            port.name = *protocol.destination_named_port;
            rec.ports.push_back(std::move(port));
            rec.port_protocols.push_back(static_cast<int>(i));
          }
        }
      }
    }
    if (rule.peers) {
      for (const api::ClusterPeer& peer : *rule.peers) {
        internal::ClusterPeerRec p;
        using Kind = internal::ClusterPeerRec::Kind;
        if (peer.namespaces) {
          p.selector.namespace_selector = *peer.namespaces;
        } else if (peer.pods) {
          p.selector.namespace_selector = peer.pods->namespace_selector;
          p.selector.pod_selector = peer.pods->pod_selector;
        } else if (peer.nodes) {
          p.kind = Kind::kNodes;
          p.nodes = *peer.nodes;
        } else if (peer.networks) {
          p.kind = Kind::kNetworks;
          for (const std::string& cidr : *peer.networks) {
            if (Result<IpPrefix> prefix = IpPrefix::Parse(cidr)) p.networks.push_back(*prefix);
          }
        } else if (peer.domain_names) {
          p.kind = Kind::kDomainNames;
          p.domain_names = *peer.domain_names;
        }
        rec.peers.push_back(std::move(p));
      }
    }
    return rec;
  }

  void AddClusterPolicy(const api::ClusterNetworkPolicy& spec) {
    const ClusterPolicyId id = AllocateSlot(s_.cluster_policies, s_.free_cluster_policies);
    internal::ClusterPolicyRec& p = s_.cluster_policies[id];
    p.spec = spec;
    p.live = true;
    p.tier = spec.tier.value_or(api::Tier::kAdmin);
    p.priority = spec.priority.value_or(0);
    p.full_name = (p.tier == api::Tier::kAdmin ? "admin/" : "baseline/") + spec.metadata.name;
    for (const api::ClusterRule& rule : spec.ingress) p.ingress_rules.push_back(CompileClusterRule(rule));
    for (const api::ClusterRule& rule : spec.egress) p.egress_rules.push_back(CompileClusterRule(rule));
    s_.cluster_policy_index[spec.metadata.name] = id;
    for (const auto& entry : s_.class_index) {
      const auto c = entry.second;  // a plain variable: clang 14 cannot capture a structured binding
      PodClass& cls = s_.classes[c];
      if (SubjectMatchesClass(s_, p, cls)) {
        p.subjects.set(c);
        InsertByPriority(s_, cls.cluster_policies[static_cast<size_t>(p.tier)], id);
      }
      ForEachClusterSelector(p, [&](PeerRule& peer) {
        if (PeerMatchesClass(s_, peer, cls)) peer.classes.set(c);
      });
    }
  }

  bool RemoveClusterPolicy(std::string_view name) {
    const auto it = s_.cluster_policy_index.find(name);
    if (it == s_.cluster_policy_index.end()) return false;
    const ClusterPolicyId id = it->second;
    internal::ClusterPolicyRec& p = s_.cluster_policies[id];
    p.subjects.ForEach(
        [&](size_t c) { Erase(s_.classes[c].cluster_policies[static_cast<size_t>(p.tier)], id); });
    s_.cluster_policy_index.erase(it);
    p = internal::ClusterPolicyRec{};
    s_.free_cluster_policies.push_back(id);
    return true;
  }

  bool RemoveNode(std::string_view name) {
    const auto it = s_.nodes.find(name);
    if (it == s_.nodes.end()) return false;
    for (const IpAddress& ip : it->second.ips) {
      if (const auto at = s_.node_by_ip.find(ip); at != s_.node_by_ip.end() && at->second == name) {
        s_.node_by_ip.erase(at);
      }
    }
    s_.nodes.erase(it);
    return true;
  }

  void ApplyNode(const api::Node& node) {
    RemoveNode(node.metadata.name);
    internal::NodeRec rec;
    rec.labels = node.metadata.labels;
    for (const api::NodeAddress& address : node.addresses) {
      if (Result<IpAddress> ip = IpAddress::Parse(address.address)) {
        rec.ips.push_back(*ip);
        s_.node_by_ip[*ip] = node.metadata.name;
      }
    }
    s_.nodes[node.metadata.name] = std::move(rec);
  }

 private:
  State& s_;
};

std::vector<api::ContainerPort> PortsOf(const api::PodSpec& spec) {
  std::vector<api::ContainerPort> ports;
  for (const auto& container : spec.containers) {
    ports.insert(ports.end(), container.ports.begin(), container.ports.end());
  }
  return ports;
}

std::string OwnerKey(std::string_view kind, std::string_view ns, std::string_view name) {
  return std::string(kind) + " " + std::string(ns) + "/" + std::string(name);
}

// The pods a workload stands for: replicas pods named <name>-0, -1, ...; for a
// DaemonSet one per known node (each on its node), or one when no node is known.
std::vector<Pod> ExpandWorkload(const State& s, const api::Workload& w, const std::string& owner) {
  std::vector<std::string> nodes;
  if (w.kind == api::WorkloadKind::kDaemonSet) {
    for (const auto& [node, refs] : s.node_refs) nodes.push_back(node);
  }
  const size_t count = w.kind == api::WorkloadKind::kDaemonSet ? std::max<size_t>(nodes.size(), 1)
                                                               : static_cast<size_t>(std::max(w.replicas, 0));
  std::vector<Pod> pods;
  for (size_t i = 0; i < count; ++i) {
    Pod pod;
    pod.namespace_ = w.metadata.namespace_;
    pod.name = w.metadata.name + "-" + std::to_string(i);
    pod.node = i < nodes.size() ? nodes[i] : w.pod_template.spec.node_name;
    pod.host_network = w.pod_template.spec.host_network;
    pod.ports = PortsOf(w.pod_template.spec);
    pod.owner = owner;
    pods.push_back(std::move(pod));
  }
  return pods;
}

void Mutator::SyncDaemonSets(const std::vector<std::string>& nodes_before) {
  std::vector<std::string> nodes_now;
  for (const auto& [node, refs] : s_.node_refs) nodes_now.push_back(node);
  if (nodes_now == nodes_before) return;
  for (const auto& [owner, ds] : s_.daemonsets) {
    ReplaceOwner(owner, ExpandWorkload(s_, ds, owner), ds.pod_template.labels);
  }
}

std::vector<std::string> KnownNodes(const State& s) {
  std::vector<std::string> nodes;
  for (const auto& [node, refs] : s.node_refs) nodes.push_back(node);
  return nodes;
}

// ---- verdicts ----------------------------------------------------------------

struct Side {
  const Pod* pod = nullptr;       // policy-managed pod at this end, if any
  const PodClass* cls = nullptr;  // its class (null for hostNetwork and non-pods)
  ClassId class_id = kNoClass;
  std::string_view node;  // node of a pod, or the node endpoint
  const IpAddress* ip = nullptr;
  bool is_node = false;     // a node endpoint or a hostNetwork pod (the node's own traffic)
  std::string_view domain;  // the DNS name connected to, if known
};

Side Resolve(const State& s, const Endpoint& e) {
  Side side;
  if (e.ip) side.ip = &*e.ip;
  side.domain = e.domain;
  switch (e.kind) {
    case Endpoint::Kind::kPod: {
      const internal::PodRec& rec = s.pods[e.pod];
      side.pod = &rec.pod;
      side.node = rec.pod.node;
      side.class_id = rec.cls;
      if (rec.cls != kNoClass) side.cls = &s.classes[rec.cls];
      if (side.ip == nullptr && !rec.pod.ips.empty()) side.ip = &rec.pod.ips.front();
      side.is_node = rec.pod.host_network;
      break;
    }
    case Endpoint::Kind::kNode:
      side.node = e.node;
      side.is_node = true;
      break;
    case Endpoint::Kind::kExternal:
      break;
  }
  return side;
}

// Is `peer_side` matched by `peer`?
bool PeerMatches(const PeerRule& peer, const Side& peer_side) {
  if (peer.is_ip_block()) return peer_side.ip != nullptr && peer.MatchesIp(*peer_side.ip);
  return peer_side.class_id != kNoClass && peer.classes.test(peer_side.class_id);
}

// ---- ClusterNetworkPolicy tiers (docs/SEMANTICS.md §21) ----------------------

// "*.example.com" matches names with one or more labels before example.com;
// other patterns match the name exactly. Case and a final dot do not matter.
bool DomainMatches(std::string_view pattern, std::string_view name) {
  const auto trim = [](std::string_view v) { return v.ends_with('.') ? v.substr(0, v.size() - 1) : v; };
  const auto equal = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  pattern = trim(pattern);
  name = trim(name);
  if (!pattern.starts_with("*.")) return equal(pattern, name);
  const std::string_view suffix = pattern.substr(1);  // ".example.com"
  return name.size() > suffix.size() && equal(name.substr(name.size() - suffix.size()), suffix);
}

// The node at the other end, if it is one: a node endpoint or hostNetwork pod
// (by its node's name; a node without a Node object has no labels), or an
// address some Node lists.
// Null when the other end is no node. A pointer, not a copy: this runs for
// every nodes peer of every flow judged.
const api::Labels* NodeLabels(const State& s, const Side& other) {
  static const api::Labels kNone;
  if (other.is_node) {
    if (const auto it = s.nodes.find(other.node); it != s.nodes.end()) return &it->second.labels;
    return &kNone;
  }
  if (other.ip == nullptr) return nullptr;
  const auto it = s.node_by_ip.find(*other.ip);
  if (it == s.node_by_ip.end()) return nullptr;
  return &s.nodes.find(it->second)->second.labels;
}

bool ClusterPeerMatches(const State& s, const internal::ClusterPeerRec& peer, const Side& other) {
  using Kind = internal::ClusterPeerRec::Kind;
  switch (peer.kind) {
    case Kind::kSelector:
      return other.class_id != kNoClass && peer.selector.classes.test(other.class_id);
    case Kind::kNetworks:
      return other.ip != nullptr && std::any_of(peer.networks.begin(), peer.networks.end(),
                                                [&](const IpPrefix& n) { return n.Contains(*other.ip); });
    case Kind::kNodes: {
      const api::Labels* labels = NodeLabels(s, other);
      return labels != nullptr && peer.nodes.Matches(*labels);
    }
    case Kind::kDomainNames:
      return !other.domain.empty() &&
             std::any_of(peer.domain_names.begin(), peer.domain_names.end(),
                         [&](const std::string& pattern) { return DomainMatches(pattern, other.domain); });
  }
  return false;
}

// The first rule of a tier's policies (`list`, in evaluation order) that
// matches the flow, if any.
std::optional<ClusterRuleRef> FirstClusterMatch(const State& s, const std::vector<ClusterPolicyId>& list,
                                                Direction dir, const Side& self, const Side& other,
                                                api::Protocol proto, uint16_t port) {
  const PodClass* destination = dir == Direction::kIngress ? self.cls : other.cls;
  for (const ClusterPolicyId cid : list) {
    const internal::ClusterPolicyRec& p = s.cluster_policies[cid];
    const std::vector<internal::ClusterRuleRec>& rules = p.rules(dir);
    for (size_t r = 0; r < rules.size(); ++r) {
      const internal::ClusterRuleRec& rule = rules[r];
      int protocol = -1;
      if (!rule.ports.empty()) {
        for (size_t i = 0; i < rule.ports.size() && protocol < 0; ++i) {
          if (rule.ports[i].Matches(proto, port, destination)) protocol = rule.port_protocols[i];
        }
        if (protocol < 0) continue;
      }
      for (size_t i = 0; i < rule.peers.size(); ++i) {
        if (!ClusterPeerMatches(s, rule.peers[i], other)) continue;
        return ClusterRuleRef{
            cid, p.tier, p.priority, static_cast<int>(r), rule.action, static_cast<int>(i), protocol};
      }
    }
  }
  return std::nullopt;
}

bool HasClusterPolicies(const PodClass& cls) {
  return !cls.cluster_policies[0].empty() || !cls.cluster_policies[1].empty();
}

DirectionVerdict Judge(const State& s, Direction dir, const Side& self, const Side& other,
                       api::Protocol proto, uint16_t port);

// The flattened rules isolating `cls` in `dir`, rebuilt if stale.
const internal::DirectionView& View(const State& s, const PodClass& cls, Direction dir) {
  internal::DirectionView& view = cls.views[static_cast<size_t>(dir)];
  if (view.built) return view;
  view.entries.clear();
  const std::vector<PolicyId>& isolating =
      dir == Direction::kIngress ? cls.ingress_policies : cls.egress_policies;
  for (const PolicyId pid : isolating) {
    for (const RuleRec& rule : s.policies[pid].rules(dir)) {
      auto entry = std::find_if(view.entries.begin(), view.entries.end(),
                                [&](const internal::ViewEntry& e) { return e.ports == rule.ports; });
      if (entry == view.entries.end()) {
        view.entries.push_back({rule.ports, false, {}, {}});
        entry = std::prev(view.entries.end());
      }
      entry->any_peer = entry->any_peer || rule.peers.empty();
      for (const PeerRule& peer : rule.peers) {
        peer.in_views = true;
        if (peer.is_ip_block()) {
          entry->blocks.push_back(&peer);
        } else {
          entry->classes |= peer.classes;
        }
      }
    }
  }
  view.built = true;
  return view;
}

// The verdict fast path: the same answer as Judge, from the flattened view.
bool Allows(const State& s, Direction dir, const Side& self, const Side& other, api::Protocol proto,
            uint16_t port) {
  if (self.cls == nullptr) return true;  // not a policy-managed pod
  if (dir == Direction::kIngress && (other.pod == nullptr || other.pod->host_network) &&
      !other.node.empty() && other.node == self.node) {
    return true;  // own node
  }
  // Tiers: the explained path (ClusterNetworkPolicies are few per pod).
  if (HasClusterPolicies(*self.cls)) return Judge(s, dir, self, other, proto, port).allowed();
  const std::vector<PolicyId>& isolating =
      dir == Direction::kIngress ? self.cls->ingress_policies : self.cls->egress_policies;
  if (isolating.empty()) return true;
  const PodClass* destination = dir == Direction::kIngress ? self.cls : other.cls;
  for (const internal::ViewEntry& entry : View(s, *self.cls, dir).entries) {
    if (!entry.ports.empty() && std::none_of(entry.ports.begin(), entry.ports.end(), [&](const PortRule& p) {
          return p.Matches(proto, port, destination);
        })) {
      continue;
    }
    if (entry.any_peer) return true;
    if (other.class_id != kNoClass && entry.classes.test(other.class_id)) return true;
    if (other.ip != nullptr) {
      for (const PeerRule* block : entry.blocks) {
        if (block->MatchesIp(*other.ip)) return true;
      }
    }
  }
  return false;
}

// Judges one direction at `self` (the isolated side) against `other`, with the
// explanation: the reference path, rule by rule (Allows is the fast one). For
// ingress the named-port destination is `self`, for egress it is `other`.
DirectionVerdict Judge(const State& s, Direction dir, const Side& self, const Side& other,
                       api::Protocol proto, uint16_t port) {
  DirectionVerdict v;
  if (self.cls == nullptr) {
    v.reason = Reason::kNotPolicyManaged;
    return v;
  }
  // A pod's own node may always connect to it (kubelet probes). Ingress only: a
  // pod's connections to a node are judged by its egress (docs/SEMANTICS.md §10).
  if (dir == Direction::kIngress && (other.pod == nullptr || other.pod->host_network)) {
    if (!other.node.empty() && other.node == self.node) {
      v.reason = Reason::kOwnNode;
      return v;
    }
  }
  // A decision of a tier's rule, or a Pass noted and the tier left.
  const auto decided = [&](api::Tier tier) {
    const std::optional<ClusterRuleRef> match = FirstClusterMatch(
        s, self.cls->cluster_policies[static_cast<size_t>(tier)], dir, self, other, proto, port);
    if (!match) return false;
    if (match->action == api::RuleAction::kPass) {
      v.passed.push_back(*match);
      return false;
    }
    v.reason = match->action == api::RuleAction::kAccept ? Reason::kClusterAccept : Reason::kClusterDeny;
    v.cluster_rule = match;
    return true;
  };
  if (decided(api::Tier::kAdmin)) return v;
  const std::vector<PolicyId>& isolating =
      dir == Direction::kIngress ? self.cls->ingress_policies : self.cls->egress_policies;
  if (isolating.empty()) {
    // NetworkPolicies do not select the pod for this direction: the Baseline
    // tier, then the default (allowed).
    if (decided(api::Tier::kBaseline)) return v;
    v.reason = Reason::kNotIsolated;
    for (const auto& list : self.cls->cluster_policies) {
      for (const ClusterPolicyId cid : list) {
        if (!s.cluster_policies[cid].rules(dir).empty()) v.cluster_subjects.push_back(cid);
      }
    }
    return v;
  }
  v.isolating = isolating;
  const PodClass* destination = dir == Direction::kIngress ? self.cls : other.cls;
  for (const PolicyId pid : isolating) {
    const std::vector<RuleRec>& rules = s.policies[pid].rules(dir);
    for (size_t r = 0; r < rules.size(); ++r) {
      const RuleRec& rule = rules[r];
      int port_index = -1;
      if (!rule.ports.empty()) {
        for (size_t i = 0; i < rule.ports.size(); ++i) {
          if (rule.ports[i].Matches(proto, port, destination)) {
            port_index = static_cast<int>(i);
            break;
          }
        }
        if (port_index < 0) continue;
      }
      int peer_index = -1;
      if (!rule.peers.empty()) {
        for (size_t i = 0; i < rule.peers.size(); ++i) {
          if (PeerMatches(rule.peers[i], other)) {
            peer_index = static_cast<int>(i);
            break;
          }
        }
        if (peer_index < 0) continue;
      }
      v.reason = Reason::kAllowedByRule;
      v.allowed_by = RuleRef{pid, static_cast<int>(r), peer_index, port_index};
      return v;
    }
  }
  v.reason = Reason::kNoRuleMatched;
  return v;
}

Verdict EvaluateFlow(const State& s, const Flow& flow) {
  Verdict verdict;
  const Side src = Resolve(s, flow.src);
  const Side dst = Resolve(s, flow.dst);
  if (flow.src.kind == Endpoint::Kind::kPod && flow.dst.kind == Endpoint::Kind::kPod &&
      flow.src.pod == flow.dst.pod) {
    verdict.egress.reason = verdict.ingress.reason = Reason::kSelf;
    verdict.allowed = true;
    return verdict;
  }
  verdict.egress = Judge(s, Direction::kEgress, src, dst, flow.protocol, flow.port);
  verdict.ingress = Judge(s, Direction::kIngress, dst, src, flow.protocol, flow.port);
  verdict.allowed = verdict.egress.allowed() && verdict.ingress.allowed();
  return verdict;
}

}  // namespace

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kNotIsolated:
      return "not isolated";
    case Reason::kAllowedByRule:
      return "allowed by rule";
    case Reason::kNoRuleMatched:
      return "no rule matched";
    case Reason::kSelf:
      return "self";
    case Reason::kOwnNode:
      return "own node";
    case Reason::kNotPolicyManaged:
      return "not policy-managed";
    case Reason::kClusterAccept:
      return "accepted by cluster rule";
    case Reason::kClusterDeny:
      return "denied by cluster rule";
  }
  return "?";
}

Endpoint Endpoint::OfPod(PodId pod, std::optional<IpAddress> ip) {
  Endpoint e;
  e.kind = Kind::kPod;
  e.pod = pod;
  e.ip = ip;
  return e;
}

Endpoint Endpoint::OfNode(std::string node, std::optional<IpAddress> ip) {
  Endpoint e;
  e.kind = Kind::kNode;
  e.node = std::move(node);
  e.ip = ip;
  return e;
}

Endpoint Endpoint::OfIp(IpAddress ip) {
  Endpoint e;
  e.kind = Kind::kExternal;
  e.ip = ip;
  return e;
}

Engine::Engine() : state_(std::make_unique<State>()) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

void Engine::Apply(const api::Object& object) {
  Mutator m(*state_);
  const std::vector<std::string> nodes_before = KnownNodes(*state_);
  struct Visitor {
    Mutator& m;
    void operator()(const api::Namespace& ns) {
      m.SetNamespaceLabels(m.EnsureNamespace(ns.metadata.name), ns.metadata.labels, true);
    }
    void operator()(const api::Pod& p) {
      Pod pod;
      pod.namespace_ = p.metadata.namespace_;
      pod.name = p.metadata.name;
      pod.node = p.spec.node_name;
      pod.host_network = p.spec.host_network;
      for (const std::string& ip : p.pod_ips) {
        if (Result<IpAddress> parsed = IpAddress::Parse(ip)) pod.ips.push_back(*parsed);
      }
      pod.ports = PortsOf(p.spec);
      std::vector<Pod> pods;
      pods.push_back(std::move(pod));
      m.ReplaceOwner(OwnerKey("Pod", p.metadata.namespace_, p.metadata.name), std::move(pods),
                     p.metadata.labels);
    }
    void operator()(const api::Workload& w) {
      const std::string owner =
          OwnerKey(api::WorkloadKindName(w.kind), w.metadata.namespace_, w.metadata.name);
      if (w.kind == api::WorkloadKind::kDaemonSet) m.state().daemonsets[owner] = w;
      m.ReplaceOwner(owner, ExpandWorkload(m.state(), w, owner), w.pod_template.labels);
    }
    void operator()(const api::NetworkPolicy& p) {
      m.RemovePolicy(p.metadata.namespace_, p.metadata.name);
      m.AddPolicy(p);
    }
    void operator()(const api::Node& node) { m.ApplyNode(node); }
    void operator()(const api::ClusterNetworkPolicy& p) {
      m.RemoveClusterPolicy(p.metadata.name);
      m.AddClusterPolicy(p);
    }
  };
  std::visit(Visitor{m}, object);
  m.SyncDaemonSets(nodes_before);
}

bool Engine::Delete(std::string_view kind, std::string_view namespace_, std::string_view name) {
  const std::vector<std::string> nodes_before = KnownNodes(*state_);
  const bool deleted = DeleteObject(kind, namespace_, name);
  Mutator(*state_).SyncDaemonSets(nodes_before);
  return deleted;
}

bool Engine::DeleteObject(std::string_view kind, std::string_view namespace_, std::string_view name) {
  Mutator m(*state_);
  State& s = *state_;
  if (kind == "NetworkPolicy") return m.RemovePolicy(namespace_, name);
  if (kind == "ClusterNetworkPolicy") return m.RemoveClusterPolicy(name);
  if (kind == "Node") return m.RemoveNode(name);
  if (kind == "Namespace") {
    const auto it = s.namespace_index.find(name);
    if (it == s.namespace_index.end() || !s.namespaces[it->second].declared) return false;
    // Everything in a deleted namespace goes with it.
    const std::string prefix = std::string(name) + "/";
    std::vector<std::string> owners;
    for (const auto& [owner, pods] : s.owners) {
      // Owner keys are "Kind namespace/name".
      if (owner.substr(owner.find(' ') + 1).starts_with(prefix)) owners.push_back(owner);
    }
    for (const std::string& owner : owners) {
      m.ReplaceOwner(owner, {});
      s.daemonsets.erase(owner);
    }
    std::vector<std::string> policy_names;
    for (const auto& [key, id] : s.policy_index) {
      if (key.first == name) policy_names.push_back(key.second);
    }
    for (const std::string& policy : policy_names) m.RemovePolicy(name, policy);
    m.SetNamespaceLabels(it->second, {}, false);
    return true;
  }
  const std::string owner = OwnerKey(kind, namespace_, name);
  if (!s.owners.contains(owner)) return false;
  m.ReplaceOwner(owner, {});
  s.daemonsets.erase(owner);
  return true;
}

bool Engine::Allowed(const Flow& flow) const {
  const State& s = *state_;
  if (flow.src.kind == Endpoint::Kind::kPod && flow.dst.kind == Endpoint::Kind::kPod &&
      flow.src.pod == flow.dst.pod) {
    return true;  // self
  }
  const Side src = Resolve(s, flow.src);
  const Side dst = Resolve(s, flow.dst);
  return Allows(s, Direction::kEgress, src, dst, flow.protocol, flow.port) &&
         Allows(s, Direction::kIngress, dst, src, flow.protocol, flow.port);
}

Verdict Engine::Evaluate(const Flow& flow) const {
  return EvaluateFlow(*state_, flow);
}

std::optional<PodId> Engine::FindPod(std::string_view namespace_, std::string_view name) const {
  const auto it = state_->pod_index.find(std::pair{std::string(namespace_), std::string(name)});
  if (it == state_->pod_index.end()) return std::nullopt;
  return it->second;
}

std::optional<PodId> Engine::FindPodByIp(const IpAddress& ip) const {
  const auto it = state_->pod_by_ip.find(ip);
  if (it == state_->pod_by_ip.end()) return std::nullopt;
  return it->second;
}

std::optional<PolicyId> Engine::FindPolicy(std::string_view namespace_, std::string_view name) const {
  const auto it = state_->policy_index.find(std::pair{std::string(namespace_), std::string(name)});
  if (it == state_->policy_index.end()) return std::nullopt;
  return it->second;
}

const Pod& Engine::pod(PodId id) const {
  return state_->pods[id].pod;
}

const api::NetworkPolicy& Engine::policy(PolicyId id) const {
  return state_->policies[id].spec;
}

std::string Engine::PolicyName(PolicyId id) const {
  return state_->policies[id].full_name;
}

std::optional<ClusterPolicyId> Engine::FindClusterPolicy(std::string_view name) const {
  const auto it = state_->cluster_policy_index.find(name);
  if (it == state_->cluster_policy_index.end()) return std::nullopt;
  return it->second;
}

const api::ClusterNetworkPolicy& Engine::cluster_policy(ClusterPolicyId id) const {
  return state_->cluster_policies[id].spec;
}

std::string Engine::ClusterPolicyName(ClusterPolicyId id) const {
  return state_->cluster_policies[id].full_name;
}

std::vector<ClusterPolicyId> Engine::ClusterPolicies() const {
  std::vector<ClusterPolicyId> out;
  for (const auto& [name, id] : state_->cluster_policy_index) out.push_back(id);
  const auto key = [&](ClusterPolicyId c) {
    const internal::ClusterPolicyRec& p = state_->cluster_policies[c];
    return std::tuple<api::Tier, int32_t, const std::string&>(p.tier, p.priority, p.spec.metadata.name);
  };
  std::sort(out.begin(), out.end(), [&](ClusterPolicyId a, ClusterPolicyId b) { return key(a) < key(b); });
  return out;
}

std::vector<PodId> Engine::ClusterSubjectPods(ClusterPolicyId policy) const {
  const internal::ClusterPolicyRec& p = state_->cluster_policies[policy];
  std::vector<PodId> out;
  for (const PodId id : Pods()) {
    const ClassId c = state_->pods[id].cls;
    if (c != kNoClass && p.subjects.test(c)) out.push_back(id);
  }
  return out;
}

std::vector<PodId> Engine::ClusterPeerPods(ClusterPolicyId policy, Direction direction, size_t rule,
                                           size_t peer) const {
  const internal::ClusterPeerRec& p = state_->cluster_policies[policy].rules(direction)[rule].peers[peer];
  std::vector<PodId> out;
  if (p.kind != internal::ClusterPeerRec::Kind::kSelector) return out;
  for (const PodId id : Pods()) {
    const ClassId c = state_->pods[id].cls;
    if (c != kNoClass && p.selector.classes.test(c)) out.push_back(id);
  }
  return out;
}

std::vector<PodId> Engine::Pods() const {
  std::vector<PodId> out;
  out.reserve(state_->pod_index.size());
  for (const auto& [key, id] : state_->pod_index) out.push_back(id);
  return out;
}

std::vector<PolicyId> Engine::Policies() const {
  std::vector<PolicyId> out;
  for (const auto& [key, id] : state_->policy_index) out.push_back(id);
  return out;
}

std::vector<std::pair<std::string, api::Labels>> Engine::Namespaces() const {
  std::vector<std::pair<std::string, api::Labels>> out;
  for (const auto& [name, id] : state_->namespace_index) {
    out.emplace_back(name, state_->namespaces[id].labels);
  }
  return out;
}

std::vector<PodId> Engine::SelectedPods(PolicyId policy) const {
  const PolicyRec& p = state_->policies[policy];
  std::vector<PodId> out;
  for (const PodId id : Pods()) {
    const ClassId c = state_->pods[id].cls;
    if (c != kNoClass && p.targets.test(c)) out.push_back(id);
  }
  return out;
}

std::vector<PodId> Engine::PeerPods(PolicyId policy, Direction direction, size_t rule, size_t peer) const {
  const PeerRule& p = state_->policies[policy].rules(direction)[rule].peers[peer];
  std::vector<PodId> out;
  if (p.is_ip_block()) return out;
  for (const PodId id : Pods()) {
    const ClassId c = state_->pods[id].cls;
    if (c != kNoClass && p.classes.test(c)) out.push_back(id);
  }
  return out;
}

std::vector<PolicyId> Engine::IsolatingPolicies(PodId pod, Direction direction) const {
  const PodClass* cls = state_->ClassOfPod(pod);
  if (cls == nullptr) return {};
  return direction == Direction::kIngress ? cls->ingress_policies : cls->egress_policies;
}

const api::Labels& Engine::PodLabels(PodId id) const {
  static const api::Labels kNone;
  const PodClass* cls = state_->ClassOfPod(id);
  return cls == nullptr ? kNone : cls->key.labels;
}

EngineStats Engine::stats() const {
  return {state_->pod_index.size(),    state_->class_index.size(),          state_->namespace_index.size(),
          state_->policy_index.size(), state_->cluster_policy_index.size(), state_->nodes.size()};
}

}  // namespace netpol::policy
