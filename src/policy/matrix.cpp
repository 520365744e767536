#include "policy/matrix.h"

#include <algorithm>
#include <bit>
#include <deque>
#include <map>
#include <set>

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

  Matrix Build(const std::vector<PortProto>& ports) {
    const std::vector<PodId> pods = engine_.Pods();
    const size_t n = pods.size();
    struct PodSide {
      ClassId cls;
      const IpAddress* ip;
      const Pod* pod;
    };
    std::vector<PodSide> side(n);
    for (size_t i = 0; i < n; ++i) {
      const internal::PodRec& rec = s_.pods[pods[i]];
      side[i] = {rec.cls, rec.pod.ips.empty() ? nullptr : &rec.pod.ips.front(), &rec.pod};
    }
    Matrix matrix(pods, ports);
    for (size_t p = 0; p < ports.size(); ++p) {
      masks_.clear();
      named_cache_.clear();
      std::vector<ClassAllow> in(s_.classes.size());
      std::vector<ClassAllow> out(s_.classes.size());
      for (const auto& [key, c] : s_.class_index) {
        in[c] = Ingress(c, ports[p]);
        out[c] = Egress(c, ports[p]);
      }
      for (size_t i = 0; i < n; ++i) {
        const PodSide& src = side[i];
        for (size_t j = 0; j < n; ++j) {
          const PodSide& dst = side[j];
          if (i == j) {
            matrix.Set(p, i, j);  // a pod reaches itself without leaving its netns
            continue;
          }
          // hostNetwork pods are their node: not policy-managed, and always
          // allowed into pods on the same node.
          const bool same_node = !src.pod->node.empty() && src.pod->node == dst.pod->node;
          const bool egress_ok = src.cls == kNoClass || Allows(out[src.cls], dst.cls, dst.ip);
          if (!egress_ok) continue;
          const bool ingress_ok = dst.cls == kNoClass || (src.cls == kNoClass && same_node) ||
                                  Allows(in[dst.cls], src.cls, src.ip);
          if (ingress_ok) matrix.Set(p, i, j);
        }
      }
    }
    return matrix;
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

Matrix::Matrix(std::vector<PodId> pods, std::vector<PortProto> ports)
    : pods_(std::move(pods)), ports_(std::move(ports)) {
  const size_t words = (pods_.size() * pods_.size() + 63) / 64;
  bits_.assign(ports_.size(), std::vector<uint64_t>(words, 0));
}

size_t Matrix::AllowedPairs(size_t port) const {
  size_t count = 0;
  for (const uint64_t w : bits_[port]) count += static_cast<size_t>(std::popcount(w));
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
