#include "policy/compile.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>
#include <unordered_map>

#include "base/hash.h"
#include "policy/internal/set_ids.h"
#include "policy/internal/state.h"
#include "policy/internal/tiers.h"

namespace netpol::policy {
namespace {

using internal::ClassId;
using internal::kNoClass;
using internal::PeerRule;
using internal::PodClass;
using internal::PortRule;
using internal::RuleRec;
using internal::State;

// A set's id hashes its members as a sum of one hash per address (and then its
// ranges), so that a set changed in a few addresses gets its id from the
// old one in a few steps (the compile cache's Update) and equal contents
// always get equal ids, however they were built.
uint64_t AddressHash(const IpAddress& ip) {
  WordHash h;
  h.Add(static_cast<uint64_t>(ip.family()));
  h.Add(ip.high());
  h.Add(ip.low());
  return h.value();
}

uint64_t AddressSum(const std::vector<IpAddress>& addresses) {
  uint64_t sum = 0;
  for (const IpAddress& ip : addresses) sum += AddressHash(ip);
  return sum;
}

std::string SetIdOf(uint64_t address_sum, size_t address_count, const std::vector<AddressRange>& ranges) {
  WordHash h;
  h.Add(address_sum);
  h.Add(address_count);
  for (const AddressRange& r : ranges) {
    h.Add(AddressHash(r.first));
    h.Add(AddressHash(r.last));
  }
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "p%016llx", static_cast<unsigned long long>(h.value()));
  return buffer;
}

std::string SetId(const AddressSet& set) {
  return SetIdOf(AddressSum(set.addresses), set.addresses.size(), set.ranges);
}

// The order of IpAddress's <=>, spelled out so that it inlines (a rule's peers
// can be thousands of addresses, sorted on every change to them).
bool AddressLess(const IpAddress& a, const IpAddress& b) {
  if (a.family() != b.family()) return a.family() < b.family();
  if (a.high() != b.high()) return a.high() < b.high();
  return a.low() < b.low();
}

void SortUnique(std::vector<IpAddress>& addresses) {
  std::sort(addresses.begin(), addresses.end(), AddressLess);
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
}

IpAddress Plus(const IpAddress& ip, int delta) {
  if (ip.is_v4()) return IpAddress::V4(ip.v4() + static_cast<uint32_t>(delta));
  uint64_t low = ip.low() + static_cast<uint64_t>(static_cast<int64_t>(delta));
  uint64_t high = ip.high();
  if (delta > 0 && low < ip.low()) ++high;
  if (delta < 0 && low > ip.low()) --high;
  return IpAddress::V6(high, low);
}

AddressRange RangeOf(const IpPrefix& p) {
  const IpAddress first = p.address();
  if (first.is_v4()) {
    const uint32_t host = p.length() == 32 ? 0 : (~uint32_t{0} >> p.length());
    return {first, IpAddress::V4(first.v4() | host)};
  }
  const int len = p.length();
  const uint64_t high_host = len >= 64 ? 0 : (len == 0 ? ~uint64_t{0} : (~uint64_t{0} >> len));
  const uint64_t low_host = len >= 128 ? 0 : (len <= 64 ? ~uint64_t{0} : (~uint64_t{0} >> (len - 64)));
  return {first, IpAddress::V6(first.high() | high_host, first.low() | low_host)};
}

// cidr minus every except, as sorted disjoint ranges.
std::vector<AddressRange> BlockRanges(const PeerRule& peer) {
  std::vector<AddressRange> out = {RangeOf(*peer.cidr)};
  for (const IpPrefix& hole_prefix : peer.except) {
    const AddressRange hole = RangeOf(hole_prefix);
    std::vector<AddressRange> next;
    for (const AddressRange& r : out) {
      if (hole.last < r.first || r.last < hole.first) {
        next.push_back(r);
        continue;
      }
      if (r.first < hole.first) next.push_back({r.first, Plus(hole.first, -1)});
      if (hole.last < r.last) next.push_back({Plus(hole.last, 1), r.last});
    }
    out = std::move(next);
  }
  return out;
}

bool RuleFresh(const State& s, const RuleRec& rule, uint64_t at) {
  for (const PeerRule& peer : rule.peers) {
    if (peer.is_ip_block()) continue;
    if (peer.changed_at > at) return false;
    bool fresh = true;
    peer.classes.ForEach([&](size_t c) { fresh = fresh && s.classes[c].changed_at <= at; });
    if (!fresh) return false;
  }
  return true;
}

}  // namespace

