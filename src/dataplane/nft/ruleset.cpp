#include "dataplane/nft/ruleset.h"

#include <algorithm>

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

const char* ProtoName(api::Protocol p) {
  switch (p) {
    case api::Protocol::kTCP: return "tcp";
    case api::Protocol::kUDP: return "udp";
    case api::Protocol::kSCTP: return "sctp";
  }
  return "tcp";
}

std::string Range(const std::string& first, const std::string& last) {
  return first == last ? first : first + "-" + last;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// nftables keeps at most 128 bytes of comment; names are DNS names, no quoting needed.
std::string Comment(const std::string& s) {
  return Quoted(s.size() <= 120 ? s : s.substr(0, 117) + "...");
}

class Renderer {
 public:
  Renderer(const policy::NodeProgram& program, const NftOptions& options) : program_(program), options_(options) {}

  // Every set, empty, in a fixed order.
  void Layout() {
    const std::string schema = "netpol schema=" + std::to_string(kSchemaVersion) +
                               " log-group=" + std::to_string(options_.log_group);
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
        Add(p + "exact" + s, a + " . " + a + " . inet_proto . inet_service", false, false,
            "pod . peer . protocol . port");
        Add(p + "proto" + s, a + " . " + a + " . inet_proto", false, false, "pod . peer . protocol (every port)");
        Add(p + "all" + s, a + " . " + a, false, false, "pod . peer (every protocol and port)");
        Add(p + "anyexact" + s, a + " . inet_proto . inet_service", false, false, "pod . protocol . port (any peer)");
        Add(p + "anyproto" + s, a + " . inet_proto", false, false, "pod . protocol (any peer, every port)");
        Add(p + "anyall" + s, a, false, false, "pod (any peer, protocol and port)");
        Add(p + "ranges" + s, a + " . " + a + " . inet_proto . inet_service", true, false,
            "pod . peer range . protocol . port range (ipBlocks, endPort)");
      }
    }
  }

  NftRuleset Run() {
    NftRuleset r;
    r.table_comment = "netpol: NetworkPolicy for this node's pods; managed by netpol, do not edit";
    Layout();
    for (const auto& [name, pod] : program_.pods) {
      Pod(name, pod);
      EmitBoxes();
    }
    r.sets = std::move(sets_);
    r.chains = Chains();
    return r;
  }

  // The elements one pod contributes, per set.
  PodElements RunPod(const std::string& name, const policy::LocalPod& pod) {
    PodElements out;
    pod_sink_ = &out;  // straight into the result: no set layout needed
    Pod(name, pod);
    EmitBoxes();
    pod_sink_ = nullptr;
    return out;
  }

 private:
  void Add(std::string name, std::string type, bool interval, bool counter, std::string comment) {
    index_[name] = sets_.size();
    sets_.push_back({std::move(name), std::move(type), interval, counter, std::move(comment), {}});
  }

  void Element(const std::string& set, std::string element, const std::string& origin) {
    if (pod_sink_ != nullptr) {
      (*pod_sink_)[set].emplace(std::move(element), origin);
      return;
    }
    sets_[index_.at(set)].elements.emplace(std::move(element), origin);
  }

  void Pod(const std::string& name, const policy::LocalPod& pod) {
    if (!pod.interface.empty()) Element("pod_ifaces", Quoted(pod.interface), name);
    for (const IpAddress& ip : pod.ips) {
      const Family& f = ip.is_v4() ? kFamilies[0] : kFamilies[1];
      const std::string s = std::string("_") + f.suffix;
      // Anti-spoofing needs the pod's interface; without one (unknown) the
      // address is not claimed, or the pod's own packets would be dropped.
      if (!pod.interface.empty()) {
        Element("pods" + s, ip.ToString(), name);
        Element("pod_src" + s, Quoted(pod.interface) + " . " + ip.ToString(), name);
      }
      for (const Dir& d : kDirs) {
        const DirectionProgram& dp = d.prefix[0] == 'i' ? pod.ingress : pod.egress;
        if (!dp.isolated) continue;
        const std::string p = std::string(d.prefix) + "_";
        Element(p + "isolated" + s, ip.ToString(), name);
        Element(p + "denied" + s, ip.ToString(), name);
        for (const Allowance& a : dp.allow) Allow(p, s, f, ip.ToString(), a);
      }
    }
  }

  // One allowance of one pod address, as elements of the direction's sets.
  void Allow(const std::string& p, const std::string& s, const Family& f, const std::string& pod,
             const Allowance& a) {
    const std::string& origin = a.origin;
    const bool all_ports = a.ports.empty();
    if (!a.peers) {
      if (all_ports) return Element(p + "anyall" + s, pod, origin);
      for (const PortSpan& span : a.ports) {
        const std::string proto = ProtoName(span.protocol);
        if (span.first == 1 && span.last == 65535) {
          Element(p + "anyproto" + s, pod + " . " + proto, origin);
        } else if (span.first == span.last) {
          Element(p + "anyexact" + s, pod + " . " + proto + " . " + std::to_string(span.first), origin);
        } else {
          Box(p + "ranges" + s, pod, f, AnyAddress(f), {ProtoNumber(span.protocol), ProtoNumber(span.protocol)},
              {span.first, span.last}, origin);
        }
      }
      return;
    }
    const AddressSet& peers = program_.sets.at(*a.peers);
    for (const IpAddress& peer : peers.addresses) {
      if (peer.family() != f.family) continue;
      const std::string pair = pod + " . " + peer.ToString();
      if (all_ports) {
        Element(p + "all" + s, pair, origin);
        continue;
      }
      for (const PortSpan& span : a.ports) {
        const std::string proto = ProtoName(span.protocol);
        if (span.first == 1 && span.last == 65535) {
          Element(p + "proto" + s, pair + " . " + proto, origin);
        } else if (span.first == span.last) {
          Element(p + "exact" + s, pair + " . " + proto + " . " + std::to_string(span.first), origin);
        } else {
          Box(p + "ranges" + s, pod, f, {Value(peer), Value(peer)},
              {ProtoNumber(span.protocol), ProtoNumber(span.protocol)}, {span.first, span.last}, origin);
        }
      }
    }
    for (const AddressRange& range : peers.ranges) {
      if (range.first.family() != f.family) continue;
      const Span addresses{Value(range.first), Value(range.last)};
      if (all_ports) {
        Box(p + "ranges" + s, pod, f, addresses, {0, 255}, {0, 65535}, origin);
        continue;
      }
      for (const PortSpan& span : a.ports) {
        Box(p + "ranges" + s, pod, f, addresses, {ProtoNumber(span.protocol), ProtoNumber(span.protocol)},
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
  static Value128 ProtoNumber(api::Protocol p) {
    switch (p) {
      case api::Protocol::kTCP: return 6;
      case api::Protocol::kUDP: return 17;
      case api::Protocol::kSCTP: return 132;
    }
    return 6;
  }

  void Box(const std::string& set, const std::string& pod, const Family& f, Span addresses, Span protos, Span ports,
           const std::string& origin) {
    BoxGroup& group = boxes_[{set, pod}];
    group.family = &f;
    group.boxes.push_back({{addresses, protos, ports}, origin});
  }

  static std::string Text(const Family& f, int dim, Value128 v) {
    if (dim == 0) {
      if (f.family == IpFamily::kV4) return IpAddress::V4(static_cast<uint32_t>(v)).ToString();
      return IpAddress::V6(static_cast<uint64_t>(v >> 64), static_cast<uint64_t>(v)).ToString();
    }
    if (dim == 1) {
      if (v == 6) return "tcp";
      if (v == 17) return "udp";
      if (v == 132) return "sctp";
    }
    return std::to_string(static_cast<uint64_t>(v));
  }

  void EmitBoxes() {
    for (const auto& [key, group] : boxes_) {
      EmitGroup(key, group);
    }
    boxes_.clear();
  }

  void EmitGroup(const std::pair<std::string, std::string>& key, const BoxGroup& group) {
    {
      const Family& f = *group.family;
      const Value128 max[3] = {AnyAddress(f).last, 255, 65535};
      // Elementary intervals per dimension from every box's start and end+1.
      std::vector<Value128> cuts[3];
      for (int d = 0; d < 3; ++d) {
        for (const BoxRec& b : group.boxes) {
          cuts[d].push_back(b.dims[d].first);
          if (b.dims[d].last < max[d]) cuts[d].push_back(b.dims[d].last + 1);
        }
        std::sort(cuts[d].begin(), cuts[d].end());
        cuts[d].erase(std::unique(cuts[d].begin(), cuts[d].end()), cuts[d].end());
      }
      const auto end_of = [&](int d, size_t i) { return i + 1 < cuts[d].size() ? cuts[d][i + 1] - 1 : max[d]; };
      // For each address interval and protocol interval, runs of covered port intervals.
      for (size_t a = 0; a < cuts[0].size(); ++a) {
        for (size_t p = 0; p < cuts[1].size(); ++p) {
          size_t run_start = 0;
          const BoxRec* run_origin = nullptr;
          const auto covering = [&](size_t q) -> const BoxRec* {
            for (const BoxRec& b : group.boxes) {
              const Value128 point[3] = {cuts[0][a], cuts[1][p], cuts[2][q]};
              bool in = true;
              for (int d = 0; d < 3; ++d) in = in && b.dims[d].first <= point[d] && point[d] <= b.dims[d].last;
              if (in) return &b;
            }
            return nullptr;
          };
          for (size_t q = 0; q <= cuts[2].size(); ++q) {
            const BoxRec* cover = q < cuts[2].size() ? covering(q) : nullptr;
            if (cover != nullptr && run_origin == nullptr) {
              run_start = q;
              run_origin = cover;
            } else if (cover == nullptr && run_origin != nullptr) {
              const std::string element =
                  key.second + " . " + Range(Text(f, 0, cuts[0][a]), Text(f, 0, end_of(0, a))) + " . " +
                  Range(Text(f, 1, cuts[1][p]), Text(f, 1, end_of(1, p))) + " . " +
                  Range(Text(f, 2, cuts[2][run_start]), Text(f, 2, end_of(2, q - 1)));
              Element(key.first, element, run_origin->origin);
              run_origin = nullptr;
            }
          }
        }
      }
    }
  }

  std::vector<std::string> Chains() const {
    std::vector<std::string> chains;
    const std::string log = std::to_string(options_.log_group);
    // IPv6 neighbour discovery and MLD come from link-local (or unspecified)
    // sources; they must pass, and nothing else may use those sources.
    std::string spoof =
        "\t\tiifname @pod_ifaces ip6 saddr { ::, fe80::/10 } icmpv6 type { nd-neighbor-solicit, "
        "nd-neighbor-advert, nd-router-solicit, mld-listener-report, mld2-listener-report } accept comment "
        "\"IPv6 neighbour discovery from pods\"\n";
    for (const Family& f : kFamilies) {
      const std::string m = f.match;
      const std::string s = f.suffix;
      spoof += "\t\tiifname @pod_ifaces iifname . " + m + " saddr != @pod_src_" + s +
               " counter drop comment \"anti-spoofing: a pod sends only from its own addresses\"\n";
      spoof += "\t\t" + m + " saddr @pods_" + s + " iifname . " + m + " saddr != @pod_src_" + s +
               " counter drop comment \"anti-spoofing: only a pod uses its addresses\"\n";
    }
    const std::string conntrack =
        "\t\tct state established,related accept comment \"replies and ongoing connections\"\n"
        "\t\tct state invalid drop\n";
    chains.push_back("chain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n" + spoof +
                     conntrack +
                     "\t\tmeta nfproto ipv4 jump egress_v4\n\t\tmeta nfproto ipv6 jump egress_v6\n"
                     "\t\tmeta nfproto ipv4 jump ingress_v4\n\t\tmeta nfproto ipv6 jump ingress_v6\n\t}");
    chains.push_back("chain input {\n\t\ttype filter hook input priority filter; policy accept;\n" + spoof +
                     conntrack +
                     "\t\tiifname @pod_ifaces meta nfproto ipv4 jump egress_v4 comment \"pods to this node: "
                     "their egress\"\n"
                     "\t\tiifname @pod_ifaces meta nfproto ipv6 jump egress_v6\n\t}");
    for (const Dir& d : kDirs) {
      for (const Family& f : kFamilies) {
        const std::string m = f.match;
        const std::string pod = m + " " + d.pod_side;
        const std::string peer = m + " " + d.peer_side;
        const std::string p = std::string(d.prefix) + "_";
        const std::string s = std::string("_") + f.suffix;
        std::string c = std::string("chain ") + d.name + "_" + f.suffix + " {\n";
        c += "\t\t" + pod + " != @" + p + "isolated" + s + " return comment \"not isolated\"\n";
        c += "\t\t" + pod + " . " + peer + " . meta l4proto . th dport @" + p + "exact" + s + " return\n";
        c += "\t\t" + pod + " . " + peer + " . meta l4proto @" + p + "proto" + s + " return\n";
        c += "\t\t" + pod + " . " + peer + " @" + p + "all" + s + " return\n";
        c += "\t\t" + pod + " . meta l4proto . th dport @" + p + "anyexact" + s + " return\n";
        c += "\t\t" + pod + " . meta l4proto @" + p + "anyproto" + s + " return\n";
        c += "\t\t" + pod + " @" + p + "anyall" + s + " return\n";
        c += "\t\t" + pod + " . " + peer + " . meta l4proto . th dport @" + p + "ranges" + s + " return\n";
        c += "\t\t" + pod + " @" + p + "denied" + s + " log prefix \"netpol " + d.name + " deny \" group " + log +
             " drop comment \"isolated, and no policy allows it\"\n\t}";
        chains.push_back(std::move(c));
      }
    }
    return chains;
  }

  const policy::NodeProgram& program_;
  NftOptions options_;
  std::vector<NftSet> sets_;
  std::map<std::string, size_t> index_;
  std::map<std::pair<std::string, std::string>, BoxGroup> boxes_;  // (set, pod address) -> boxes
  PodElements* pod_sink_ = nullptr;  // RunPod collects here instead of in sets_
};

}  // namespace

std::string ElementComment(const std::string& origin) { return "comment " + Comment(origin); }

void ElementEdits::Delete(const std::string& set, const std::string& element) {
  std::string& list = edits_[set].first;
  list += (list.empty() ? "" : ", ") + element;
}

void ElementEdits::Add(const std::string& set, const std::string& element, const std::string& origin) {
  std::string& list = edits_[set].second;
  list += (list.empty() ? "" : ", ") + element + " " + ElementComment(origin);
}

std::string ElementEdits::Commands() const {
  const std::string table = std::string(kTableFamily) + " " + kTableName;
  std::string out;
  for (const auto& [set, edit] : edits_) {
    if (!edit.first.empty()) out += "delete element " + table + " " + set + " { " + edit.first + " }\n";
  }
  for (const auto& [set, edit] : edits_) {
    if (!edit.second.empty()) out += "add element " + table + " " + set + " { " + edit.second + " }\n";
  }
  return out;
}

std::string ElementText(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? " . " : "") + fields[i];
  return out;
}

NftRuleset RenderRuleset(const policy::NodeProgram& program, const NftOptions& options) {
  return Renderer(program, options).Run();
}

PodElements RenderPod(const std::string& name, const policy::LocalPod& pod, const policy::NodeProgram& program,
                      const NftOptions& options) {
  return Renderer(program, options).RunPod(name, pod);
}

std::string TableDefinition(const NftRuleset& r) {
  std::string out = std::string("table ") + kTableFamily + " " + kTableName + " {\n\tcomment " +
                    Quoted(r.table_comment) + "\n";
  for (const NftSet& set : r.sets) {
    out += "\tset " + set.name + " {\n\t\ttype " + set.type + "\n";
    if (set.interval) out += "\t\tflags interval\n";
    if (set.counter) out += "\t\tcounter\n";
    out += "\t\tcomment " + Comment(set.comment) + "\n";
    if (!set.elements.empty()) {
      out += "\t\telements = {";
      bool first = true;
      for (const auto& [element, origin] : set.elements) {
        out += std::string(first ? " " : ",\n\t\t\t     ") + element + " " + ElementComment(origin);
        first = false;
      }
      out += " }\n";
    }
    out += "\t}\n";
  }
  for (const std::string& chain : r.chains) out += "\t" + chain + "\n";
  return out + "}\n";
}

}  // namespace netpol::dataplane::nft
