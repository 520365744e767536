// What the node agent knows and wants, without threads or I/O: the cluster as
// its watches delivered it (in the engine), the pods attached on this node
// (the CNI plugin's registrations), the pods whose addresses it reserved ahead
// of their ADD, and the generations of the desired state (wanted) and of the
// state in force (applied). The agent (agent.cpp) holds one under its lock and
// feeds it; tests drive it with a fake allocator and a fake backend.
//
//   NodeState state({.node_name = "node-1"}, log);
//   state.OnListBegin("Pod"); state.OnListPage(resource, items); state.OnListEnd("Pod");  // ... every kind
//   state.Attach(registration);                        // CNI "stage" or "add"
//   NodeState::Turn turn = state.Program(backend, &allocator, unlocked);
//   if (turn.done) {
//     state.Committed(turn.generation);                             // answer who waits for it
//     state.ReleaseEnded(turn.generation, allocator, unlocked);
//   }
//
// The allocator and the backend are slow (files under a lock, the kernel's
// transaction), so the state calls them through `unlocked`, which runs its
// argument with the caller's lock released (the identity in a test): watch
// events and CNI requests change the state meanwhile, and the state reads
// itself again afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/log.h"
#include "base/ip.h"
#include "base/result.h"
#include "cni/ipam.h"
#include "cni/registry.h"
#include "dataplane/backend.h"
#include "kube/client.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"

namespace netpol::agent {

// Where the agent reserves pods' addresses ahead of their ADD: the plugin's
// allocator (cni::Ipam, under the owner cni::ReservationOwner), a fake in tests.
class AddressAllocator {
 public:
  virtual ~AddressAllocator() = default;
  // The pod's addresses ("namespace/name"): those it holds, else new ones.
  [[nodiscard]] virtual Result<std::vector<IpAddress>> Reserve(const std::string& pod) = 0;
  // Releases what the pod holds; no error when it holds nothing.
  [[nodiscard]] virtual Status Release(const std::string& pod) = 0;
};

// Runs `work` with the caller's lock released, and takes it again.
using Unlocked = std::function<void(const std::function<void()>& work)>;

class NodeState {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string node_name{};
    // Pods scheduled here are reserved addresses and programmed before their
    // ADD (the agent has the plugin's allocator).
    bool reserve_ahead = false;
  };

  NodeState(Options options, Logger log);

  // --- start: what a previous run left ------------------------------------------
  void AdoptRegistrations(const std::vector<cni::PodRegistration>& registered);
  // Reservations found in the allocator: kept for their pods, released once
  // the pod list shows them gone or attached.
  void AdoptReservations(const std::vector<cni::Allocation>& allocations);

  // --- the API's objects ---------------------------------------------------------
  // A watch event ("ADDED", "MODIFIED", "DELETED") of `kind`.
  // An item that did not decode is logged and skipped.
  void OnObject(const std::string& kind, const std::string& type, api::ApiItem& item);
  // A list arrives page by page; what it did not have is deleted at its end.
  void OnListBegin(const std::string& kind);
  void OnListPage(const kube::PolicyResource& resource, std::vector<api::ApiItem>& items);
  void OnListEnd(const std::string& kind);
  // The same for objects given as JSON values (tests; the agent's watches
  // hand it api::ApiItems decoded from the API's text).
  void OnObject(const std::string& kind, const std::string& type, const kube::Json& object);
  void OnListPage(const kube::PolicyResource& resource, std::vector<kube::Json>& items);
  // Every kind listed once (an optional kind the cluster does not serve
  // counts as listed, empty): nothing is programmed before.
  bool Synced() const;

  // --- the CNI plugin's requests -------------------------------------------------
  // Attaches a pod; `replaced`, when given, receives the registration the pod
  // had before. Takes over the pod's reservation (same addresses) or ends it.
  void Attach(const cni::PodRegistration& registration,
              std::optional<cni::PodRegistration>* replaced = nullptr);
  // A DEL ends the attachment it names: false (nothing changes) when the pod
  // is attached by another sandbox (a late DEL of an earlier one).
  bool Detach(const cni::PodRegistration& registration);
  // A staged pod whose ADD did not complete: attached as it was before
  // (`replaced`), or not at all, unless another ADD attached it since.
  // `plugin_done`: the plugin has exited, so addresses it took over from the
  // pod's reservation are back in it (reserved again while the pod is
  // scheduled here; released when it is gone).
  void Withdraw(const cni::PodRegistration& staged, const std::optional<cni::PodRegistration>& replaced,
                bool plugin_done);
  // The start-race check: whether the watch has caught up with `read`, the
  // pod namespace's policies as the API listed them (a NetworkPolicyList):
  // every listed policy applied at its resourceVersion or newer, and every
  // policy known here, missing there and older than the read, deleted.
  bool CaughtUp(const std::string& pod_namespace, const kube::Json& read) const;