// What a NodeCompiler keeps between compiles, by rule serial. An entry
// computed at engine tick `at` stays good while every part it read is no
// newer; entries no compile used are dropped at the end of each compile.
struct NodeCompiler::Cache {
  const Engine* engine = nullptr;
  uint64_t clock = 0;  // the engine's tick at the last compile
  struct PeerSet {
    uint64_t at = 0;
    std::string id;
    SharedAddressSet set;
    bool used = false;
    // What each class the rule matched gave at `at` (its addresses, sorted,
    // one run of class_addresses per class, in class order; each class with
    // the end of its run), and the sum of the set's address hashes: a change
    // to a few classes is applied by re-reading those classes alone.
    std::vector<IpAddress> class_addresses;
    std::vector<std::pair<ClassId, uint32_t>> classes;
    uint64_t address_sum = 0;
  };
  struct NamedPortSets {
    bool computed = false;
    uint64_t at = 0;
    std::vector<std::pair<uint16_t, std::pair<std::string, SharedAddressSet>>> by_port;
    bool used = false;
  };
  std::unordered_map<uint64_t, PeerSet> peers;
  std::map<std::tuple<uint64_t, std::string, api::Protocol>, NamedPortSets> named;
};

namespace {

class Compiler {
 public:
  Compiler(const Engine& engine, const State& s, NodeCompiler::Cache& cache)
      : engine_(engine), s_(s), cache_(cache) {}

  NodeProgram Run(const std::map<std::string, std::string>& local) {
    for (const auto& [name, interface] : local) {
      const size_t slash = name.find('/');
      const auto id =
          engine_.FindPod(name.substr(0, slash), slash == std::string::npos ? "" : name.substr(slash + 1));
      if (!id) continue;
      const internal::PodRec& rec = s_.pods[*id];
      if (rec.pod.ips.empty() || rec.cls == kNoClass) continue;  // unaddressable, or a node
      LocalPod pod;
      pod.ips = rec.pod.ips;
      pod.interface = interface;
      pod.ingress = Memo(rec.cls, Direction::kIngress);
      pod.egress = Memo(rec.cls, Direction::kEgress);
      program_.pods[name] = std::move(pod);
    }
    for (auto& [origin, note] : notes_) program_.notes.push_back(std::move(note));
    return std::move(program_);
  }

 private:
  // Pods of one class get the same rules: compile each class and direction once.
  const DirectionProgram& Memo(ClassId cls, policy::Direction dir) {
    const auto key = std::make_pair(cls, dir == Direction::kIngress);
    auto it = memo_.find(key);
    if (it == memo_.end()) it = memo_.emplace(key, Direction(s_.classes[cls], dir)).first;
    return it->second;
  }

  static std::pair<std::string, SharedAddressSet> Intern(AddressSet set, const std::string& origin) {
    SortUnique(set.addresses);
    std::sort(set.ranges.begin(), set.ranges.end());
    std::string id = SetId(set);
    set.origin = origin;
    return {std::move(id), std::make_shared<const AddressSet>(std::move(set))};
  }

  // A set into the program under its id (see internal::AddSet); the first
  // one with an id names its origin.
  const std::string& Use(const std::string& id, const SharedAddressSet& set) {
    return internal::AddSet(program_.sets, id, set);
  }

