#include "policy/matrix.h"

#include <algorithm>
#include <array>
#include <bit>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "policy/flow_text.h"
#include "policy/internal/state.h"

namespace netpol::policy {
namespace {

using internal::ClassId;
using internal::DynamicBitset;
using internal::kNoClass;
using internal::PeerRule;
using internal::PodClass;
using internal::RuleRec;
using internal::State;

// ipBlock peers that allow a class's traffic, each with an optional mask of
// destination classes (for egress rules whose only matching ports are named).
struct BlockRef {
  const PeerRule* peer;
  const DynamicBitset* destination_mask;
};

// What one class allows in one direction for one port.
struct ClassAllow {
  bool all = false;
  DynamicBitset classes;
  std::vector<BlockRef> blocks;
};

class MatrixBuilder {
 public:
  MatrixBuilder(const Engine& engine, const State& s) : engine_(engine), s_(s) {}

  ClassAllow Ingress(ClassId c, const PortProto& pp) const {
    ClassAllow out;
    const PodClass& cls = s_.classes[c];
    if (cls.ingress_policies.empty()) {
      out.all = true;
      return out;
    }
    for (const PolicyId pid : cls.ingress_policies) {
      for (const RuleRec& rule : s_.policies[pid].ingress_rules) {
        const bool port_ok =
            rule.ports.empty() || std::any_of(rule.ports.begin(), rule.ports.end(), [&](const auto& p) {
              return p.Matches(pp.protocol, pp.port, &cls);
            });
        if (!port_ok) continue;
        if (rule.peers.empty()) {
          out.all = true;
          return out;
        }
        for (const PeerRule& peer : rule.peers) {
          if (peer.is_ip_block()) {
            out.blocks.push_back({&peer, nullptr});
          } else {
            out.classes |= peer.classes;
          }
        }
      }
    }
    return out;
  }

  ClassAllow Egress(ClassId c, const PortProto& pp) {
    ClassAllow out;
    const PodClass& cls = s_.classes[c];
    if (cls.egress_policies.empty()) {
      out.all = true;
      return out;
    }
    for (const PolicyId pid : cls.egress_policies) {
      for (const RuleRec& rule : s_.policies[pid].egress_rules) {
        bool any_destination = rule.ports.empty();
        DynamicBitset named_mask;
        bool has_named = false;
        for (const auto& p : rule.ports) {
          if (p.protocol != pp.protocol) continue;
          if (p.name.empty()) {
            any_destination = any_destination || p.Matches(pp.protocol, pp.port, nullptr);
          } else {
            named_mask |= NamedPortMask(p.name, pp);
            has_named = true;
          }
        }
        if (!any_destination && !has_named) continue;
        const DynamicBitset* mask = nullptr;
        if (!any_destination) {
          masks_.push_back(std::move(named_mask));
          mask = &masks_.back();
        }
        if (rule.peers.empty()) {
          if (mask == nullptr) {
            out.all = true;
            return out;
          }
          out.classes |= *mask;
          continue;
        }
        for (const PeerRule& peer : rule.peers) {
          if (peer.is_ip_block()) {
            out.blocks.push_back({&peer, mask});
          } else if (mask == nullptr) {
            out.classes |= peer.classes;
          } else {
            peer.classes.ForEach([&](size_t d) {
              if (mask->test(d)) out.classes.set(d);
            });
          }
        }
      }
    }
    return out;
  }

  static bool Allows(const ClassAllow& a, ClassId other_class, const IpAddress* other_ip) {
    if (a.all) return true;
    if (other_class != kNoClass && a.classes.test(other_class)) return true;
    if (other_ip == nullptr) return false;
    for (const BlockRef& b : a.blocks) {
      if (b.destination_mask != nullptr &&
          (other_class == kNoClass || !b.destination_mask->test(other_class))) {
        continue;
      }
      if (b.peer->MatchesIp(*other_ip)) return true;
    }
    return false;
  }

