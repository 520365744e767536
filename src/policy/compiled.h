// The compiled form: what the dataplane enforces for the pods on one node.
//
// The boundary between the engine and any dataplane backend (nftables now, eBPF
// later). Policy meaning (selectors, namespaces, named ports, defaulting) is
// interpreted here, once; a backend sees only addresses, protocols and ports:
//
//   NodeProgram program = CompileNode(engine, local);  // policy/compile.h
//   for (const auto& [name, pod] : program.pods)
//     if (pod.ingress.isolated) ... pod.ingress.allow ... program.sets.at(id) ...
//
// For each local pod and direction: isolated or not, and the allowances that let
// traffic through, each peer addresses x ports. Peer address sets are shared
// between pods and rules that use the same peers (content-addressed ids).
// ClusterNetworkPolicies (docs/SEMANTICS.md §21) come compiled into disjoint
// decision boxes per tier (peer range x protocols x ports -> Accept or Deny,
// the first rule's, with Pass compiled away), so a dataplane decides a tier
// with one lookup:
//
//   for (const DecisionBox& box : pod.ingress.admin.boxes()) ... box.action, box.origin ...
// Deterministic (ordered containers, sorted members), so two programs compare
// with == and Diff() yields the minimal change.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "policy/direction.h"

namespace netpol::policy {

struct PortSpan {
  api::Protocol protocol = api::Protocol::kTCP;
  uint16_t first = 1;
  uint16_t last = 65535;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const PortSpan&, const PortSpan&) = default;
};

struct AddressRange {
  IpAddress first;
  IpAddress last;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const AddressRange&, const AddressRange&) = default;
};

// Peer addresses: exact addresses (pods) and ranges (ipBlocks minus except).
struct AddressSet {
  std::vector<IpAddress> addresses;  // sorted, unique
  std::vector<AddressRange> ranges;  // sorted, non-overlapping
  std::string origin;                // "shop/db-access ingress[0].from[1]" (first user)
  bool Contains(const IpAddress& ip) const;
  friend bool operator==(const AddressSet& a, const AddressSet& b) {
    return a.addresses == b.addresses && a.ranges == b.ranges;
  }
};

struct Allowance {
  std::optional<std::string> peers;  // AddressSet id; nullopt: any address
  std::vector<PortSpan> ports;       // empty: every protocol and port
  std::string origin;                // "shop/db-access ingress[0]"
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const Allowance&, const Allowance&) = default;
};

// IP protocol numbers, for decision boxes (which also cover ICMP and others).
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoSctp = 132;
uint8_t IpProtocolNumber(api::Protocol protocol);

// What a ClusterNetworkPolicy tier decides for one box of traffic.
enum class TierAction : uint8_t { kAccept, kDeny };

// One box of a tier's decisions for one pod and direction: peer addresses (one
// family) x IP protocols x destination ports. Ports 0-65535 mean every port,
// and protocols without ports (ICMP) too; a narrower port range only occurs
// for TCP, UDP and SCTP. The boxes of a tier are disjoint, so the box a
// connection falls in is the decision of the first rule (in the tier's order)
// that matches it; where a Pass came first, or no rule matched, there is no box.
struct DecisionBox {
  AddressRange peers;
  uint8_t protocol_first = 0;
  uint8_t protocol_last = 255;
  uint16_t port_first = 0;
  uint16_t port_last = 65535;
  TierAction action = TierAction::kDeny;
  std::string origin;  // "admin/guard ingress[0] deny-dev"

  bool all_ports() const { return port_first == 0 && port_last == 65535; }
  bool Contains(const IpAddress& peer, uint8_t protocol, uint16_t port) const;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const DecisionBox&, const DecisionBox&) = default;
};

// A tier's boxes for one pod and direction, sorted; shared between the pods of
// one class (immutable once compiled), compared by content. A backend that
// installs one copy of equal decisions for all the pods that have them (the
// nftables per-class chains) names that copy by its content digest, per
// family, computed once here instead of per pod:
//
//   if (tier.has(IpFamily::kV4)) chain = "in_admin_c" + Hex(tier.digest(IpFamily::kV4)) + "_v4";
class TierDecisions {
 public:
  TierDecisions() = default;
  explicit TierDecisions(std::vector<DecisionBox> boxes);
  const std::vector<DecisionBox>& boxes() const;
  bool empty() const { return data_ == nullptr || data_->boxes.empty(); }
  // Whether some box's peers are of `family`.
  bool has(IpFamily family) const { return data_ != nullptr && data_->has[Index(family)]; }
  // A stable hash of the boxes of `family` (peers, protocols, ports, action,
  // origin): equal boxes give equal digests, in every process and run.
  uint64_t digest(IpFamily family) const { return data_ == nullptr ? 0 : data_->digest[Index(family)]; }
  // The box holding a connection's peer, protocol and port, if any.
  const DecisionBox* Find(const IpAddress& peer, uint8_t protocol, uint16_t port) const;
  friend bool operator==(const TierDecisions& a, const TierDecisions& b) {
    return a.data_ == b.data_ || a.boxes() == b.boxes();
  }