  // The classes a rule's selector peers match, in increasing order, once each.
  std::vector<ClassId> MatchedClasses(const RuleRec& rule) const {
    std::vector<ClassId> classes;
    for (const PeerRule& peer : rule.peers) {
      if (!peer.is_ip_block())
        peer.classes.ForEach([&](size_t c) { classes.push_back(static_cast<ClassId>(c)); });
    }
    if (!std::is_sorted(classes.begin(), classes.end())) std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    return classes;
  }

  // Appends every address of a class's pods to `out`, sorted among themselves.
  void AppendClassAddresses(ClassId c, std::vector<IpAddress>& out) const {
    const size_t start = out.size();
    for (const PodId id : s_.classes[c].pods) {
      for (const IpAddress& ip : s_.pods[id].pod.ips) out.push_back(ip);
    }
    const auto first = out.begin() + static_cast<std::ptrdiff_t>(start);
    std::sort(first, out.end(), AddressLess);
    out.erase(std::unique(first, out.end()), out.end());
  }

  // The ranges of a rule's ipBlocks, sorted.
  static std::vector<AddressRange> RuleRanges(const RuleRec& rule) {
    std::vector<AddressRange> ranges;
    for (const PeerRule& peer : rule.peers) {
      if (!peer.is_ip_block()) continue;
      for (const AddressRange& r : BlockRanges(peer)) ranges.push_back(r);
    }
    std::sort(ranges.begin(), ranges.end());
    return ranges;
  }

  // Peer addresses of a rule, read whole: every address of the pods its
  // selector peers match (kept per class in `entry`), and the ranges of its
  // ipBlocks.
  void BuildPeerSet(NodeCompiler::Cache::PeerSet& entry, const RuleRec& rule,
                    const std::string& origin) const {
    entry.class_addresses.clear();
    entry.classes.clear();
    size_t pods = 0;
    const std::vector<ClassId> matched = MatchedClasses(rule);
    for (const ClassId c : matched) pods += s_.classes[c].pods.size();
    entry.class_addresses.reserve(pods);
    for (const ClassId c : matched) {
      AppendClassAddresses(c, entry.class_addresses);
      entry.classes.emplace_back(c, static_cast<uint32_t>(entry.class_addresses.size()));
    }
    AddressSet set;
    set.addresses = entry.class_addresses;
    SortUnique(set.addresses);
    set.ranges = RuleRanges(rule);
    entry.address_sum = AddressSum(set.addresses);
    entry.id = SetIdOf(entry.address_sum, set.addresses.size(), set.ranges);
    set.origin = origin;
    entry.set = std::make_shared<const AddressSet>(std::move(set));
    entry.at = s_.clock;
  }

