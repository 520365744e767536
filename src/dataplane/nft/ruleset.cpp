#include "dataplane/nft/ruleset.h"

#include <algorithm>
#include <iterator>
#include <set>

namespace netpol::dataplane::nft {
namespace {

using policy::AddressRange;
using policy::AddressSet;
using policy::Allowance;
using policy::DirectionProgram;
using policy::PortSpan;

struct Family {
  const char* suffix;     // "v4"
  const char* addr_type;  // "ipv4_addr"
  const char* match;      // "ip"
  IpFamily family;
  const char* any_range;  // the whole address space
};

constexpr Family kFamilies[] = {
    {"v4", "ipv4_addr", "ip", IpFamily::kV4, "0.0.0.0-255.255.255.255"},
    {"v6", "ipv6_addr", "ip6", IpFamily::kV6, "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

struct Dir {
  const char* prefix;    // set name prefix: "in" or "eg"
  const char* name;      // "ingress"
  const char* pod_side;  // which address is the local pod: "daddr" or "saddr"
  const char* peer_side;
};

constexpr Dir kDirs[] = {{"in", "ingress", "daddr", "saddr"}, {"eg", "egress", "saddr", "daddr"}};

// The ClusterNetworkPolicy tiers: their decision maps ("in_admin_v4",
// "in_adminall_v4") and the chains their verdicts go to
// ("ingress_admin_deny_v4", "ingress_admin_accept_v4").
struct Tier {
  const char* set;    // "admin"
  const char* title;  // "Admin"
};

constexpr Tier kTiers[] = {{"admin", "Admin"}, {"base", "Baseline"}};

std::string TierChain(const Dir& d, const Tier& t, policy::TierAction action, const Family& f) {
  return std::string(d.name) + "_" + (t.set[0] == 'a' ? "admin" : "baseline") + "_" +
         (action == policy::TierAction::kAccept ? "accept" : "deny") + "_" + f.suffix;
}

std::string Hex(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 0xf];
  return out;
}

// The chain holding one class's decisions of a tier: "in_admin_c<digest>_v4".
std::string ClassChain(const Dir& d, const Tier& t, const Family& f, uint64_t digest) {
  return std::string(d.prefix) + "_" + t.set + "_c" + Hex(digest) + "_" + f.suffix;
}

// One class's decisions of a tier for one family: its two maps (boxes
// deciding every port of their protocols in `_all`, which needs no port, so
// it also decides ICMP and other protocols; the others by port in `_port`)
// and its chain, which looks both up (the boxes are disjoint: at most one
// matches) and, in the Admin tier, goes on to the NetworkPolicy chain when
// neither decides.
TierClass RenderClass(const Dir& d, const Tier& t, const Family& f, const policy::TierDecisions& tier) {
  TierClass c;
  c.chain = ClassChain(d, t, f, tier.digest(f.family));
  const std::string a = f.addr_type;
  NftSet ports{c.chain + "_port",
               a + " . inet_proto . inet_service : verdict",
               true,
               false,
               std::string("peer range . protocol . port range: a class's ") + t.title +
                   " tier decisions (ClusterNetworkPolicy)",
               {}};
  NftSet all{c.chain + "_all",
             a + " . inet_proto : verdict",
             true,
             false,
             std::string("peer range . protocol range, every port: a class's ") + t.title +
                 " tier decisions (ClusterNetworkPolicy)",
             {}};
  const std::string verdicts[2] = {TierChain(d, t, policy::TierAction::kAccept, f),
                                   TierChain(d, t, policy::TierAction::kDeny, f)};
  for (const policy::DecisionBox& box : tier.boxes()) {
    if (box.peers.first.family() != f.family) continue;
    const Field peers = Field::Addresses(box.peers.first, box.peers.last);
    const Field protocols = Field::Protos(box.protocol_first, box.protocol_last);
    Element element =
        box.all_ports() ? Element::Of({peers, protocols}, true)
                        : Element::Of({peers, protocols, Field::Ports(box.port_first, box.port_last)}, true);
    (box.all_ports() ? all : ports)
        .elements.emplace(
            std::move(element).Goto(verdicts[box.action == policy::TierAction::kAccept ? 0 : 1]), box.origin);
  }
  const std::string peer = std::string(f.match) + " " + d.peer_side;
  c.definition = "chain " + c.chain + " {\n\t\t" + peer + " . meta l4proto . th dport vmap @" + ports.name +
                 "\n\t\t" + peer + " . meta l4proto vmap @" + all.name + "\n";
  if (t.set[0] == 'a') c.definition += std::string("\t\tgoto ") + d.name + "_np_" + f.suffix + "\n";
  c.definition += "\t}";
  c.maps.push_back(std::move(ports));
  c.maps.push_back(std::move(all));
  return c;
}

// Calls fn(d, t, f, tier) for each tier decisions some local pod address
// needs a class chain for (once per chain name).
template <typename Fn>
void ForEachClass(const policy::NodeProgram& program, Fn&& fn) {
  std::set<std::string> seen;
  for (const auto& [name, pod] : program.pods) {
    for (const Family& f : kFamilies) {
      if (std::none_of(pod.ips.begin(), pod.ips.end(),
                       [&](const IpAddress& ip) { return ip.family() == f.family; }))
        continue;
      for (const Dir& d : kDirs) {
        const DirectionProgram& dp = d.prefix[0] == 'i' ? pod.ingress : pod.egress;
        for (const Tier& t : kTiers) {
          const policy::TierDecisions& tier = t.set[0] == 'a' ? dp.admin : dp.baseline;
          if (!tier.has(f.family)) continue;
          std::string chain = ClassChain(d, t, f, tier.digest(f.family));
          if (seen.insert(chain).second) fn(d, t, f, tier, chain);
        }
      }
    }
  }
}

uint8_t ProtoNumber(api::Protocol p) {
  switch (p) {
    case api::Protocol::kTCP:
      return policy::kIpProtoTcp;
    case api::Protocol::kUDP:
      return policy::kIpProtoUdp;
    case api::Protocol::kSCTP:
      return policy::kIpProtoSctp;
  }
  return policy::kIpProtoTcp;
}

std::string Quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// nftables keeps at most 128 bytes of comment; names are DNS names, no quoting needed.
std::string Comment(const std::string& s) {
  return Quoted(CommentText(s));
}

class Renderer {
 public:
  Renderer(const policy::NodeProgram& program, const NftOptions& options, const GroupIds* groups = nullptr)
      : program_(program), options_(options), groups_(groups) {}

  // Every set, empty, in a fixed order.
  void Layout() {
    const std::string schema = "netpol schema=" + std::to_string(kSchemaVersion) +
                               " log-group=" + std::to_string(options_.log_group) +
                               (options_.log_allowed ? " log-allowed" : "");
    Add("pod_ifaces", "ifname", false, false, "host-side interfaces of local pods");
    for (const Family& f : kFamilies) {
      Add(std::string("pods_") + f.suffix, f.addr_type, false, false,
          f.family == IpFamily::kV4 ? schema : "addresses of local pods");
      Add(std::string("pod_src_") + f.suffix, std::string("ifname . ") + f.addr_type, false, false,
          "anti-spoofing: each local pod's interface and addresses");
    }
    for (const Dir& d : kDirs) {
      for (const Family& f : kFamilies) {
        const std::string a = f.addr_type;
        const std::string p = std::string(d.prefix) + "_";
        const std::string s = std::string("_") + f.suffix;
        Add(p + "isolated" + s, a, false, false, std::string("local pods isolated for ") + d.name);
        Add(p + "denied" + s, a, false, true,
            std::string("local pods isolated for ") + d.name + "; counts denied new connections");
        Add(p + "allowed" + s, a, false, true,
            std::string("local pods isolated for ") + d.name + "; counts new connections a rule allowed");
        Add(p + "np" + s, a + " : verdict", false, false,
            std::string("isolated pod : its NetworkPolicy group's chain (") + d.name + ")");
        for (const Tier& t : kTiers) {
          Add(p + t.set + s, a + " : verdict", false, false,
              std::string("pod : its class's chain of the ") + t.title + " tier (ClusterNetworkPolicy)");
          Add(p + t.set + "_accepted" + s, a, false, true,
              std::string("local pods with ") + t.title +
                  " tier decisions; counts new connections the tier accepted");
          Add(p + t.set + "_denied" + s, a, false, true,
              std::string("local pods with ") + t.title +
                  " tier decisions; counts new connections the tier denied");
        }
      }
    }
  }

  NftRuleset Run() {
    GroupIds assigned;
    if (groups_ == nullptr) {
      assigned = AssignGroups(program_);
      groups_ = &assigned;
    }
    NftRuleset r;
    r.table_comment = "netpol: NetworkPolicy for this node's pods; managed by netpol, do not edit";
    Layout();
    for (const auto& [name, pod] : program_.pods) {
      Pod(name, pod);
      EmitBoxes();
    }
    r.sets = std::move(sets_);
    r.chains = Chains();
    r.classes = RenderTierClasses(program_);
    for (const auto& [key, id] : groups_->ids) {
      TierClass group = RenderGroup(key, id, program_, options_);
      std::string chain = group.chain;
      r.classes.emplace(std::move(chain), std::move(group));
    }
    groups_ = nullptr;
    return r;
  }

  // One group's elements, per set.
  PodElements RunGroup(const GroupKey& key, uint32_t id) {
    PodElements out;
    pod_sink_ = &out;
    const Family& f = key.family == IpFamily::kV4 ? kFamilies[0] : kFamilies[1];
    const std::string chain = GroupChain(key.ingress, key.family, id);
    for (const Allowance& a : key.allow) Allow(chain + "_", f, a);
    EmitBoxes();
    pod_sink_ = nullptr;
    std::erase_if(out, [](const auto& set) { return set.second.empty(); });
    return out;
  }

  // A group's chain: its six lookups, then the pod's counted, logged drop
  // (a pod reaches it only when isolated: nothing falls through).
  std::string GroupDefinition(const GroupKey& key, uint32_t id) const {
    const Dir& d = key.ingress ? kDirs[0] : kDirs[1];
    const Family& f = key.family == IpFamily::kV4 ? kFamilies[0] : kFamilies[1];
    const std::string chain = GroupChain(key.ingress, key.family, id);
    const std::string peer = std::string(f.match) + " " + d.peer_side;
    const std::string allowed = std::string(" goto ") + d.name + "_allowed_" + f.suffix + "\n";
    std::string c = "chain " + chain + " {\n";
    c += "\t\t" + peer + " . meta l4proto . th dport @" + chain + "_exact" + allowed;
    c += "\t\t" + peer + " . meta l4proto @" + chain + "_proto" + allowed;
    c += "\t\t" + peer + " @" + chain + "_all" + allowed;
    c += "\t\tmeta l4proto . th dport @" + chain + "_anyexact" + allowed;
    c += "\t\tmeta l4proto @" + chain + "_anyproto" + allowed;
    c += "\t\t" + peer + " . meta l4proto . th dport @" + chain + "_ranges" + allowed;
    return c + Deny(d, f, "isolated, and no policy allows it") + "\t}";
  }

  // The per-pod counter, NFLOG and drop that end an isolated pod's check.
  std::string Deny(const Dir& d, const Family& f, const std::string& why) const {
    const std::string pod = std::string(f.match) + " " + d.pod_side;
    return "\t\t" + pod + " @" + d.prefix + "_denied_" + f.suffix +
           " comment \"count it\"\n\t\tlog prefix \"netpol " + d.name + " deny \" group " +
           std::to_string(options_.log_group) + " drop comment \"" + why + "\"\n";
  }

  // The elements one pod contributes, per set.
  PodElements RunPod(const std::string& name, const policy::LocalPod& pod) {
    GroupIds assigned;
    if (groups_ == nullptr) {
      assigned = AssignGroups(program_);
      groups_ = &assigned;
    }
    PodElements out;
    pod_sink_ = &out;  // straight into the result: no set layout needed
    Pod(name, pod);
    EmitBoxes();
    pod_sink_ = nullptr;
    std::erase_if(out, [](const auto& set) { return set.second.empty(); });  // looked up, never filled
    groups_ = nullptr;
    return out;
  }

 private:
  void Add(std::string name, std::string type, bool interval, bool counter, std::string comment) {
    index_[name] = sets_.size();
    sets_.push_back({std::move(name), std::move(type), interval, counter, std::move(comment), {}});
  }

  using Members = std::map<Element, std::string>;  // element -> origin

  // Where a set's elements go: the pod's own map when rendering one pod.
  Members& Target(const std::string& set) {
    if (pod_sink_ != nullptr) return (*pod_sink_)[set];
    return sets_[index_.at(set)].elements;
  }

  void Put(const std::string& set, Element element, const std::string& origin) {
    Target(set).emplace(std::move(element), origin);
  }

  void Pod(const std::string& name, const policy::LocalPod& pod) {
    const Field iface = Field::Ifname(pod.interface);
    if (!pod.interface.empty()) Put("pod_ifaces", Element::Of({iface}), name);
    for (const IpAddress& ip : pod.ips) {
      const Element address = Element::Of({Field::Address(ip)});
      const Family& f = ip.is_v4() ? kFamilies[0] : kFamilies[1];
      const std::string s = std::string("_") + f.suffix;
      // Anti-spoofing needs the pod's interface; without one (unknown) the
      // address is not claimed, or the pod's own packets would be dropped. A
      // reserved pod's address is claimed with no interface allowed to use
      // it: nothing sends from it before the pod is wired.
      if (!pod.interface.empty() || pod.reserved) Put("pods" + s, address, name);
      if (!pod.interface.empty() && !pod.reserved)
        Put("pod_src" + s, Element::Of({iface, Field::Address(ip)}), name);
      for (const Dir& d : kDirs) {
        const DirectionProgram& dp = d.prefix[0] == 'i' ? pod.ingress : pod.egress;
        Decisions(d, f, ip, kTiers[0], dp.admin, name);
        Decisions(d, f, ip, kTiers[1], dp.baseline, name);
        if (!dp.isolated) continue;
        const std::string p = std::string(d.prefix) + "_";
        Put(p + "isolated" + s, address, name);
        Put(p + "denied" + s, address, name);
        Put(p + "allowed" + s, address, name);
        // Its group's chain, or straight to the allowed chain when a rule
        // lets everything through (that rule named).
        const std::optional<GroupKey> group = GroupOf(pod, d.prefix[0] == 'i', f.family);
        if (group) {
          Put(p + "np" + s,
              Element(address).Goto(GroupChain(group->ingress, f.family, groups_->ids.at(*group))), name);
        } else {
          const auto all = std::find_if(dp.allow.begin(), dp.allow.end(),
                                        [](const Allowance& a) { return !a.peers && a.ports.empty(); });
          Put(p + "np" + s, Element(address).Goto(std::string(d.name) + "_allowed_" + f.suffix), all->origin);
        }
      }
    }
  }

  // A pod address with decisions in a tier: its element in the tier's
  // dispatch map, naming the class chain that holds the decisions (shared by
  // every pod with equal ones), and its elements in the tier's counting sets.
  void Decisions(const Dir& d, const Family& f, const IpAddress& ip, const Tier& t,
                 const policy::TierDecisions& tier, const std::string& name) {
    if (!tier.has(f.family)) return;
    const std::string p = std::string(d.prefix) + "_" + t.set;
    const std::string s = std::string("_") + f.suffix;
    const Element pod = Element::Of({Field::Address(ip)});
    Put(p + s, Element(pod).Goto(ClassChain(d, t, f, tier.digest(f.family))), name);
    Put(p + "_accepted" + s, pod, name);
    Put(p + "_denied" + s, pod, name);
  }

  // One allowance of a group, as elements of its sets (named `<chain>_exact`...).
  void Allow(const std::string& g, const Family& f, const Allowance& a) {
    const std::string& origin = a.origin;
    const bool all_ports = a.ports.empty();
    if (!a.peers) {
      // (Everything allowed, no peers and no ports, has no group.)
      for (const PortSpan& span : a.ports) {
        const Field proto = Field::Proto(ProtoNumber(span.protocol));
        if (span.first == 1 && span.last == 65535) {
          Put(g + "anyproto", Element::Of({proto}), origin);
        } else if (span.first == span.last) {
          Put(g + "anyexact", Element::Of({proto, Field::Port(span.first)}), origin);
        } else {
          Box(g + "ranges", f, AnyAddress(f),
              {Value128{ProtoNumber(span.protocol)}, Value128{ProtoNumber(span.protocol)}},
              {span.first, span.last}, origin);
        }
      }
      return;
    }
    const AddressSet& peers = program_.set(*a.peers);
    // Per peer address, one element per port span: the sets are looked up
    // once, not per element (a pod may have tens of thousands of elements).
    Members* all = all_ports ? &Target(g + "all") : nullptr;
    std::vector<Members*> targets;  // per span; null: a range (box)
    for (const PortSpan& span : a.ports) {
      if (span.first == 1 && span.last == 65535) {
        targets.push_back(&Target(g + "proto"));
      } else if (span.first == span.last) {
        targets.push_back(&Target(g + "exact"));
      } else {
        targets.push_back(nullptr);
      }
    }
    for (const IpAddress& peer : peers.addresses) {
      if (peer.family() != f.family) continue;
      const Field address = Field::Address(peer);
      if (all_ports) {
        all->emplace(Element::Of({address}), origin);
        continue;
      }
      for (size_t k = 0; k < a.ports.size(); ++k) {
        const PortSpan& span = a.ports[k];
        const Field proto = Field::Proto(ProtoNumber(span.protocol));
        if (targets[k] != nullptr) {
          targets[k]->emplace(span.first == span.last ? Element::Of({address, proto, Field::Port(span.first)})
                                                      : Element::Of({address, proto}),
                              origin);
        } else {
          Box(g + "ranges", f, {Value(peer), Value(peer)},
              {Value128{ProtoNumber(span.protocol)}, Value128{ProtoNumber(span.protocol)}},
              {span.first, span.last}, origin);
        }
      }
    }
    for (const AddressRange& range : peers.ranges) {
      if (range.first.family() != f.family) continue;
      const Span addresses{Value(range.first), Value(range.last)};
      if (all_ports) {
        Box(g + "ranges", f, addresses, {0, 255}, {0, 65535}, origin);
        continue;
      }
      for (const PortSpan& span : a.ports) {
        Box(g + "ranges", f, addresses,
            {Value128{ProtoNumber(span.protocol)}, Value128{ProtoNumber(span.protocol)}},
            {span.first, span.last}, origin);
      }
    }
  }

  // Interval sets reject overlapping elements, so boxes (peer range x protocol
  // range x port range) are collected per pod and emitted as disjoint boxes
  // covering the same union (EmitBoxes).
  __extension__ typedef unsigned __int128 Value128;  // wide enough for an IPv6 address
  struct Span {
    Value128 first;
    Value128 last;
  };
  struct BoxRec {
    Span dims[3];
    std::string origin;
  };
  struct BoxGroup {
    const Family* family;
    std::vector<BoxRec> boxes;
  };

  static Value128 Value(const IpAddress& ip) {
    return ip.is_v4() ? Value128{ip.v4()} : ((Value128{ip.high()} << 64) | ip.low());
  }
  static Span AnyAddress(const Family& f) {
    return {0, f.family == IpFamily::kV4 ? Value128{0xffffffffULL} : ~Value128{0}};
  }
  void Box(const std::string& set, const Family& f, Span addresses, Span protos, Span ports,
           const std::string& origin) {
    BoxGroup& group = boxes_[set];
    group.family = &f;
    group.boxes.push_back({{addresses, protos, ports}, origin});
  }

  void EmitBoxes() {
    for (const auto& [key, group] : boxes_) {
      EmitGroup(key, group);
    }
    boxes_.clear();
  }

  // Sweeps the address dimension: each elementary address interval (between
  // consecutive box starts and ends) is covered by the same boxes throughout,
  // and is cut into protocol and port pieces by those boxes alone. So what an
  // address interval renders depends only on the boxes covering it: a single
  // peer address outside every range renders the same whatever other peers
  // exist (RenderPodMemberChange relies on it), and the work is the sum of the
  // overlaps instead of boxes squared.
  void EmitGroup(const std::string& set, const BoxGroup& group) {
    const Family& f = *group.family;
    const std::vector<BoxRec>& boxes = group.boxes;
    const Value128 max[3] = {AnyAddress(f).last, 255, 65535};
    std::vector<Value128> address_cuts;
    for (const BoxRec& b : boxes) {
      address_cuts.push_back(b.dims[0].first);
      if (b.dims[0].last < max[0]) address_cuts.push_back(b.dims[0].last + 1);
    }
    std::sort(address_cuts.begin(), address_cuts.end());
    address_cuts.erase(std::unique(address_cuts.begin(), address_cuts.end()), address_cuts.end());
    std::vector<size_t> by_start(boxes.size());
    for (size_t i = 0; i < boxes.size(); ++i) by_start[i] = i;
    std::stable_sort(by_start.begin(), by_start.end(),
                     [&](size_t x, size_t y) { return boxes[x].dims[0].first < boxes[y].dims[0].first; });
    std::vector<size_t> active;  // boxes covering the current address interval, in insertion order
    size_t next = 0;
    for (size_t a = 0; a < address_cuts.size(); ++a) {
      const Value128 first = address_cuts[a];
      const Value128 last = a + 1 < address_cuts.size() ? address_cuts[a + 1] - 1 : max[0];
      std::erase_if(active, [&](size_t i) { return boxes[i].dims[0].last < first; });
      bool grew = false;
      for (; next < by_start.size() && boxes[by_start[next]].dims[0].first <= first; ++next) {
        active.push_back(by_start[next]);
        grew = true;
      }
      if (grew) std::sort(active.begin(), active.end());
      if (active.empty()) continue;
      const Field addresses{f.family == IpFamily::kV4 ? FieldKind::kIpv4 : FieldKind::kIpv6, first, last, {}};
      std::vector<Value128> cuts[3];
      for (int d = 1; d < 3; ++d) {
        for (const size_t i : active) {
          cuts[d].push_back(boxes[i].dims[d].first);
          if (boxes[i].dims[d].last < max[d]) cuts[d].push_back(boxes[i].dims[d].last + 1);
        }
        std::sort(cuts[d].begin(), cuts[d].end());
        cuts[d].erase(std::unique(cuts[d].begin(), cuts[d].end()), cuts[d].end());
      }
      const auto end_of = [&](int d, size_t i) {
        return i + 1 < cuts[d].size() ? cuts[d][i + 1] - 1 : max[d];
      };
      // For each protocol interval, runs of covered port intervals.
      for (size_t p = 0; p < cuts[1].size(); ++p) {
        const auto covering = [&](size_t q) -> const BoxRec* {
          for (const size_t i : active) {
            const BoxRec& b = boxes[i];
            if (b.dims[1].first <= cuts[1][p] && cuts[1][p] <= b.dims[1].last &&
                b.dims[2].first <= cuts[2][q] && cuts[2][q] <= b.dims[2].last) {
              return &b;
            }
          }
          return nullptr;
        };
        size_t run_start = 0;
        const BoxRec* run_origin = nullptr;
        for (size_t q = 0; q <= cuts[2].size(); ++q) {
          const BoxRec* cover = q < cuts[2].size() ? covering(q) : nullptr;
          if (cover != nullptr && run_origin == nullptr) {
            run_start = q;
            run_origin = cover;
          } else if (cover == nullptr && run_origin != nullptr) {
            const Field protocols{FieldKind::kProto, cuts[1][p], end_of(1, p), {}};
            const Field ports{FieldKind::kPort, cuts[2][run_start], end_of(2, q - 1), {}};
            Put(set, Element::Of({addresses, protocols, ports}, true), run_origin->origin);
            run_origin = nullptr;
          }
        }
      }
    }
  }

  std::vector<std::string> Chains() const {
    std::vector<std::string> chains;
    const std::string log = std::to_string(options_.log_group);
    // Anti-spoofing runs on every packet, so its common case costs one lookup:
    // a pod sending from its own interface and address goes straight on. What
    // is left is IPv6 neighbour discovery (link-local or unspecified sources,
    // which must pass), a pod using an address not its own, a pod's address
    // arriving from anywhere else, and traffic that involves no pod source.
    const auto spoof = [](const std::string& next) {
      std::string out;
      for (const Family& f : kFamilies) {
        out += std::string("\t\tiifname . ") + f.match + " saddr @pod_src_" + f.suffix + " goto " + next +
               (f.family == IpFamily::kV4 ? " comment \"a pod sending from its own address\"" : "") + "\n";
      }
      out +=
          "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
          "mld-listener-report, "
          "mld2-listener-report } iifname @pod_ifaces ip6 saddr { ::, fe80::/10 } accept comment "
          "\"IPv6 neighbour discovery from pods\"\n"
          "\t\tiifname @pod_ifaces counter drop comment \"anti-spoofing: a pod sends only from its own "
          "addresses\"\n";
      for (const Family& f : kFamilies) {
        out += std::string("\t\t") + f.match + " saddr @pods_" + f.suffix +
               " counter drop comment \"anti-spoofing: only a pod uses its addresses\"\n";
      }
      return out + "\t\tgoto " + next + "\n";
    };
    const std::string conntrack =
        "\t\tct state established,related accept comment \"replies and ongoing connections\"\n"
        "\t\tct state invalid drop\n";
    chains.push_back("chain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n" +
                     spoof("forward_checked") + "\t}");
    chains.push_back("chain forward_checked {\n" + conntrack +
                     "\t\tmeta nfproto ipv4 jump egress_v4\n\t\tmeta nfproto ipv4 goto ingress_v4\n"
                     "\t\tmeta nfproto ipv6 jump egress_v6\n\t\tmeta nfproto ipv6 goto ingress_v6\n\t}");
    chains.push_back("chain input {\n\t\ttype filter hook input priority filter; policy accept;\n" +
                     spoof("input_checked") + "\t}");
    // Whatever comes into this node is judged as the egress of the local pod
    // that sent it, found by its source address as in the forward chain (a
    // source that is no local pod matches no element and is accepted). Not by
    // the pod's interface: in chained mode it is another plugin's bridge, and
    // a pod's connection to its own node went unjudged.
    chains.push_back("chain input_checked {\n" + conntrack +
                     "\t\tmeta nfproto ipv4 goto egress_v4 comment \"pods to this node: their egress\"\n"
                     "\t\tmeta nfproto ipv6 goto egress_v6\n\t}");
    for (const Dir& d : kDirs) {
      for (const Family& f : kFamilies) {
        const std::string m = f.match;
        const std::string pod = m + " " + d.pod_side;
        const std::string p = std::string(d.prefix) + "_";
        const std::string s = std::string("_") + f.suffix;
        // The tiers (docs/SEMANTICS.md §21): a pod with Admin decisions goes to
        // its class's chain (one hash lookup), which decides or comes back to
        // the NetworkPolicy chain; a pod no NetworkPolicy isolates goes on to
        // its Baseline class chain, then returns (allowed).
        chains.push_back(std::string("chain ") + d.name + "_" + f.suffix + " {\n\t\t" + pod + " vmap @" + p +
                         "admin" + s + " comment \"the Admin tier: the pod's class chain\"\n\t\tgoto " +
                         d.name + "_np_" + f.suffix + "\n\t}");
        std::string c = std::string("chain ") + d.name + "_np_" + f.suffix + " {\n";
        c += "\t\t" + pod + " != @" + p + "isolated" + s + " goto " + d.name + "_baseline_" + f.suffix +
             " comment \"not isolated by NetworkPolicy: the Baseline tier\"\n";
        c += "\t\t" + pod + " vmap @" + p + "np" + s +
             " comment \"isolated: the pod's NetworkPolicy group\"\n";
        c += Deny(d, f, "isolated, and in no group (never: fails closed)") + "\t}";
        chains.push_back(std::move(c));
        // The lookup counts the connection on the pod's element; falling off
        // the end returns as the allowance's `return` did.
        std::string count = std::string("chain ") + d.name + "_allowed_" + f.suffix + " {\n\t\t" + pod +
                            " @" + p + "allowed" + s + " comment \"a rule allowed it: count it\"\n";
        if (options_.log_allowed) {
          count += "\t\tlimit rate " + std::to_string(kAllowedLogRate) + "/second log prefix \"netpol " +
                   d.name + " allow \" group " + log + "\n";
        }
        chains.push_back(count + "\t}");
        chains.push_back(std::string("chain ") + d.name + "_baseline_" + f.suffix + " {\n\t\t" + pod +
                         " vmap @" + p + "base" + s +
                         " comment \"the Baseline tier: the pod's class chain\"\n\t}");
        for (const Tier& t : kTiers) {
          const std::string tier = t.set[0] == 'a' ? "admin" : "baseline";
          // Each counts the connection on the pod's element first (a lookup
          // that matches or not, and decides nothing).
          std::string accept = "chain " + TierChain(d, t, policy::TierAction::kAccept, f) + " {\n\t\t" + pod +
                               " @" + p + t.set + "_accepted" + s + " comment \"count it\"\n";
          if (options_.log_allowed) {
            accept += "\t\tlimit rate " + std::to_string(kAllowedLogRate) + "/second log prefix \"netpol " +
                      d.name + " " + tier + " allow \" group " + log + "\n";
          }
          chains.push_back(accept + "\t}");
          chains.push_back(
              "chain " + TierChain(d, t, policy::TierAction::kDeny, f) + " {\n\t\t" + pod + " @" + p + t.set +
              "_denied" + s + " comment \"count it\"\n\t\tlog prefix \"netpol " + d.name + " " + tier +
              " deny \" group " + log + " drop comment \"denied by a ClusterNetworkPolicy rule of the " +
              t.title + " tier\"\n\t}");
        }
      }
    }
    return chains;
  }

  const policy::NodeProgram& program_;
  NftOptions options_;
  std::vector<NftSet> sets_;
  std::map<std::string, size_t> index_;
  const GroupIds* groups_;
  std::map<std::string, BoxGroup> boxes_;  // set -> boxes
  PodElements* pod_sink_ = nullptr;        // RunPod and RunGroup collect here instead of in sets_
};

}  // namespace

std::string ElementComment(const std::string& origin) {
  return "comment " + Comment(origin);
}

std::string CommentedElement(const Element& element, const std::string& origin) {
  const std::string key = element.KeyText();
  return key + " " + ElementComment(origin) + element.Text().substr(key.size());
}

void ElementEdits::Delete(const std::string& set, const Element& element) {
  items_[set].first.push_back(element.KeyOnly());
}

void ElementEdits::Add(const std::string& set, const Element& element, const std::string& origin) {
  items_[set].second.emplace_back(element, origin);
}

std::vector<ElementEdit> ElementEdits::List() const {
  std::vector<ElementEdit> out;
  size_t n = 0;
  for (const auto& [set, edit] : items_) n += edit.first.size() + edit.second.size();
  out.reserve(n);
  for (const auto& [set, edit] : items_) {
    for (const Element& element : edit.first) out.push_back({set, &element, {}, false});
  }
  for (const auto& [set, edit] : items_) {
    for (const auto& [element, origin] : edit.second) out.push_back({set, &element, origin, true});
  }
  return out;
}

std::string CommentText(const std::string& origin) {
  return origin.size() <= 120 ? origin : origin.substr(0, 117) + "...";
}

std::vector<NftSet> SetLayout(const NftOptions& options) {
  return RenderRuleset(policy::NodeProgram{}, options).sets;
}

std::string ElementEdits::Commands() const {
  const std::string table = std::string(kTableFamily) + " " + kTableName;
  std::string out;
  for (const auto& [set, edit] : items_) {
    if (edit.first.empty()) continue;
    out += "delete element " + table + " " + set + " { ";
    for (size_t i = 0; i < edit.first.size(); ++i) {
      out += (i ? ", " : "");
      out += edit.first[i].KeyText();
    }
    out += " }\n";
  }
  for (const auto& [set, edit] : items_) {
    if (edit.second.empty()) continue;
    out += "add element " + table + " " + set + " { ";
    for (size_t i = 0; i < edit.second.size(); ++i) {
      out += (i ? ", " : "") + CommentedElement(edit.second[i].first, edit.second[i].second);
    }
    out += " }\n";
  }
  return out;
}

std::set<std::string> TierClassChains(const policy::NodeProgram& program) {
  std::set<std::string> out;
  ForEachClass(program, [&](const Dir&, const Tier&, const Family&, const policy::TierDecisions&,
                            const std::string& chain) { out.insert(chain); });
  return out;
}

std::map<std::string, TierClass> RenderTierClasses(const policy::NodeProgram& program,
                                                   const std::function<bool(const std::string&)>& wanted) {
  std::map<std::string, TierClass> out;
  ForEachClass(program, [&](const Dir& d, const Tier& t, const Family& f, const policy::TierDecisions& tier,
                            const std::string& chain) {
    if (!wanted || wanted(chain)) out.emplace(chain, RenderClass(d, t, f, tier));
  });
  return out;
}

namespace {

constexpr const char* kGroupSets[] = {"exact", "proto", "all", "anyexact", "anyproto", "ranges"};

}  // namespace

std::string GroupChain(bool ingress, IpFamily family, uint32_t id) {
  return std::string(ingress ? "in" : "eg") + "_np_g" + std::to_string(id) +
         (family == IpFamily::kV4 ? "_v4" : "_v6");
}

std::optional<uint32_t> GroupIdOf(std::string_view chain) {
  // "in_np_g" + decimal digits + "_v4"
  if (!chain.starts_with("in_np_g") && !chain.starts_with("eg_np_g")) return std::nullopt;
  std::string_view digits = chain.substr(7);
  if (!digits.ends_with("_v4") && !digits.ends_with("_v6")) return std::nullopt;
  digits.remove_suffix(3);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return std::nullopt;
  uint32_t id = 0;
  for (const char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    id = id * 10 + static_cast<uint32_t>(ch - '0');
  }
  return id;
}

std::vector<std::string> GroupSetNames(const std::string& chain) {
  std::vector<std::string> out;
  for (const char* set : kGroupSets) out.push_back(chain + "_" + set);
  return out;
}

std::optional<GroupKey> GroupOf(const policy::LocalPod& pod, bool ingress, IpFamily family) {
  const DirectionProgram& d = ingress ? pod.ingress : pod.egress;
  if (!d.isolated) return std::nullopt;
  if (std::none_of(pod.ips.begin(), pod.ips.end(),
                   [&](const IpAddress& ip) { return ip.family() == family; }))
    return std::nullopt;
  if (std::any_of(d.allow.begin(), d.allow.end(),
                  [](const Allowance& a) { return !a.peers && a.ports.empty(); }))
    return std::nullopt;
  return GroupKey{ingress, family, d.allow};
}

GroupIds AssignGroups(const policy::NodeProgram& program, const GroupIds* previous,
                      const PreviousGroup& had) {
  // Each group's pods, the groups in the order their first pod comes.
  std::map<GroupKey, std::vector<const std::string*>> pods_of;
  std::vector<const GroupKey*> order;
  for (const auto& [name, pod] : program.pods) {
    for (const Family& f : kFamilies) {
      for (const bool ingress : {true, false}) {
        std::optional<GroupKey> key = GroupOf(pod, ingress, f.family);
        if (!key) continue;
        auto [it, fresh] = pods_of.try_emplace(std::move(*key));
        if (fresh) order.push_back(&it->first);
        it->second.push_back(&name);
      }
    }
  }
  GroupIds out;
  out.next = previous != nullptr ? previous->next : 1;
  std::set<std::string> taken;  // chains given out
  const auto give = [&](const GroupKey& key, uint32_t id) {
    out.ids.emplace(key, id);
    taken.insert(GroupChain(key.ingress, key.family, id));
    out.next = std::max(out.next, id + 1);
  };
  if (previous != nullptr) {
    for (const GroupKey* key : order) {
      if (const auto it = previous->ids.find(*key); it != previous->ids.end()) give(*key, it->second);
    }
  }
  if (had) {
    // (pods, group, id) for every id a group's pods had, most pods first.
    struct Vote {
      size_t pods;
      size_t group;
      uint32_t id;
    };
    std::vector<Vote> votes;
    for (size_t g = 0; g < order.size(); ++g) {
      const GroupKey& key = *order[g];
      if (out.ids.contains(key)) continue;
      std::map<uint32_t, size_t> count;
      for (const std::string* pod : pods_of.at(key)) {
        if (const std::optional<uint32_t> id = had(*pod, key)) ++count[*id];
      }
      for (const auto& [id, n] : count) votes.push_back({n, g, id});
    }
    std::sort(votes.begin(), votes.end(), [](const Vote& a, const Vote& b) {
      return a.pods != b.pods ? a.pods > b.pods : (a.group != b.group ? a.group < b.group : a.id < b.id);
    });
    for (const Vote& v : votes) {
      const GroupKey& key = *order[v.group];
      if (out.ids.contains(key) || taken.contains(GroupChain(key.ingress, key.family, v.id))) continue;
      give(key, v.id);
    }
  }
  for (const GroupKey* key : order) {
    if (!out.ids.contains(*key)) give(*key, out.next);
  }
  return out;
}

std::optional<std::string> TierClassOf(std::string_view name) {
  for (const std::string_view suffix : {"_port", "_all"}) {
    if (name.ends_with(suffix)) {
      if (auto chain = TierClassOf(name.substr(0, name.size() - suffix.size()))) return chain;
    }
  }
  for (const char* set : kGroupSets) {
    const std::string suffix = std::string("_") + set;
    if (name.ends_with(suffix) && GroupIdOf(name.substr(0, name.size() - suffix.size())))
      return std::string(name.substr(0, name.size() - suffix.size()));
  }
  if (GroupIdOf(name)) return std::string(name);
  // "in_admin_c" + 16 hex digits + "_v4"
  std::string_view rest = name;
  if (!rest.starts_with("in_") && !rest.starts_with("eg_")) return std::nullopt;
  rest.remove_prefix(3);
  if (rest.starts_with("admin_c")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("base_c")) {
    rest.remove_prefix(6);
  } else {
    return std::nullopt;
  }
  if (rest.size() != 16 + 3 || (rest.substr(16) != "_v4" && rest.substr(16) != "_v6")) return std::nullopt;
  for (const char ch : rest.substr(0, 16)) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return std::nullopt;
  }
  return std::string(name);
}

std::string ClassCommands(const std::vector<const TierClass*>& added,
                          const std::vector<std::string>& removed) {
  std::string out;
  if (!added.empty()) {
    out += std::string("table ") + kTableFamily + " " + kTableName + " {\n";
    for (const TierClass* c : added) {
      for (const NftSet& map : c->maps) out += SetDefinition(map);
    }
    for (const TierClass* c : added) out += "\t" + c->definition + "\n";
    out += "}\n";
  }
  const std::string table = std::string(kTableFamily) + " " + kTableName;
  // The chain first: its rules hold the sets.
  for (const std::string& chain : removed) {
    out += "delete chain " + table + " " + chain + "\n";
    if (GroupIdOf(chain)) {
      for (const std::string& set : GroupSetNames(chain)) out += "delete set " + table + " " + set + "\n";
    } else {
      out += "delete map " + table + " " + chain + "_port\ndelete map " + table + " " + chain + "_all\n";
    }
  }
  return out;
}

NftRuleset RenderRuleset(const policy::NodeProgram& program, const NftOptions& options,
                         const GroupIds* groups) {
  return Renderer(program, options, groups).Run();
}

PodElements RenderPod(const std::string& name, const policy::LocalPod& pod,
                      const policy::NodeProgram& program, const NftOptions& options, const GroupIds* groups) {
  return Renderer(program, options, groups).RunPod(name, pod);
}

PodElements RenderGroupElements(const GroupKey& key, uint32_t id, const policy::NodeProgram& program) {
  return Renderer(program, {}).RunGroup(key, id);
}

TierClass RenderGroup(const GroupKey& key, uint32_t id, const policy::NodeProgram& program,
                      const NftOptions& options, bool elements) {
  Renderer renderer(program, options);
  TierClass c;
  c.chain = GroupChain(key.ingress, key.family, id);
  c.definition = renderer.GroupDefinition(key, id);
  const std::string a = key.family == IpFamily::kV4 ? "ipv4_addr" : "ipv6_addr";
  const std::string d = key.ingress ? "ingress" : "egress";
  const std::pair<std::string, std::string> shapes[] = {
      {a + " . inet_proto . inet_service", "peer . protocol . port"},
      {a + " . inet_proto", "peer . protocol (every port)"},
      {a, "peer (every protocol and port)"},
      {"inet_proto . inet_service", "protocol . port (any peer)"},
      {"inet_proto", "protocol (any peer, every port)"},
      {a + " . inet_proto . inet_service", "peer range . protocol . port range (ipBlocks, endPort)"}};
  PodElements rendered;
  if (elements) rendered = renderer.RunGroup(key, id);
  for (size_t i = 0; i < std::size(kGroupSets); ++i) {
    NftSet set{c.chain + "_" + kGroupSets[i],
               shapes[i].first,
               i + 1 == std::size(kGroupSets),
               false,
               "a NetworkPolicy group's " + d + " allowances: " + shapes[i].second,
               {}};
    if (const auto it = rendered.find(set.name); it != rendered.end()) set.elements = std::move(it->second);
    c.maps.push_back(std::move(set));
  }
  return c;
}

namespace {

// Port spans an allowance with peers renders as boxes (interval elements):
// those are decomposed per group as a whole and cannot be edited by address.
bool HasPortRange(const Allowance& a) {
  return std::any_of(a.ports.begin(), a.ports.end(), [](const PortSpan& s) {
    return s.first != s.last && !(s.first == 1 && s.last == 65535);
  });
}

using AllowanceKey = std::pair<std::string, std::vector<PortSpan>>;  // origin, ports

// Allowances by (origin, ports); nullopt when two share a key (no pairing).
std::optional<std::map<AllowanceKey, const Allowance*>> ByKey(const std::vector<Allowance>& allow) {
  std::map<AllowanceKey, const Allowance*> out;
  for (const Allowance& a : allow) {
    if (!out.emplace(AllowanceKey{a.origin, a.ports}, &a).second) return std::nullopt;
  }
  return out;
}

// A group's peer allowances with every peer set cut down to `only` (sorted),
// in a program of its own that keeps the set ids (so allowances keep their
// order and the first rule to render an element is the one a whole rendering
// would name).
struct Restricted {
  policy::NodeProgram program;
  GroupKey key;
};
Restricted Restrict(const GroupKey& key, const policy::NodeProgram& program,
                    const std::vector<IpAddress>& only) {
  Restricted r;
  r.key.ingress = key.ingress;
  r.key.family = key.family;
  for (const Allowance& a : key.allow) {
    if (!a.peers) continue;
    if (!r.program.sets.contains(*a.peers)) {
      policy::AddressSet s;
      const std::vector<IpAddress>& all = program.set(*a.peers).addresses;
      for (const IpAddress& ip : only) {
        if (std::binary_search(all.begin(), all.end(), ip)) s.addresses.push_back(ip);
      }
      r.program.sets.emplace(*a.peers, std::make_shared<const policy::AddressSet>(std::move(s)));
    }
    r.key.allow.push_back(a);
  }
  return r;
}

// Whether an allowance renders only hash-set elements: no port range, no
// peer range. Interval elements are cut per group from all its ranges together.
bool HashOnly(const Allowance& a, const policy::NodeProgram& program) {
  return !HasPortRange(a) && (!a.peers || program.set(*a.peers).ranges.empty());
}

// `from` without the allowances `minus` has (both sorted).
std::vector<Allowance> Without(const std::vector<Allowance>& from, const std::vector<Allowance>& minus) {
  std::vector<Allowance> out;
  std::set_difference(from.begin(), from.end(), minus.begin(), minus.end(), std::back_inserter(out));
  return out;
}

}  // namespace

std::optional<PodEdits> RenderGroupMemberChange(const GroupKey& before,
                                                const policy::NodeProgram& before_program,
                                                const GroupKey& after,
                                                const policy::NodeProgram& after_program, uint32_t id) {
  if (before.ingress != after.ingress || before.family != after.family ||
      before.allow.size() != after.allow.size())
    return std::nullopt;
  std::vector<IpAddress> changed;  // peers gained or lost by some allowance
  const auto bk = ByKey(before.allow);
  const auto ak = ByKey(after.allow);
  if (!bk || !ak) return std::nullopt;
  for (const auto& [key, was] : *bk) {
    const auto it = ak->find(key);
    if (it == ak->end()) return std::nullopt;
    const Allowance& now = *it->second;
    if (was->peers.has_value() != now.peers.has_value()) return std::nullopt;
    if (!was->peers || *was->peers == *now.peers) continue;
    const policy::AddressSet& old_set = before_program.set(*was->peers);
    const policy::AddressSet& new_set = after_program.set(*now.peers);
    if (old_set.ranges != new_set.ranges) return std::nullopt;
    std::set_symmetric_difference(old_set.addresses.begin(), old_set.addresses.end(),
                                  new_set.addresses.begin(), new_set.addresses.end(),
                                  std::back_inserter(changed));
  }
  std::erase_if(changed, [&](const IpAddress& ip) { return ip.family() != after.family; });
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  // An interval element covering a changed address would be cut differently:
  // any range among the group's peers (or a port range open to every peer)
  // that covers one sends the group to a whole rendering.
  for (const auto* key : {&before, &after}) {
    const policy::NodeProgram& program = key == &before ? before_program : after_program;
    for (const Allowance& a : key->allow) {
      if (!a.peers) {
        if (HasPortRange(a) && !changed.empty()) return std::nullopt;
        continue;
      }
      for (const policy::AddressRange& r : program.set(*a.peers).ranges) {
        const auto in = std::lower_bound(changed.begin(), changed.end(), r.first);
        if (in != changed.end() && !(r.last < *in)) return std::nullopt;
      }
    }
  }
  if (changed.empty()) return PodEdits{};
  const Restricted was = Restrict(before, before_program, changed);
  const Restricted now = Restrict(after, after_program, changed);
  return DiffElements(RenderGroupElements(was.key, id, was.program),
                      RenderGroupElements(now.key, id, now.program));
}

std::optional<PodEdits> RenderGroupAllowanceChange(const GroupKey& before,
                                                   const policy::NodeProgram& before_program,
                                                   const GroupKey& after,
                                                   const policy::NodeProgram& after_program, uint32_t id,
                                                   const InstalledLookup& installed) {
  if (before.ingress != after.ingress || before.family != after.family) return std::nullopt;
  // The allowances gained and lost, each rendered as a group of its own.
  GroupKey gained{after.ingress, after.family, Without(after.allow, before.allow)};
  GroupKey lost{before.ingress, before.family, Without(before.allow, after.allow)};
  std::vector<IpAddress> lost_peers;
  for (const Allowance& x : gained.allow) {
    if (!HashOnly(x, after_program)) return std::nullopt;
  }
  for (const Allowance& x : lost.allow) {
    if (!HashOnly(x, before_program)) return std::nullopt;
    if (x.peers) {
      const std::vector<IpAddress>& peers = before_program.set(*x.peers).addresses;
      lost_peers.insert(lost_peers.end(), peers.begin(), peers.end());
    }
  }
  PodEdits edits;
  // Gained elements the group does not have yet. Those it has came from an
  // allowance it keeps (or one it loses, which the other side sorts out).
  for (auto& [set, elements] : RenderGroupElements(gained, id, after_program)) {
    for (auto& [element, origin] : elements) {
      if (installed(set, element) == nullptr) edits.added[set].emplace(element, std::move(origin));
    }
  }
  // Lost elements no allowance of `after` renders: what `after` renders for
  // the lost allowances' peers (and to any peer) is all there is to compare.
  if (lost.allow.empty()) return edits;
  std::sort(lost_peers.begin(), lost_peers.end());
  lost_peers.erase(std::unique(lost_peers.begin(), lost_peers.end()), lost_peers.end());
  Restricted kept = Restrict(after, after_program, lost_peers);
  for (const Allowance& a : after.allow) {
    if (!a.peers) kept.key.allow.push_back(a);  // Restrict keeps only peer allowances
  }
  std::sort(kept.key.allow.begin(), kept.key.allow.end());
  // The same allowances, in the same order, render these elements in a whole
  // rendering of `after`: where an element stays, its first rule is the one a
  // whole rendering names.
  const PodElements still = RenderGroupElements(kept.key, id, kept.program);
  for (auto& [set, elements] : RenderGroupElements(lost, id, before_program)) {
    const auto other = still.find(set);
    for (auto& [element, origin] : elements) {
      const std::string* was = installed(set, element);
      if (was == nullptr) continue;
      const std::string* now = nullptr;
      if (other != still.end()) {
        if (const auto it = other->second.find(element); it != other->second.end()) now = &it->second;
      }
      if (now == nullptr || *now != *was) edits.removed[set].emplace(element, *was);
      if (now != nullptr && *now != *was) edits.added[set].emplace(element, *now);
    }
  }
  return edits;
}

PodEdits DiffElements(const PodElements& before, const PodElements& after) {
  const auto one_way = [](const PodElements& from, const PodElements& other, PodElements& out) {
    for (const auto& [set, elements] : from) {
      const auto it = other.find(set);
      for (const auto& [element, origin] : elements) {
        const std::string* there = nullptr;
        if (it != other.end()) {
          if (const auto e = it->second.find(element); e != it->second.end()) there = &e->second;
        }
        if (there == nullptr || *there != origin) out[set].emplace(element, origin);
      }
    }
  };
  PodEdits edits;
  one_way(before, after, edits.removed);
  one_way(after, before, edits.added);
  return edits;
}

std::string SetDefinition(const NftSet& set) {
  const bool map = set.type.find(" : ") != std::string::npos;
  std::string out = std::string(map ? "\tmap " : "\tset ") + set.name + " {\n\t\ttype " + set.type + "\n";
  if (set.interval) out += "\t\tflags interval\n";
  if (set.counter) out += "\t\tcounter\n";
  out += "\t\tcomment " + Comment(set.comment) + "\n";
  if (!set.elements.empty()) {
    out += "\t\telements = {";
    bool first = true;
    for (const auto& [element, origin] : set.elements) {
      out += std::string(first ? " " : ",\n\t\t\t     ") + CommentedElement(element, origin);
      first = false;
    }
    out += " }\n";
  }
  return out + "\t}\n";
}

std::string TableDefinition(const NftRuleset& r) {
  std::string out = std::string("table ") + kTableFamily + " " + kTableName + " {\n\tcomment " +
                    Quoted(r.table_comment) + "\n";
  for (const NftSet& set : r.sets) out += SetDefinition(set);
  for (const auto& [name, c] : r.classes) {
    for (const NftSet& map : c.maps) out += SetDefinition(map);
  }
  for (const std::string& chain : r.chains) out += "\t" + chain + "\n";
  for (const auto& [name, c] : r.classes) out += "\t" + c.definition + "\n";
  return out + "}\n";
}

void ReadLogPrefix(LoggedPacket& packet) {
  // The prefixes RenderRuleset writes: "netpol <direction> [<tier> ]<deny|allow> ".
  const std::string& p = packet.prefix;
  packet.direction =
      p.find("ingress") != std::string::npos ? policy::Direction::kIngress : policy::Direction::kEgress;
  packet.allowed = p.find(" allow ") != std::string::npos;
  packet.decider = p.find(" admin ") != std::string::npos      ? Decider::kAdminTier
                   : p.find(" baseline ") != std::string::npos ? Decider::kBaselineTier
                                                               : Decider::kNetworkPolicy;
}

std::vector<CounterSet> CounterSets() {
  std::vector<CounterSet> out;
  for (const Dir& d : kDirs) {
    const policy::Direction direction =
        d.prefix[0] == 'i' ? policy::Direction::kIngress : policy::Direction::kEgress;
    for (const Family& f : kFamilies) {
      const std::string s = std::string("_") + f.suffix;
      const std::string p = std::string(d.prefix) + "_";
      out.push_back({p + "denied" + s, direction, Decider::kNetworkPolicy, false});
      out.push_back({p + "allowed" + s, direction, Decider::kNetworkPolicy, true});
      for (const Tier& t : kTiers) {
        const Decider decider = t.set[0] == 'a' ? Decider::kAdminTier : Decider::kBaselineTier;
        out.push_back({p + t.set + "_denied" + s, direction, decider, false});
        out.push_back({p + t.set + "_accepted" + s, direction, decider, true});
      }
    }
  }
  return out;
}

ConnectionCount CountOf(const CounterSet& set, const Element& element, uint64_t packets) {
  ConnectionCount count;
  count.direction = set.direction;
  count.decider = set.decider;
  count.allowed = set.allowed;
  count.connections = packets;
  if (const Field f = element.field(0); f.kind == FieldKind::kIpv4 || f.kind == FieldKind::kIpv6)
    count.pod = f.FirstAddress();
  return count;
}

}  // namespace netpol::dataplane::nft
