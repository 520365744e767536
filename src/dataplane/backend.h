// The dataplane contract: make the node enforce a compiled program.
//
//   std::unique_ptr<Backend> backend = ...;          // nft::NftBackend today
//   Status s = backend->Apply(program);              // atomic; on error the old rules stay
//   Result<std::string> text = backend->Show();      // what is programmed, commented
//   Result<std::vector<std::string>> drift = backend->Verify();   // someone else changed it?
//   Result<std::vector<ConnectionCount>> counted = backend->CountConnections();   // for metrics
//
// Backends are declarative: Apply takes the whole desired program, reads what
// the kernel has, and changes only the difference, in one transaction. They
// know nothing of selectors or namespaces: policy meaning ends at
// policy::NodeProgram (src/policy/compiled.h), so an eBPF backend is another
// implementation of this interface and nothing above it changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/objects.h"
#include "base/ip.h"
#include "base/result.h"
#include "policy/compiled.h"

namespace netpol::dataplane {

struct ApplyStats {
  bool created = false;  // the table did not exist (or had another schema) and was built
  size_t added = 0;      // elements added
  size_t removed = 0;    // elements removed
  std::string commands;  // the transaction sent as nft text ("" when nothing changed or it went as a batch)
  bool batched = false;  // sent as a netlink batch of element edits, not through a parser
  // Where the time went: planning (render, diff) and sending (encoding, the
  // kernel's transaction, its answer).
  double plan_ms = 0;
  double send_ms = 0;
};

// Changes someone else made to what a backend installed, as the kernel
// announces them (nftables: its change notifications). Changes this process
// made are left out.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // Waits up to `timeout`; what others changed meanwhile, one line each
  // ("table inet netpol deleted by nft (pid 4242)"), empty when nothing.
  [[nodiscard]] virtual Result<std::vector<std::string>> Next(std::chrono::milliseconds timeout) = 0;
};

// What decided a connection the dataplane counted or logged: a NetworkPolicy
// (or the isolation no rule lifted), or a ClusterNetworkPolicy tier.
enum class Decider : uint8_t { kNetworkPolicy, kAdminTier, kBaselineTier };

// A new connection a rule logged (every denied one; allowed ones when asked
// for), as the dataplane read it, with what the rule said of it.
struct LoggedPacket {
  std::string prefix{};  // the rule's own text (nft: its log prefix, "netpol ingress deny ")
  policy::Direction direction = policy::Direction::kIngress;  // the direction that decided
  bool allowed = false;
  Decider decider = Decider::kNetworkPolicy;
  IpAddress src = IpAddress::V4(0);
  IpAddress dst = IpAddress::V4(0);
  uint8_t ip_protocol = 0;  // 6 TCP, 17 UDP, 132 SCTP, ...
  std::optional<api::Protocol> protocol{};
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

// Logged connections as they come, for a thread of its own.
class PacketFeed {
 public:
  virtual ~PacketFeed() = default;
  // Waits up to `timeout`; the packets logged meanwhile (none when nothing came).
  [[nodiscard]] virtual Result<std::vector<LoggedPacket>> Next(std::chrono::milliseconds timeout) = 0;
};

// One counter of the installed rules: the new connections decided at one
// address of a local pod, in one direction, by one decider, one way.
struct ConnectionCount {
  std::optional<IpAddress> pod{};  // nullopt: the dataplane could not say which address
  policy::Direction direction = policy::Direction::kIngress;
  Decider decider = Decider::kNetworkPolicy;
  bool allowed = false;
  uint64_t connections = 0;
  friend bool operator==(const ConnectionCount&, const ConnectionCount&) = default;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Programs `program`, changing only what differs from what is installed. One
  // atomic transaction: on failure nothing changed and the error says why.
  [[nodiscard]] virtual Result<ApplyStats> Apply(const policy::NodeProgram& program) = 0;
  // The same, for a caller that is done with `program`: a backend that keeps
  // what it programmed may take it instead of copying it.
  [[nodiscard]] virtual Result<ApplyStats> Apply(policy::NodeProgram&& program) {
    return Apply(static_cast<const policy::NodeProgram&>(program));
  }
  // The transaction Apply would send, without sending it.
  [[nodiscard]] virtual Result<std::string> Plan(const policy::NodeProgram& program) = 0;
  // What is installed, human-readable, each piece commented with its origin.
  [[nodiscard]] virtual Result<std::string> Show() = 0;
  // Removes everything this backend installed.
  [[nodiscard]] virtual Status Remove() = 0;

  // Drift: whether what is installed is still what this backend last put in
  // force (reads the kernel back). Empty when it is; else what differs, one
  // line each, and the next Apply restores it. Not concurrently with Apply.
  [[nodiscard]] virtual Result<std::vector<std::string>> Verify() { return std::vector<std::string>{}; }
  // A feed of others' changes to what this backend installs, for a thread of
  // its own; kUnimplemented (or an error) when there is none: Verify now and
  // then is the only way to find them.
  [[nodiscard]] virtual Result<std::unique_ptr<ChangeFeed>> WatchChanges() {
    return Error(ErrorCode::kUnimplemented, "this dataplane announces no changes");
  }

  // Observability. Elements (entries of whatever kind) installed for the
  // pods, 0 before the first Apply.
  [[nodiscard]] virtual size_t InstalledElements() const { return 0; }
  // The installed rules' per-pod counters of new connections, read from
  // the kernel now (not concurrently with Apply's bookkeeping: it only reads).
  [[nodiscard]] virtual Result<std::vector<ConnectionCount>> CountConnections() {
    return std::vector<ConnectionCount>{};
  }
  // The connections the rules log, for a thread of its own; kUnimplemented
  // when this dataplane logs none.
  [[nodiscard]] virtual Result<std::unique_ptr<PacketFeed>> WatchPackets() {
    return Error(ErrorCode::kUnimplemented, "this dataplane logs no packets");
  }
};

}  // namespace netpol::dataplane