  // Brings a rule's kept peer set up to date by re-reading only the classes
  // that changed (or that the rule newly matches or no longer matches) since
  // it was read: the set changes by the addresses that left and came, and
  // its id by their hashes. Reads it whole when much changed.
  void UpdatePeerSet(NodeCompiler::Cache::PeerSet& entry, const RuleRec& rule,
                     const std::string& origin) const {
    const std::vector<ClassId> now = MatchedClasses(rule);
    std::vector<IpAddress> class_addresses;
    std::vector<std::pair<ClassId, uint32_t>> classes;
    class_addresses.reserve(entry.class_addresses.size() + 8);
    classes.reserve(now.size());
    std::vector<IpAddress> left, came;
    const auto run = [&](size_t k) {
      const uint32_t begin = k == 0 ? 0 : entry.classes[k - 1].second;
      return std::make_pair(entry.class_addresses.begin() + begin,
                            entry.class_addresses.begin() + entry.classes[k].second);
    };
    const auto leave = [&](size_t k) {  // the whole run of a class no longer matched
      const auto [first, last] = run(k);
      left.insert(left.end(), first, last);
    };
    size_t old = 0;
    for (const ClassId c : now) {
      for (; old < entry.classes.size() && entry.classes[old].first < c; ++old) leave(old);
      const bool had = old < entry.classes.size() && entry.classes[old].first == c;
      if (had && s_.classes[c].changed_at <= entry.at) {
        const auto [first, last] = run(old);
        class_addresses.insert(class_addresses.end(), first, last);
        classes.emplace_back(c, static_cast<uint32_t>(class_addresses.size()));
        ++old;
        continue;
      }
      const size_t begin = class_addresses.size();
      AppendClassAddresses(c, class_addresses);
      const auto first = class_addresses.begin() + static_cast<std::ptrdiff_t>(begin);
      if (had) {
        // What the class lost and gained (both runs sorted).
        const auto [was_first, was_last] = run(old);
        std::set_difference(was_first, was_last, first, class_addresses.end(), std::back_inserter(left),
                            AddressLess);
        std::set_difference(first, class_addresses.end(), was_first, was_last, std::back_inserter(came),
                            AddressLess);
        ++old;
      } else {
        came.insert(came.end(), first, class_addresses.end());
      }
      classes.emplace_back(c, static_cast<uint32_t>(class_addresses.size()));
    }
    for (; old < entry.classes.size(); ++old) leave(old);
    entry.class_addresses = std::move(class_addresses);
    entry.classes = std::move(classes);
    const AddressSet& before = *entry.set;
    if (left.size() + came.size() > before.addresses.size() / 4 + 64)
      return BuildPeerSet(entry, rule, origin);
    SortUnique(left);
    SortUnique(came);
    // An address that left one class stays when any class has it now, changed
    // or not (pods can share an address: a finished pod's, reused).
    const auto held_now = [&](const IpAddress& ip) {
      uint32_t begin = 0;
      for (const auto& [c, end] : entry.classes) {
        if (std::binary_search(entry.class_addresses.begin() + begin, entry.class_addresses.begin() + end, ip,
                               AddressLess))
          return true;
        begin = end;
      }
      return false;
    };
    std::vector<IpAddress> gone;
    for (const IpAddress& ip : left) {
      if (!std::binary_search(came.begin(), came.end(), ip, AddressLess) && !held_now(ip)) gone.push_back(ip);
    }
    std::vector<IpAddress> added;
    for (const IpAddress& ip : came) {
      if (!std::binary_search(before.addresses.begin(), before.addresses.end(), ip, AddressLess))
        added.push_back(ip);
    }
    AddressSet set;
    set.ranges = RuleRanges(rule);
    if (gone.empty() && added.empty() && set.ranges == before.ranges) {
      entry.at = s_.clock;  // the same addresses: the same set and id
      return;
    }
    // Into sized vectors (copies, not an insertion per address).
    std::vector<IpAddress> remaining;
    if (!gone.empty()) {
      remaining.resize(before.addresses.size(), IpAddress::V4(0));
      remaining.erase(std::set_difference(before.addresses.begin(), before.addresses.end(), gone.begin(),
                                          gone.end(), remaining.begin(), AddressLess),
                      remaining.end());
    }
    const std::vector<IpAddress>& base = gone.empty() ? before.addresses : remaining;
    set.addresses.resize(base.size() + added.size(), IpAddress::V4(0));
    std::merge(base.begin(), base.end(), added.begin(), added.end(), set.addresses.begin(), AddressLess);
    entry.address_sum += AddressSum(added);
    entry.address_sum -= AddressSum(gone);
    entry.id = SetIdOf(entry.address_sum, set.addresses.size(), set.ranges);
    set.origin = origin;
    entry.set = std::make_shared<const AddressSet>(std::move(set));
    entry.at = s_.clock;
  }