  // Per family (docs/SEMANTICS.md §19): without dual-stack pods one plane at
  // every pod's first address; with them a plane at every pod's IPv4 address
  // and one at its IPv6 address (a pod's first address where it has none of
  // the family), merged pair by pair as FamilyFlows judges the pair.
  // With ClusterNetworkPolicies the verdict of a direction is ordered (tiers,
  // priorities, Deny and Pass) rather than a union: pair by pair, through the
  // engine (docs/SEMANTICS.md §21). Planes as Build's: 0 the pair's only or
  // IPv4 verdict, 1 its only or IPv6 one.
  Matrix BuildPairwise(const std::vector<PortProto>& ports) {
    const std::vector<PodId> pods = engine_.Pods();
    const size_t n = pods.size();
    bool dual = false;
    for (const PodId id : pods) {
      const auto& ips = s_.pods[id].pod.ips;
      dual = dual || (std::any_of(ips.begin(), ips.end(), [](const IpAddress& a) { return a.is_v4(); }) &&
                      std::any_of(ips.begin(), ips.end(), [](const IpAddress& a) { return !a.is_v4(); }));
    }
    Matrix matrix(pods, ports, dual);
    for (size_t p = 0; p < ports.size(); ++p) {
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < n; ++j) {
          const uint64_t bit = uint64_t{1} << (j & 63);
          if (i == j) {
            matrix.Set(p, i, j);
            continue;
          }
          for (const FamilyFlow& f : FamilyFlows(engine_, Endpoint::OfPod(pods[i]), Endpoint::OfPod(pods[j]),
                                                 ports[p].protocol, ports[p].port)) {
            if (!engine_.Allowed(f.flow)) continue;
            if (!dual || !f.family || *f.family == IpFamily::kV4) matrix.Row(p, i, 0)[j >> 6] |= bit;
            if (dual && (!f.family || *f.family == IpFamily::kV6)) matrix.Row(p, i, 1)[j >> 6] |= bit;
          }
        }
      }
    }
    return matrix;
  }

  Matrix Build(const std::vector<PortProto>& ports) {
    if (!s_.cluster_policy_index.empty()) return BuildPairwise(ports);
    const std::vector<PodId> pods = engine_.Pods();
    const size_t n = pods.size();
    // Per pod: which families it has addresses of (bit 0 IPv4, bit 1 IPv6).
    std::vector<uint8_t> stack(n, 0);
    bool dual = false;
    for (size_t i = 0; i < n; ++i) {
      for (const IpAddress& a : s_.pods[pods[i]].pod.ips)
        stack[i] = static_cast<uint8_t>(stack[i] | (a.is_v4() ? 1U : 2U));
      dual = dual || stack[i] == 3;
    }
    if (!dual) {
      Matrix matrix(pods, ports);
      BuildPlane(pods, ports, std::nullopt, matrix);
      return matrix;
    }
    Matrix matrix(pods, ports, /*per_family=*/true);
    Matrix v6(pods, ports);
    BuildPlane(pods, ports, IpFamily::kV4, matrix);
    BuildPlane(pods, ports, IpFamily::kV6, v6);
    // A pair connects over a family when each pod has an address of it or
    // none at all (and not both none).
    const auto uses = [&](size_t i, size_t j, uint8_t family_bit) {
      return ((stack[i] & family_bit) != 0 || stack[i] == 0) &&
             ((stack[j] & family_bit) != 0 || stack[j] == 0);
    };
    // Masks by the row pod's stack: columns taken from the IPv6 plane into
    // plane 0 (pairs over IPv6 only) and into plane 1 (pairs over both).
    const size_t words = matrix.row_words();
    std::array<std::vector<uint64_t>, 4> v6_only;
    std::array<std::vector<uint64_t>, 4> both;
    for (uint8_t k = 0; k < 4; ++k) {
      v6_only[k].assign(words, 0);
      both[k].assign(words, 0);
      const auto i = static_cast<size_t>(std::find(stack.begin(), stack.end(), k) - stack.begin());
      if (i == n) continue;
      for (size_t j = 0; j < n; ++j) {
        const bool over4 = uses(i, j, 1);
        const bool over6 = uses(i, j, 2) && !(stack[i] == 0 && stack[j] == 0);
        if (over6 && !over4) v6_only[k][j >> 6] |= uint64_t{1} << (j & 63);
        if (over6 && over4) both[k][j >> 6] |= uint64_t{1} << (j & 63);
      }
    }
    for (size_t p = 0; p < ports.size(); ++p) {
      for (size_t i = 0; i < n; ++i) {
        uint64_t* plane0 = matrix.Row(p, i, 0);
        uint64_t* plane1 = matrix.Row(p, i, 1);
        const uint64_t* six = v6.Row(p, i);
        for (size_t w = 0; w < words; ++w) {
          plane0[w] = (plane0[w] & ~v6_only[stack[i]][w]) | (six[w] & v6_only[stack[i]][w]);
          plane1[w] = (plane0[w] & ~both[stack[i]][w]) | (six[w] & both[stack[i]][w]);
        }
      }
    }
    return matrix;
  }

