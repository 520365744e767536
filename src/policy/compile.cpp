#include <algorithm>
#include <cstdio>
#include <set>

#include "base/hash.h"
#include "policy/compiled.h"
#include "policy/internal/state.h"

namespace netpol::policy {
namespace {

using internal::ClassId;
using internal::kNoClass;
using internal::PeerRule;
using internal::PodClass;
using internal::PortRule;
using internal::RuleRec;
using internal::State;

// 64-bit FNV-1a over the set's members: a stable id for identical contents.
std::string SetId(const AddressSet& set) {
  Fnv1a h;
  const auto mix_ip = [&](const IpAddress& ip) {
    h.Add(static_cast<uint64_t>(ip.family()));
    h.Add(ip.high());
    h.Add(ip.low());
  };
  for (const IpAddress& ip : set.addresses) mix_ip(ip);
  h.Add(uint64_t{0xfeed});
  for (const AddressRange& r : set.ranges) {
    mix_ip(r.first);
    mix_ip(r.last);
  }
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "p%016llx", static_cast<unsigned long long>(h.value()));
  return buffer;
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

class Compiler {
 public:
  Compiler(const Engine& engine, const State& s) : engine_(engine), s_(s) {
    for (PodId id = 0; id < s_.pods.size(); ++id) {
      const internal::PodRec& rec = s_.pods[id];
      if (!rec.live || rec.pod.ips.empty()) continue;
      addressable_.push_back(id);
      if (rec.cls != kNoClass) by_class_[rec.cls].push_back(id);
    }
  }

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

  std::string Intern(AddressSet set, const std::string& origin) {
    std::sort(set.addresses.begin(), set.addresses.end());
    set.addresses.erase(std::unique(set.addresses.begin(), set.addresses.end()), set.addresses.end());
    std::sort(set.ranges.begin(), set.ranges.end());
    std::string id = SetId(set);
    if (!program_.sets.contains(id)) {
      set.origin = origin;
      program_.sets.emplace(id, std::move(set));
    }
    return id;
  }

  void AddPodAddresses(PodId id, AddressSet& set) const {
    const auto& ips = s_.pods[id].pod.ips;
    set.addresses.insert(set.addresses.end(), ips.begin(), ips.end());
  }

  // Peer addresses of a rule: every address of the pods its selector peers
  // match, and the ranges of its ipBlocks.
  AddressSet PeerAddresses(const RuleRec& rule) const {
    AddressSet set;
    for (const PeerRule& peer : rule.peers) {
      if (peer.is_ip_block()) {
        for (const AddressRange& r : BlockRanges(peer)) set.ranges.push_back(r);
        continue;
      }
      peer.classes.ForEach([&](size_t c) {
        if (const auto it = by_class_.find(static_cast<ClassId>(c)); it != by_class_.end()) {
          for (const PodId id : it->second) AddPodAddresses(id, set);
        }
      });
    }
    return set;
  }

  // Does `rule` (egress) have `pod` as a peer?
  bool IsPeer(const RuleRec& rule, PodId pod) const {
    if (rule.peers.empty()) return true;
    const internal::PodRec& rec = s_.pods[pod];
    return std::any_of(rule.peers.begin(), rule.peers.end(), [&](const PeerRule& peer) {
      if (peer.is_ip_block()) {
        return std::any_of(rec.pod.ips.begin(), rec.pod.ips.end(),
                           [&](const IpAddress& ip) { return peer.MatchesIp(ip); });
      }
      return rec.cls != kNoClass && peer.classes.test(rec.cls);
    });
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
        if (!rule.peers.empty()) {
          // Rules are shared by every class their policy selects: their peers once.
          auto known = peer_sets_.find(&rule);
          if (known == peer_sets_.end())
            known = peer_sets_.emplace(&rule, Intern(PeerAddresses(rule), origin)).first;
          peers = known->second;
        }
        if (rule.ports.empty() || !spans.empty()) {
          std::sort(spans.begin(), spans.end());
          out.allow.push_back({peers, std::move(spans), origin});
        }
        // Egress named ports mean each destination pod's own number: group the
        // peer pods by what the name resolves to on them.
        for (const PortRule* p : named) {
          std::map<uint16_t, AddressSet> by_port;
          for (const PodId id : addressable_) {
            const internal::PodRec& rec = s_.pods[id];
            if (rec.cls == kNoClass || !IsPeer(rule, id)) continue;
            if (const auto n = s_.classes[rec.cls].ResolveNamedPort(p->name, p->protocol)) {
              AddPodAddresses(id, by_port[*n]);
            }
          }
          for (auto& [port, set] : by_port) {
            out.allow.push_back({Intern(std::move(set), origin), {{p->protocol, port, port}}, origin});
          }
        }
      }
    }
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
  std::vector<PodId> addressable_;  // live pods with an address
  std::map<ClassId, std::vector<PodId>> by_class_;
  NodeProgram program_;
  std::map<std::pair<ClassId, bool>, DirectionProgram> memo_;
  std::map<const RuleRec*, std::string> peer_sets_;
};

bool DirectionAllows(const NodeProgram& program, const DirectionProgram& d, const IpAddress& peer,
                     api::Protocol protocol, uint16_t port) {
  if (!d.isolated) return true;
  return std::any_of(d.allow.begin(), d.allow.end(), [&](const Allowance& a) {
    const bool port_ok =
        a.ports.empty() || std::any_of(a.ports.begin(), a.ports.end(), [&](const PortSpan& s) {
          return s.protocol == protocol && s.first <= port && port <= s.last;
        });
    return port_ok && (!a.peers || program.sets.at(*a.peers).Contains(peer));
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
  for (const auto& [name, pod] : pods) {
    const bool is_src = std::find(pod.ips.begin(), pod.ips.end(), src) != pod.ips.end();
    const bool is_dst = std::find(pod.ips.begin(), pod.ips.end(), dst) != pod.ips.end();
    if (is_src && !DirectionAllows(*this, pod.egress, dst, protocol, port)) return false;
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

NodeProgram CompileNode(const Engine& engine, const std::map<std::string, std::string>& local) {
  return Compiler(engine, engine.state()).Run(local);
}

}  // namespace netpol::policy
