// Address allocation for pods on this node, kept in a state directory so that
// every plugin process (the runtime runs one per ADD, many at once) agrees.
//
//   Result<Ipam> ipam = Ipam::Open("/var/lib/netpol/cni/netpol", {*IpPrefix::Parse("198.18.1.0/24")});
//   Result<std::vector<IpAddress>> ips = ipam->Allocate({"c1", "eth0"});   // one per range
//   Status done = ipam->Release({"c1", "eth0"});                          // idempotent
//
// One file per allocated address, named by the address and holding its owner
// (container id and interface), written under an exclusive lock on the
// directory's lock file: concurrent ADDs never hand out one address twice. A
// plugin killed mid-ADD leaves at most a file naming its owner, which the
// runtime's DEL (or GC with the valid attachments) removes. Each owner also
// has an index file naming its addresses, written after them: an ADD checks
// it, and the file after the last address handed out, instead of reading
// every allocation (it reads them all only when those disagree or are taken).
// Allocation resumes
// after the last address handed out, so a released address is not reused at
// once (a late packet to an old pod does not reach a new one).
//
// The node agent may reserve a pod's addresses before its ADD (it sees the pod
// scheduled to the node first) and program the pod's rules for them ahead of
// time; the ADD that names the pod then takes them over:
//
//   ipam->Allocate(ReservationOwner("shop", "db-0"));                        // the agent
//   ipam->Allocate({"c1", "eth0"}, ReservationOwner("shop", "db-0"));        // the ADD
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/result.h"

namespace netpol::cni {

// The key under which the runtime knows an attachment.
struct Owner {
  std::string container_id;
  std::string ifname;
  friend auto operator<=>(const Owner&, const Owner&) = default;
};

// The owner of a pod's addresses reserved before its ADD. Never a runtime's
// attachment: a container id starts with a letter or digit and has no ':'.
Owner ReservationOwner(std::string_view pod_namespace, std::string_view pod_name);
// The pod ("namespace/name") a reservation is for; nullopt for an attachment.
std::optional<std::string> ReservedPod(const Owner& owner);

struct Allocation {
  IpAddress address;
  Owner owner;
};

class Ipam {
 public:
  [[nodiscard]] static Result<Ipam> Open(std::string directory, std::vector<IpPrefix> ranges);

  // One address from each range for `owner`; the ones it already has when it
  // has some (a repeated ADD); else those `reserved` holds, taken over (the
  // reservation ends; `*took_over`, when given, says whether that happened).
  // kUnavailable when a range is exhausted.
  Result<std::vector<IpAddress>> Allocate(const Owner& owner, const std::optional<Owner>& reserved = {},
                                          bool* took_over = nullptr);
  // Releases every address of `owner`; no error when it has none. With
  // `give_back_to` (an ADD that failed after taking the pod's reservation
  // over), the addresses go back to that reservation instead: the agent's
  // rules for them stay right, and the pod's next ADD takes them over again.
  Status Release(const Owner& owner, const std::optional<Owner>& give_back_to = {});
  Result<std::vector<Allocation>> List();
  // Releases every allocation whose owner is not in `valid`; returns them.
  // Reservations are kept: they are the agent's to release, not the runtime's.
  Result<std::vector<Allocation>> Retain(const std::vector<Owner>& valid);

 private:
  Ipam(std::string directory, std::vector<IpPrefix> ranges)
      : directory_(std::move(directory)), ranges_(std::move(ranges)) {}
  Result<std::vector<Allocation>> ListLocked();
  // What the owner's index file names, one per range, when the allocations
  // agree; nullopt otherwise.
  std::optional<std::vector<IpAddress>> HeldLocked(const Owner& owner, const std::string& owner_file);

  std::string directory_;
  std::vector<IpPrefix> ranges_;
};

// The addresses a range hands out: all but the network address (and, for IPv4,
// the broadcast address).
bool Allocatable(const IpPrefix& range, const IpAddress& ip);

}  // namespace netpol::cni