  // One plane: every pod at its address of `family` (its first where it has
  // none of it, or no family given).
  void BuildPlane(const std::vector<PodId>& pods, const std::vector<PortProto>& ports,
                  std::optional<IpFamily> family, Matrix& matrix) {
    const size_t n = pods.size();
    const size_t num_classes = s_.classes.size();
    std::vector<ClassId> cls(n);
    std::vector<const IpAddress*> ip(n);
    std::vector<const Pod*> pod(n);
    std::vector<size_t> host_network;  // indices of hostNetwork pods
    for (size_t i = 0; i < n; ++i) {
      const internal::PodRec& rec = s_.pods[pods[i]];
      cls[i] = rec.cls;
      ip[i] = rec.pod.ips.empty() ? nullptr : &rec.pod.ips.front();
      for (const IpAddress& a : rec.pod.ips) {
        if (family && a.family() == *family) {
          ip[i] = &a;
          break;
        }
      }
      pod[i] = &rec.pod;
      if (rec.cls == kNoClass) host_network.push_back(i);
    }
    std::vector<ClassId> live;
    for (const auto& [key, c] : s_.class_index) live.push_back(c);

    for (size_t p = 0; p < ports.size(); ++p) {
      masks_.clear();
      named_cache_.clear();
      std::vector<ClassAllow> in(num_classes);
      std::vector<ClassAllow> out(num_classes);
      DynamicBitset in_all;                          // destination classes open to everyone
      std::vector<DynamicBitset> in_t(num_classes);  // in_t[src][dst]: dst's ingress admits src
      for (const ClassId c : live) {
        in[c] = Ingress(c, ports[p]);
        out[c] = Egress(c, ports[p]);
        if (in[c].all) {
          in_all.set(c);
        } else {
          in[c].classes.ForEach([&](size_t src) { in_t[src].set(c); });
        }
      }
      DynamicBitset all_classes;
      for (const ClassId c : live) all_classes.set(c);

      // Ingress ipBlocks: per source pod, the destination classes whose blocks
      // admit its address.
      std::vector<ClassId> block_classes;
      for (const ClassId c : live) {
        if (!in[c].all && !in[c].blocks.empty()) block_classes.push_back(c);
      }
      const auto admitted_by_blocks = [&](size_t i, DynamicBitset& into) {
        if (ip[i] == nullptr) return;
        for (const ClassId c : block_classes) {
          for (const BlockRef& b : in[c].blocks) {
            if (b.peer->MatchesIp(*ip[i])) {
              into.set(c);
              break;
            }
          }
        }
      };
      const auto ingress_ok = [&](size_t i, size_t j) {
        if (cls[j] == kNoClass) return true;  // hostNetwork destination: not managed
        const bool same_node = !pod[i]->node.empty() && pod[i]->node == pod[j]->node;
        if (cls[i] == kNoClass && same_node) return true;  // from its own node
        return Allows(in[cls[j]], cls[i], ip[i]);
      };

      for (size_t i = 0; i < n; ++i) {
        uint64_t* row = matrix.Row(p, i);
        if (cls[i] == kNoClass) {
          // A hostNetwork pod is its node: its egress is not judged.
          for (size_t j = 0; j < n; ++j) {
            if (i == j || ingress_ok(i, j)) row[j >> 6] |= uint64_t{1} << (j & 63);
          }
          continue;
        }
        const ClassAllow& egress = out[cls[i]];
        // Destination classes this pod may reach, judged per class.
        DynamicBitset reach = egress.all ? all_classes : egress.classes;
        DynamicBitset admits = in_t[cls[i]];
        admits |= in_all;
        admitted_by_blocks(i, admits);
        reach &= admits;
        for (size_t j0 = 0; j0 < n; j0 += 64) {
          uint64_t word = 0;
          const size_t end = std::min(n, j0 + 64);
          for (size_t j = j0; j < end; ++j) {
            word |= static_cast<uint64_t>(reach.test(cls[j])) << (j - j0);
          }
          row[j0 >> 6] = word;
        }
        // Pod-level cases: hostNetwork destinations, egress ipBlocks, itself.
        for (const size_t j : host_network) {
          if (Allows(egress, kNoClass, ip[j])) row[j >> 6] |= uint64_t{1} << (j & 63);
        }
        if (!egress.all && !egress.blocks.empty()) {
          for (size_t j = 0; j < n; ++j) {
            if (ip[j] == nullptr || cls[j] == kNoClass || ((row[j >> 6] >> (j & 63)) & 1U) != 0) continue;
            if (Allows(egress, cls[j], ip[j]) && ingress_ok(i, j)) row[j >> 6] |= uint64_t{1} << (j & 63);
          }
        }
        row[i >> 6] |= uint64_t{1} << (i & 63);
      }
    }
  }