  // The rule's peer set: from the cache while nothing it was read from changed.
  const std::string& PeerSet(const RuleRec& rule, const std::string& origin) {
    NodeCompiler::Cache::PeerSet& entry = cache_.peers[rule.serial];
    if (!entry.set) {
      BuildPeerSet(entry, rule, origin);
    } else if (!RuleFresh(s_, rule, entry.at)) {
      UpdatePeerSet(entry, rule, origin);
    }
    entry.used = true;
    return Use(entry.id, entry.set);
  }

  // The addresses of `pod` that `rule` (egress) has as peers: all of them when
  // a selector peer matches the pod (or the rule has no peers), else those an
  // ipBlock holds (a dual-stack pod may be a peer by one family only,
  // docs/SEMANTICS.md §19).
  void AddPeerAddresses(const RuleRec& rule, PodId pod, AddressSet& set) const {
    const internal::PodRec& rec = s_.pods[pod];
    const bool selected =
        rule.peers.empty() || std::any_of(rule.peers.begin(), rule.peers.end(), [&](const PeerRule& peer) {
          return !peer.is_ip_block() && rec.cls != kNoClass && peer.classes.test(rec.cls);
        });
    for (const IpAddress& ip : rec.pod.ips) {
      if (selected || std::any_of(rule.peers.begin(), rule.peers.end(), [&](const PeerRule& peer) {
            return peer.is_ip_block() && peer.MatchesIp(ip);
          })) {
        set.addresses.push_back(ip);
      }
    }
  }

  // Egress named ports mean each destination pod's own number: the peer pods
  // grouped by what the name resolves to on them. IpBlock peers are matched
  // against every pod's addresses, so any pod change makes these stale.
  const NodeCompiler::Cache::NamedPortSets& NamedPortPeers(const RuleRec& rule, const PortRule& p,
                                                           const std::string& origin) {
    NodeCompiler::Cache::NamedPortSets& entry = cache_.named[{rule.serial, p.name, p.protocol}];
    if (!entry.computed || entry.at < s_.pods_changed_at || !RuleFresh(s_, rule, entry.at)) {
      std::map<uint16_t, AddressSet> by_port;
      for (PodId id = 0; id < s_.pods.size(); ++id) {
        const internal::PodRec& rec = s_.pods[id];
        if (!rec.live || rec.pod.ips.empty() || rec.cls == kNoClass) continue;
        if (const auto n = s_.classes[rec.cls].ResolveNamedPort(p.name, p.protocol)) {
          AddressSet& set = by_port[*n];
          AddPeerAddresses(rule, id, set);
          if (set.addresses.empty()) by_port.erase(*n);
        }
      }
      entry.by_port.clear();
      for (auto& [port, set] : by_port) entry.by_port.emplace_back(port, Intern(std::move(set), origin));
      entry.at = s_.clock;
      entry.computed = true;
    }
    entry.used = true;
    return entry;
  }

  // A tier's boxes depend on the class only through its policy list (and,
  // for ingress named ports, its own ports): classes that share them (most of
  // a namespace, when subjects select namespaces) share one compile.
  TierDecisions Tier(const PodClass& cls, policy::Direction dir, api::Tier tier) {
    const std::vector<ClusterPolicyId>& list = cls.cluster_policies[static_cast<size_t>(tier)];
    if (list.empty()) return {};
    TierKey key{list, dir == Direction::kIngress, tier,
                dir == Direction::kIngress ? cls.key.named_ports : std::vector<internal::NamedPort>{}};
    auto it = tier_memo_.find(key);
    if (it == tier_memo_.end())
      it = tier_memo_.emplace(std::move(key), internal::CompileTier(s_, cls, dir, tier, notes_)).first;
    return it->second;
  }

