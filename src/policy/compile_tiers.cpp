// The ClusterNetworkPolicy tiers compiled into disjoint decision boxes
// (internal/tiers.h). Example: at a pod, Admin rules
//   [0] Deny  from namespace dev (pods 198.18.0.7, 198.18.0.8), TCP 80
//   [1] Pass  from 198.18.0.0/24
//   [2] Accept from everywhere in 198.18.0.0/16
// become, for peer 198.18.0.7: TCP 80 -> Deny ([0]); nothing else (Pass);
// for 198.18.1.0-198.18.255.255: every protocol and port -> Accept ([2]).
#include <algorithm>
#include <map>
#include <tuple>

#include "base/hash.h"
#include "policy/internal/tiers.h"

namespace netpol::policy {

namespace {

__extension__ typedef unsigned __int128 Value128;  // wide enough for an IPv6 address

Value128 Value(const IpAddress& ip) {
  return ip.is_v4() ? Value128{ip.v4()} : ((Value128{ip.high()} << 64) | ip.low());
}

IpAddress Address(IpFamily family, Value128 v) {
  if (family == IpFamily::kV4) return IpAddress::V4(static_cast<uint32_t>(v));
  return IpAddress::V6(static_cast<uint64_t>(v >> 64), static_cast<uint64_t>(v));
}

Value128 MaxValue(IpFamily family) {
  return family == IpFamily::kV4 ? Value128{0xffffffffULL} : ~Value128{0};
}

// A rule's traffic as a box: addresses [a0, a1] x protocols x ports, and the
// rule's position in the tier.
struct RuleBox {
  Value128 a0;
  Value128 a1;
  uint8_t p0;
  uint8_t p1;
  uint16_t q0;
  uint16_t q1;
  uint32_t rule;
};

struct Cell {
  uint8_t p0;
  uint8_t p1;
  uint16_t q0;
  uint16_t q1;
  friend bool operator==(const Cell&, const Cell&) = default;
};

constexpr Cell kEverything{0, 255, 0, 65535};

struct RuleInfo {
  std::optional<TierAction> action;  // nullopt: Pass
  std::string origin;
};

// One decided cell of the protocol x port plane, for an address interval.
struct Decided {
  Cell cell;
  uint32_t rule;
  friend bool operator==(const Decided&, const Decided&) = default;
};

// The first-match partition of the protocol x port plane under `active`
// (sorted by rule): cells where some rule decides, with that rule.
std::vector<Decided> Partition(const std::vector<const RuleBox*>& active) {
  std::vector<int> proto_cuts = {0};
  for (const RuleBox* b : active) {
    proto_cuts.push_back(b->p0);
    if (b->p1 < 255) proto_cuts.push_back(b->p1 + 1);
  }
  std::sort(proto_cuts.begin(), proto_cuts.end());
  proto_cuts.erase(std::unique(proto_cuts.begin(), proto_cuts.end()), proto_cuts.end());
  std::vector<Decided> out;
  for (size_t i = 0; i < proto_cuts.size(); ++i) {
    const int p0 = proto_cuts[i];
    const int p1 = i + 1 < proto_cuts.size() ? proto_cuts[i + 1] - 1 : 255;
    std::vector<const RuleBox*> covering;
    for (const RuleBox* b : active) {
      if (b->p0 <= p0 && p0 <= b->p1) covering.push_back(b);
    }
    if (covering.empty()) continue;
    std::vector<int> port_cuts = {0};
    for (const RuleBox* b : covering) {
      port_cuts.push_back(b->q0);
      if (b->q1 < 65535) port_cuts.push_back(b->q1 + 1);
    }
    std::sort(port_cuts.begin(), port_cuts.end());
    port_cuts.erase(std::unique(port_cuts.begin(), port_cuts.end()), port_cuts.end());
    // Runs of port cells decided by one rule.
    std::optional<uint32_t> run_rule;
    int run_start = 0;
    const auto close = [&](int end) {
      if (run_rule) {
        out.push_back({{static_cast<uint8_t>(p0), static_cast<uint8_t>(p1), static_cast<uint16_t>(run_start),
                        static_cast<uint16_t>(end)},
                       *run_rule});
      }
    };
    for (size_t j = 0; j < port_cuts.size(); ++j) {
      const int q0 = port_cuts[j];
      std::optional<uint32_t> first;
      for (const RuleBox* b : covering) {  // in rule order: the first covering one decides
        if (b->q0 <= q0 && q0 <= b->q1) {
          first = b->rule;
          break;
        }
      }
      if (first != run_rule) {
        close(q0 - 1);
        run_rule = first;
        run_start = q0;
      }
    }
    close(65535);
  }
  return out;
}

class TierCompiler {
 public:
  TierCompiler(const internal::State& s, const internal::PodClass& cls, Direction dir,
               std::map<std::string, CompileNote>& notes)
      : s_(s), cls_(cls), dir_(dir), notes_(notes) {}