  // --- programming ---------------------------------------------------------------
  // Something changed: the dataplane is behind until the next program.
  void Want();
  uint64_t wanted() const { return wanted_; }
  uint64_t applied() const { return applied_; }
  Clock::time_point wanted_at() const { return wanted_at_; }
  // Synced and behind.
  bool Due() const { return Synced() && applied_ != wanted_; }

  // One program: reserves the addresses of the pods queued for it
  // (`allocator` unlocked; none without one), compiles, applies on `backend`
  // (unlocked). The program carries generation `generation`.
  struct Turn {
    uint64_t generation = 0;
    Clock::time_point wanted_at, started, compiled, applied;
    size_t pods = 0;       // in the program
    size_t installed = 0;  // the backend's elements once it is applied
    Result<dataplane::ApplyStats> done = dataplane::ApplyStats{};
  };
  Turn Program(dataplane::Backend& backend, AddressAllocator* allocator, const Unlocked& unlocked);
  // The program of `generation` is in force: counts the reservations it carried.
  void Committed(uint64_t generation);
  // Then releases the reservations it no longer carries (`allocator`
  // unlocked; a failed release is tried again after the next program).
  void ReleaseEnded(uint64_t generation, AddressAllocator& allocator, const Unlocked& unlocked);

  // The parts of Program, for a caller that applies itself.
  void ReserveQueued(AddressAllocator& allocator, const Unlocked& unlocked);
  policy::NodeProgram Compile();

  // --- reading -------------------------------------------------------------------
  const policy::Engine& engine() const { return engine_; }
  size_t local_pods() const { return local_.size(); }
  size_t reserved_pods() const { return reserved_.size(); }
  bool attached(const std::string& pod) const { return local_.contains(pod); }
  std::optional<std::vector<IpAddress>> reservation(const std::string& pod) const;
  uint64_t events() const { return events_; }
  const std::map<std::string, uint64_t>& events_by_kind() const { return events_by_kind_; }
  uint64_t reservations_in_force() const { return reservations_in_force_; }

 private:
  struct Reservation {
    std::vector<IpAddress> ips;
    uint64_t generation = 0;  // the first program carrying it
    bool in_force = false;
  };

  static api::ApiItem ItemOf(const kube::Json& object);
  void ApplyPod(api::Pod pod);
  bool NeedsReservation(const std::string& key, const api::Pod& pod) const;
  void MaybeReserve(const std::string& key, const api::Pod& pod);
  void Unreserve(const std::string& key, bool pod_gone = false);
  void Forget(const std::string& kind, const std::string& ns, const std::string& name);

  Options options_;
  Logger log_;
  policy::Engine engine_;
  policy::NodeCompiler compiler_;                      // keeps peer sets between programs
  std::map<std::string, api::Pod> node_pods_;          // this node's pods as the API has them
  std::map<std::string, cni::PodRegistration> local_;  // ns/name -> registration
  std::map<std::string, Reservation> reserved_;        // ns/name ->
  // Reservations to release once a program without them is in force.
  std::vector<std::pair<uint64_t, std::string>> unreserving_;  // (generation, ns/name)
  // Pods to reserve addresses for at the next program.
  std::set<std::string> to_reserve_;
  std::map<std::string, bool> listed_;                    // kind -> listed once
  std::map<std::string, std::set<std::string>> listing_;  // kind -> ns/name in the list under way
  // The Nodes and ClusterNetworkPolicies the engine has: what a relist compares with.
  std::map<std::string, std::set<std::string>> cluster_scoped_;  // kind -> names
  std::map<std::string, uint64_t> policy_rv_;                    // ns/name -> resourceVersion applied
  uint64_t wanted_ = 0;
  uint64_t applied_ = 0;
  Clock::time_point wanted_at_;
  std::vector<policy::CompileNote> notes_logged_;
  uint64_t events_ = 0;
  std::map<std::string, uint64_t> events_by_kind_;
  uint64_t reservations_in_force_ = 0;
};

// "namespace/name", the key of a pod in the state and in a program.
std::string PodKey(const std::string& ns, const std::string& name);

}  // namespace netpol::agent