  DirectionProgram Direction(const PodClass& cls, policy::Direction dir) {
    DirectionProgram out;
    const auto& isolating = dir == Direction::kIngress ? cls.ingress_policies : cls.egress_policies;
    out.isolated = !isolating.empty();
    const char* dir_name = dir == Direction::kIngress ? " ingress[" : " egress[";
    for (const PolicyId pid : isolating) {
      const auto& rules = s_.policies[pid].rules(dir);
      for (size_t r = 0; r < rules.size(); ++r) {
        const RuleRec& rule = rules[r];
        const std::string origin = s_.policies[pid].full_name + dir_name + std::to_string(r) + "]";
        std::vector<PortSpan> spans;
        std::vector<const PortRule*> named;
        for (const PortRule& p : rule.ports) {
          if (p.any_port) {
            spans.push_back({p.protocol, 1, 65535});
          } else if (p.name.empty()) {
            spans.push_back({p.protocol, p.first, p.last});
          } else if (dir == Direction::kIngress) {
            // Ingress: the destination is this pod; resolve against its own ports.
            if (const auto n = cls.ResolveNamedPort(p.name, p.protocol))
              spans.push_back({p.protocol, *n, *n});
          } else {
            named.push_back(&p);
          }
        }
        std::optional<std::string> peers;
        if (!rule.peers.empty()) peers = PeerSet(rule, origin);
        if (rule.ports.empty() || !spans.empty()) {
          std::sort(spans.begin(), spans.end());
          out.allow.push_back({peers, std::move(spans), origin});
        }
        for (const PortRule* p : named) {
          for (const auto& [port, set] : NamedPortPeers(rule, *p, origin).by_port) {
            out.allow.push_back({Use(set.first, set.second), {{p->protocol, port, port}}, origin});
          }
        }
      }
    }
    out.admin = Tier(cls, dir, api::Tier::kAdmin);
    out.baseline = Tier(cls, dir, api::Tier::kBaseline);
    std::sort(out.allow.begin(), out.allow.end());
    out.allow.erase(std::unique(out.allow.begin(), out.allow.end(),
                                [](const Allowance& a, const Allowance& b) {
                                  return a.peers == b.peers && a.ports == b.ports;
                                }),
                    out.allow.end());
    return out;
  }

  const Engine& engine_;
  const State& s_;
  NodeCompiler::Cache& cache_;
  NodeProgram program_;
  std::map<std::pair<ClassId, bool>, DirectionProgram> memo_;
  std::map<std::string, CompileNote> notes_;
  using TierKey = std::tuple<std::vector<ClusterPolicyId>, bool, api::Tier, std::vector<internal::NamedPort>>;
  std::map<TierKey, TierDecisions> tier_memo_;
};

// A direction's verdict from its compiled tiers: the Admin box, else the
// NetworkPolicy tier for an isolated pod, else the Baseline box, else allowed.
bool DirectionAllows(const NodeProgram& program, const DirectionProgram& d, const IpAddress& peer,
                     uint8_t protocol, uint16_t port) {
  if (const DecisionBox* box = d.admin.Find(peer, protocol, port)) return box->action == TierAction::kAccept;
  if (!d.isolated) {
    const DecisionBox* box = d.baseline.Find(peer, protocol, port);
    return box == nullptr || box->action == TierAction::kAccept;
  }
  return std::any_of(d.allow.begin(), d.allow.end(), [&](const Allowance& a) {
    const bool port_ok =
        a.ports.empty() || std::any_of(a.ports.begin(), a.ports.end(), [&](const PortSpan& s) {
          return IpProtocolNumber(s.protocol) == protocol && s.first <= port && port <= s.last;
        });
    return port_ok && (!a.peers || program.set(*a.peers).Contains(peer));
  });
}

}  // namespace

bool AddressSet::Contains(const IpAddress& ip) const {
  if (std::binary_search(addresses.begin(), addresses.end(), ip)) return true;
  return std::any_of(ranges.begin(), ranges.end(), [&](const AddressRange& r) {
    return r.first.family() == ip.family() && !(ip < r.first) && !(r.last < ip);
  });
}