  TierDecisions Run(api::Tier tier) {
    for (const ClusterPolicyId cid : cls_.cluster_policies[static_cast<size_t>(tier)]) {
      const internal::ClusterPolicyRec& p = s_.cluster_policies[cid];
      const std::vector<internal::ClusterRuleRec>& rules = p.rules(dir_);
      for (size_t r = 0; r < rules.size(); ++r) AddRule(p, r, rules[r]);
    }
    std::vector<DecisionBox> out;
    for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) Sweep(family, out);
    std::sort(out.begin(), out.end());
    return TierDecisions(std::move(out));
  }

 private:
  void AddRule(const internal::ClusterPolicyRec& p, size_t r, const internal::ClusterRuleRec& rule) {
    const uint32_t index = static_cast<uint32_t>(rules_.size());
    RuleInfo info;
    if (rule.action != api::RuleAction::kPass)
      info.action = rule.action == api::RuleAction::kAccept ? TierAction::kAccept : TierAction::kDeny;
    info.origin = internal::ClusterRuleOrigin(p, dir_, r);
    // The rule's protocols and ports; named ports resolved on the destination.
    std::vector<Cell> cells;
    std::vector<const internal::PortRule*> named;  // egress: per peer pod
    if (rule.ports.empty()) cells.push_back(kEverything);
    for (const internal::PortRule& port : rule.ports) {
      const uint8_t proto = IpProtocolNumber(port.protocol);
      if (port.any_port) {
        cells.push_back({proto, proto, 0, 65535});
      } else if (port.name.empty()) {
        cells.push_back({proto, proto, port.first, port.last});
      } else if (dir_ == Direction::kIngress) {
        if (const auto n = cls_.ResolveNamedPort(port.name, port.protocol))
          cells.push_back({proto, proto, *n, *n});
      } else {
        named.push_back(&port);
      }
    }
    for (const internal::ClusterPeerRec& peer : rule.peers) {
      using Kind = internal::ClusterPeerRec::Kind;
      switch (peer.kind) {
        case Kind::kSelector:
          peer.selector.classes.ForEach([&](size_t c) {
            const internal::PodClass& other = s_.classes[c];
            std::vector<Cell> class_cells = cells;
            for (const internal::PortRule* port : named) {
              if (const auto n = other.ResolveNamedPort(port->name, port->protocol)) {
                const uint8_t proto = IpProtocolNumber(port->protocol);
                class_cells.push_back({proto, proto, *n, *n});
              }
            }
            for (const PodId id : other.pods) {
              for (const IpAddress& ip : s_.pods[id].pod.ips) AddBoxes(ip, ip, class_cells, index);
            }
          });
          break;
        case Kind::kNetworks:
          for (const IpPrefix& network : peer.networks) {
            const IpAddress first = network.address();
            const Value128 host = network.length() == (first.is_v4() ? 32 : 128)
                                      ? 0
                                      : (MaxValue(first.family()) >> network.length());
            const Value128 start = Value(first) & ~host;  // as written, however masked
            AddBoxes(Address(first.family(), start), Address(first.family(), start | host), cells, index);
          }
          break;
        case Kind::kNodes:
          // Node objects' addresses by their labels, and hostNetwork pods by
          // their node's (a node without a Node object has no labels).
          for (const auto& [name, node] : s_.nodes) {
            if (!peer.nodes.Matches(node.labels)) continue;
            for (const IpAddress& ip : node.ips) AddBoxes(ip, ip, cells, index);
          }
          for (const internal::PodRec& rec : s_.pods) {
            if (!rec.live || !rec.pod.host_network) continue;
            const auto node = s_.nodes.find(rec.pod.node);
            if (!peer.nodes.Matches(node == s_.nodes.end() ? api::Labels{} : node->second.labels)) continue;
            for (const IpAddress& ip : rec.pod.ips) AddBoxes(ip, ip, cells, index);
          }
          break;
        case Kind::kDomainNames:
          Note(info, rule.action);
          break;
      }
    }
    rules_.push_back(std::move(info));
  }