 private:
  static size_t Index(IpFamily family) { return family == IpFamily::kV4 ? 0 : 1; }
  struct Data {
    std::vector<DecisionBox> boxes;
    bool has[2] = {false, false};
    uint64_t digest[2] = {0, 0};
  };
  std::shared_ptr<const Data> data_;
};

struct DirectionProgram {
  // The Admin tier, first: where it has a box, the box decides.
  TierDecisions admin;
  // The NetworkPolicy tier: an isolated pod is allowed what `allow` allows and
  // denied everything else (nothing below is looked at).
  bool isolated = false;
  std::vector<Allowance> allow;  // sorted
  // The Baseline tier, for pods NetworkPolicies do not isolate; then allowed.
  TierDecisions baseline;
  bool has_tiers() const { return !admin.empty() || !baseline.empty(); }
  friend bool operator==(const DirectionProgram&, const DirectionProgram&) = default;
};

struct LocalPod {
  std::vector<IpAddress> ips;
  std::string interface;  // host-side interface, when known (anti-spoofing)
  DirectionProgram ingress;
  DirectionProgram egress;
  // Scheduled to the node with its addresses reserved, not wired yet (its
  // rules are put in force ahead of its CNI ADD): nothing may send from its
  // addresses until it is.
  bool reserved = false;
  friend bool operator==(const LocalPod&, const LocalPod&) = default;
};

// A rule the compiled form cannot carry as written.
struct CompileNote {
  std::string origin;  // "admin/x egress[0] allow-example"
  // A Deny or Pass the dataplane cannot enforce: traffic the engine denies
  // (or sends on) could pass. An Accept left out only fails closed.
  bool fails_open = false;
  std::string text;  // the whole sentence, origin first
  friend bool operator==(const CompileNote&, const CompileNote&) = default;
};

// Sets are immutable once compiled and shared: between successive programs,
// the compiler's cache and a backend's memory of what it installed, so a
// recompile that changes one pod copies no addresses.
using SharedAddressSet = std::shared_ptr<const AddressSet>;

struct NodeProgram {
  std::map<std::string, LocalPod> pods;          // "namespace/name"
  std::map<std::string, SharedAddressSet> sets;  // id -> members (never null)
  // What the compiled form leaves out because no packet shows it (domainNames
  // peers, docs/SEMANTICS.md §21), one per rule, sorted. Not compared by ==.
  std::vector<CompileNote> notes;

  const AddressSet& set(const std::string& id) const { return *sets.at(id); }
  // Equal pods and equal set contents.
  friend bool operator==(const NodeProgram& a, const NodeProgram& b);

  // What the compiled form decides for a new connection between two addresses,
  // as a dataplane that knows only this program would (used to prove the
  // compiled form equal to the engine). Connections the node itself opens
  // (`from_node`: kubelet, hostNetwork pods) never pass the pods' ingress check.
  bool Allows(const IpAddress& src, const IpAddress& dst, api::Protocol protocol, uint16_t port,
              bool from_node = false) const;
  // The same for any IP protocol (1 ICMP, 58 ICMPv6, ...; port 0 for those without ports).
  bool AllowsIp(const IpAddress& src, const IpAddress& dst, uint8_t ip_protocol, uint16_t port,
                bool from_node = false) const;
};

// What changed between two programs of one node, by pod. Set ids are content
// hashes, so a pod whose peers' addresses changed is a changed pod.
struct ProgramDelta {
  std::vector<std::string> added;
  std::vector<std::string> changed;
  std::vector<std::string> removed;
  bool empty() const { return added.empty() && changed.empty() && removed.empty(); }
};
ProgramDelta Diff(const NodeProgram& before, const NodeProgram& after);

}  // namespace netpol::policy