bool NodeProgram::Allows(const IpAddress& src, const IpAddress& dst, api::Protocol protocol, uint16_t port,
                         bool from_node) const {
  return AllowsIp(src, dst, IpProtocolNumber(protocol), port, from_node);
}

bool NodeProgram::AllowsIp(const IpAddress& src, const IpAddress& dst, uint8_t protocol, uint16_t port,
                           bool from_node) const {
  for (const auto& [name, pod] : pods) {
    const bool is_src = std::find(pod.ips.begin(), pod.ips.end(), src) != pod.ips.end();
    const bool is_dst = std::find(pod.ips.begin(), pod.ips.end(), dst) != pod.ips.end();
    if (is_src && (pod.reserved || !DirectionAllows(*this, pod.egress, dst, protocol, port))) return false;
    if (is_dst && !from_node && !DirectionAllows(*this, pod.ingress, src, protocol, port)) return false;
  }
  return true;
}

ProgramDelta Diff(const NodeProgram& before, const NodeProgram& after) {
  ProgramDelta delta;
  for (const auto& [name, pod] : before.pods) {
    const auto it = after.pods.find(name);
    if (it == after.pods.end()) {
      delta.removed.push_back(name);
    } else if (!(it->second == pod)) {
      delta.changed.push_back(name);
    }
  }
  for (const auto& [name, pod] : after.pods) {
    if (!before.pods.contains(name)) delta.added.push_back(name);
  }
  return delta;
}

bool operator==(const NodeProgram& a, const NodeProgram& b) {
  return a.pods == b.pods && std::equal(a.sets.begin(), a.sets.end(), b.sets.begin(), b.sets.end(),
                                        [](const auto& x, const auto& y) {
                                          return x.first == y.first && *x.second == *y.second;
                                        });
}

NodeCompiler::NodeCompiler() : cache_(std::make_unique<Cache>()) {}
NodeCompiler::~NodeCompiler() = default;
NodeCompiler::NodeCompiler(NodeCompiler&&) noexcept = default;
NodeCompiler& NodeCompiler::operator=(NodeCompiler&&) noexcept = default;

NodeProgram NodeCompiler::Compile(const Engine& engine, const std::map<std::string, std::string>& local) {
  const State& s = engine.state();
  // Rule serials are unique within one engine's life only.
  if (cache_->engine != &engine || s.clock < cache_->clock) *cache_ = Cache{};
  cache_->engine = &engine;
  cache_->clock = s.clock;
  for (auto& [serial, entry] : cache_->peers) entry.used = false;
  for (auto& [key, entry] : cache_->named) entry.used = false;
  NodeProgram program = Compiler(engine, s, *cache_).Run(local);
  std::erase_if(cache_->peers, [](const auto& e) { return !e.second.used; });
  std::erase_if(cache_->named, [](const auto& e) { return !e.second.used; });
  return program;
}

NodeProgram CompileNode(const Engine& engine, const std::map<std::string, std::string>& local) {
  NodeCompiler compiler;
  return compiler.Compile(engine, local);
}

namespace internal {

const std::string& AddSet(std::map<std::string, SharedAddressSet>& sets, const std::string& id,
                          const SharedAddressSet& set) {
  auto [it, added] = sets.emplace(id, set);
  for (int n = 2; !added && it->second != set && !(*it->second == *set); ++n) {
    std::tie(it, added) = sets.emplace(id + "~" + std::to_string(n), set);
  }
  return it->first;
}

}  // namespace internal
std::map<std::string, std::string> LocalPodsByAddress(const Engine& engine,
                                                      const std::map<IpAddress, std::string>& interfaces) {
  std::map<std::string, std::string> local;
  for (const PodId id : engine.Pods()) {
    for (const IpAddress& ip : engine.pod(id).ips) {
      if (const auto it = interfaces.find(ip); it != interfaces.end())
        local[engine.pod(id).FullName()] = it->second;
    }
  }
  return local;
}

}  // namespace netpol::policy