  void Note(const RuleInfo& info, api::RuleAction action) {
    CompileNote note;
    note.origin = info.origin;
    note.fails_open = action != api::RuleAction::kAccept;
    if (note.fails_open) {
      note.text = info.origin + ": domainNames peers are NOT enforced by the dataplane: a " +
                  std::string(api::RuleActionName(action)) +
                  " for a domain name cannot be told from other traffic, so what it matches is left to the "
                  "rules after it (the API supports domainNames in Accept rules only)";
    } else {
      note.text = info.origin +
                  ": domainNames peers are not enforced: connections to these names are left to the rules "
                  "after it (denied where they deny; netpol does not follow DNS answers)";
    }
    notes_.emplace(note.origin, std::move(note));
  }

  void AddBoxes(const IpAddress& first, const IpAddress& last, const std::vector<Cell>& cells,
                uint32_t rule) {
    auto& boxes = first.is_v4() ? v4_ : v6_;
    for (const Cell& c : cells) boxes.push_back({Value(first), Value(last), c.p0, c.p1, c.q0, c.q1, rule});
  }

  // Sweeps one family's addresses: each elementary interval (between box
  // starts and ends) is covered by the same rule boxes throughout, and takes
  // the first-match partition of those (computed once per distinct cover).
  void Sweep(IpFamily family, std::vector<DecisionBox>& out) {
    std::vector<RuleBox>& boxes = family == IpFamily::kV4 ? v4_ : v6_;
    if (boxes.empty()) return;
    const Value128 max = MaxValue(family);
    std::sort(boxes.begin(), boxes.end(), [](const RuleBox& a, const RuleBox& b) {
      return std::tie(a.a0, a.rule, a.p0, a.q0) < std::tie(b.a0, b.rule, b.p0, b.q0);
    });
    std::vector<Value128> cuts;
    cuts.reserve(boxes.size() * 2);
    for (const RuleBox& b : boxes) {
      cuts.push_back(b.a0);
      if (b.a1 < max) cuts.push_back(b.a1 + 1);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    using Key = std::vector<std::tuple<uint32_t, uint8_t, uint8_t, uint16_t, uint16_t>>;
    std::map<Key, std::vector<Decided>> memo;
    std::vector<const RuleBox*> active;
    size_t next = 0;
    // The run of adjacent intervals with the same decisions, not emitted yet.
    const std::vector<Decided>* run = nullptr;
    Value128 run_first = 0;
    Value128 run_last = 0;
    const auto flush = [&] {
      if (run == nullptr) return;
      const AddressRange range{Address(family, run_first), Address(family, run_last)};
      for (const Decided& d : *run) {
        const RuleInfo& info = rules_[d.rule];
        if (!info.action) continue;  // Pass: the next tier decides
        out.push_back({range, d.cell.p0, d.cell.p1, d.cell.q0, d.cell.q1, *info.action, info.origin});
      }
      run = nullptr;
    };
    for (size_t i = 0; i < cuts.size(); ++i) {
      const Value128 first = cuts[i];
      const Value128 last = i + 1 < cuts.size() ? cuts[i + 1] - 1 : max;
      std::erase_if(active, [&](const RuleBox* b) { return b->a1 < first; });
      bool grew = false;
      for (; next < boxes.size() && boxes[next].a0 <= first; ++next) {
        active.push_back(&boxes[next]);
        grew = true;
      }
      if (active.empty()) continue;
      if (grew) {
        std::sort(active.begin(), active.end(), [](const RuleBox* a, const RuleBox* b) {
          return std::tie(a->rule, a->p0, a->q0) < std::tie(b->rule, b->p0, b->q0);
        });
      }
      // Rules after one that covers every protocol and port never decide here.
      Key key;
      std::vector<const RuleBox*> deciding;
      for (const RuleBox* b : active) {
        key.emplace_back(b->rule, b->p0, b->p1, b->q0, b->q1);
        deciding.push_back(b);
        if (b->p0 == 0 && b->p1 == 255 && b->q0 == 0 && b->q1 == 65535) break;
      }
      auto it = memo.find(key);
      if (it == memo.end()) it = memo.emplace(std::move(key), Partition(deciding)).first;
      // Adjacent intervals decided alike are one range (the replicas of an
      // app often have consecutive addresses): fewer boxes, the same meaning.
      if (run != nullptr && first == run_last + 1 && *run == it->second) {
        run_last = last;
        continue;
      }
      flush();
      run = &it->second;
      run_first = first;
      run_last = last;
    }
    flush();
  }

  const internal::State& s_;
  const internal::PodClass& cls_;
  Direction dir_;
  std::map<std::string, CompileNote>& notes_;
  std::vector<RuleInfo> rules_;
  std::vector<RuleBox> v4_;
  std::vector<RuleBox> v6_;
};

}  // namespace

uint8_t IpProtocolNumber(api::Protocol protocol) {
  switch (protocol) {
    case api::Protocol::kTCP:
      return kIpProtoTcp;
    case api::Protocol::kUDP:
      return kIpProtoUdp;
    case api::Protocol::kSCTP:
      return kIpProtoSctp;
  }
  return kIpProtoTcp;
}

bool DecisionBox::Contains(const IpAddress& peer, uint8_t protocol, uint16_t port) const {
  return peer.family() == peers.first.family() && !(peer < peers.first) && !(peers.last < peer) &&
         protocol_first <= protocol && protocol <= protocol_last && port_first <= port && port <= port_last;
}

TierDecisions::TierDecisions(std::vector<DecisionBox> boxes) {
  if (boxes.empty()) return;
  auto data = std::make_shared<Data>();
  WordHash hashes[2];
  for (const DecisionBox& box : boxes) {
    const size_t f = Index(box.peers.first.family());
    data->has[f] = true;
    WordHash& h = hashes[f];
    for (const IpAddress* ip : {&box.peers.first, &box.peers.last}) {
      h.Add(ip->high());
      h.Add(ip->low());
    }
    h.Add((uint64_t{box.protocol_first} << 48) | (uint64_t{box.protocol_last} << 32) |
          (uint64_t{box.port_first} << 16) | box.port_last);
    h.Add(static_cast<uint64_t>(box.action));
    Fnv1a origin;
    origin.Add(box.origin);
    h.Add(origin.value());
  }
  for (size_t f = 0; f < 2; ++f) data->digest[f] = hashes[f].value();
  data->boxes = std::move(boxes);
  data_ = std::move(data);
}

const std::vector<DecisionBox>& TierDecisions::boxes() const {
  static const std::vector<DecisionBox> kNone;
  return data_ == nullptr ? kNone : data_->boxes;
}

const DecisionBox* TierDecisions::Find(const IpAddress& peer, uint8_t protocol, uint16_t port) const {
  for (const DecisionBox& box : boxes()) {
    if (box.Contains(peer, protocol, port)) return &box;
  }
  return nullptr;
}

namespace internal {

std::string ClusterRuleOrigin(const ClusterPolicyRec& policy, Direction dir, size_t rule) {
  const std::vector<api::ClusterRule>& rules =
      dir == Direction::kIngress ? policy.spec.ingress : policy.spec.egress;
  std::string origin =
      policy.full_name + (dir == Direction::kIngress ? " ingress[" : " egress[") + std::to_string(rule) + "]";
  if (rule < rules.size() && !rules[rule].name.empty()) origin += " " + rules[rule].name;
  return origin;
}

TierDecisions CompileTier(const State& s, const PodClass& cls, Direction dir, api::Tier tier,
                          std::map<std::string, CompileNote>& notes) {
  if (cls.cluster_policies[static_cast<size_t>(tier)].empty()) return {};
  return TierCompiler(s, cls, dir, notes).Run(tier);
}

}  // namespace internal
}  // namespace netpol::policy