 private:
  // Classes whose named port `name` is `pp` (cached per port).
  const DynamicBitset& NamedPortMask(const std::string& name, const PortProto& pp) {
    const auto it = named_cache_.find(name);
    if (it != named_cache_.end()) return it->second;
    DynamicBitset mask;
    for (const auto& [key, c] : s_.class_index) {
      const auto resolved = s_.classes[c].ResolveNamedPort(name, pp.protocol);
      if (resolved && *resolved == pp.port) mask.set(c);
    }
    return named_cache_.emplace(name, std::move(mask)).first->second;
  }

  const Engine& engine_;
  const State& s_;
  std::deque<DynamicBitset> masks_;  // stable addresses for BlockRef
  std::map<std::string, DynamicBitset, std::less<>> named_cache_;
};

}  // namespace

std::string PortProto::ToString() const {
  return std::to_string(port) + "/" + std::string(api::ProtocolName(protocol));
}

Matrix::Matrix(std::vector<PodId> pods, std::vector<PortProto> ports, bool per_family)
    : pods_(std::move(pods)), ports_(std::move(ports)), stride_((pods_.size() + 63) / 64) {
  bits_.assign(ports_.size(), std::vector<uint64_t>(stride_ * pods_.size(), 0));
  if (per_family) bits6_ = bits_;
}

size_t Matrix::AllowedPairs(size_t port) const {
  size_t count = 0;
  for (size_t w = 0; w < bits_[port].size(); ++w) {
    const uint64_t word = bits6_.empty() ? bits_[port][w] : bits_[port][w] & bits6_[port][w];
    count += static_cast<size_t>(std::popcount(word));
  }
  return count - pods_.size();  // the diagonal is always set
}

std::vector<PortProto> DeclaredPorts(const Engine& engine) {
  std::set<PortProto> ports;
  for (const PodId id : engine.Pods()) {
    for (const auto& p : engine.pod(id).ports) {
      ports.insert({p.protocol, static_cast<uint16_t>(p.container_port)});
    }
  }
  return {ports.begin(), ports.end()};
}

Matrix ComputeMatrix(const Engine& engine, const std::vector<PortProto>& ports) {
  return MatrixBuilder(engine, engine.state()).Build(ports);
}

}  // namespace netpol::policy
