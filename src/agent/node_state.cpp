#include "agent/node_state.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>

#include "api/load.h"

namespace netpol::agent {
namespace {

using kube::Json;

// The same addresses, in any order (a registration lists them by range, the
// allocator's listing by address).
bool SameAddresses(std::vector<IpAddress> a, std::vector<IpAddress> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// A pod whose containers have all ended for good.
bool Finished(const api::Pod& pod) {
  return pod.phase == "Succeeded" || pod.phase == "Failed";
}

uint64_t RvOf(const std::string& rv) {
  return rv.empty() ? 0 : std::strtoull(rv.c_str(), nullptr, 10);
}

// Named apart: a Json converts to std::string implicitly (and throws).
uint64_t RvOfJson(const Json& object) {
  return RvOf(object["metadata"].value("resourceVersion", ""));
}

std::string Addresses(const std::vector<IpAddress>& ips) {
  std::string out;
  for (const IpAddress& ip : ips) out += (out.empty() ? "" : ",") + ip.ToString();
  return out;
}

}  // namespace

std::string PodKey(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

NodeState::NodeState(Options options, Logger log)
    : options_(std::move(options)), log_(std::move(log)), wanted_at_(Clock::now()) {}

void NodeState::AdoptRegistrations(const std::vector<cni::PodRegistration>& registered) {
  for (const cni::PodRegistration& reg : registered) local_[PodKey(reg.pod_namespace, reg.pod_name)] = reg;
}

void NodeState::AdoptReservations(const std::vector<cni::Allocation>& allocations) {
  options_.reserve_ahead = true;
  for (const cni::Allocation& allocation : allocations) {
    if (const std::optional<std::string> pod = cni::ReservedPod(allocation.owner))
      reserved_[*pod].ips.push_back(allocation.address);
  }
}

// --- the API's objects -------------------------------------------------------------

// An object as a JSON value (tests; the agent's watches decode the API's text
// straight into api objects): the item the text would have given.
api::ApiItem NodeState::ItemOf(const Json& object) {
  api::ApiItem item;
  if (const auto meta = object.find("metadata"); meta != object.end() && meta->is_object()) {
    item.namespace_ = meta->value("namespace", "");
    item.name = meta->value("name", "");
    item.resource_version = meta->value("resourceVersion", "");
  }
  api::LoadResult loaded = api::LoadJson(object, "watch", {.field_positions = false});
  if (!loaded.ok() || loaded.objects.size() != 1) {
    for (const auto& d : loaded.diagnostics) item.problem += d.ToString() + "; ";
  } else {
    item.object = std::move(loaded.objects.front());
  }
  return item;
}

// A pod as the engine should see it: a local pod's addresses come from its
// registration (or reservation) until the API reports them.
void NodeState::ApplyPod(api::Pod pod) {
  const std::string key = PodKey(pod.metadata.namespace_, pod.metadata.name);
  if (pod.pod_ips.empty()) {
    const std::vector<IpAddress>* ips = nullptr;
    if (const auto reg = local_.find(key); reg != local_.end()) {
      ips = &reg->second.ips;
    } else if (const auto res = reserved_.find(key); res != reserved_.end()) {
      ips = &res->second.ips;
    }
    if (ips != nullptr) {
      for (const IpAddress& ip : *ips) pod.pod_ips.push_back(ip.ToString());
    }
  }
  engine_.Apply(pod);
}

// Whether a pod the API shows scheduled here should have its addresses
// reserved: not running yet, not attached, not finished, not reserved.
bool NodeState::NeedsReservation(const std::string& key, const api::Pod& pod) const {
  return options_.reserve_ahead && pod.pod_ips.empty() && !pod.spec.host_network && !Finished(pod) &&
         !local_.contains(key) && !reserved_.contains(key);
}

// Queues the pod for a reservation, made before the next program (which its
// caller asks for).
void NodeState::MaybeReserve(const std::string& key, const api::Pod& pod) {
  if (NeedsReservation(key, pod)) to_reserve_.insert(key);
}

// The reservation of `key` ends without an ADD taking it over (the pod is
// gone, or attached with other addresses): its addresses go back to the
// allocator once a program without them is in force. `pod_gone`: the pod left
// this node, so whatever reservation the allocator holds for it goes, also one
// this state does not know of (an ADD that failed after taking it over gives
// its addresses back to it).
void NodeState::Unreserve(const std::string& key, bool pod_gone) {
  if (reserved_.erase(key) == 0 && !(pod_gone && options_.reserve_ahead)) return;
  unreserving_.emplace_back(wanted_ + 1, key);
}

// An object of `kind` is gone (deleted, or missing from a relist).
void NodeState::Forget(const std::string& kind, const std::string& ns, const std::string& name) {
  engine_.Delete(kind, ns, name);  // a namespace only referenced, never listed, is not deleted
  if (const auto it = cluster_scoped_.find(kind); it != cluster_scoped_.end()) it->second.erase(name);
  if (kind == "NetworkPolicy") policy_rv_.erase(PodKey(ns, name));
  if (kind == "Pod" && node_pods_.erase(PodKey(ns, name)) != 0) Unreserve(PodKey(ns, name), true);
}

void NodeState::OnObject(const std::string& kind, const std::string& type, const Json& object) {
  api::ApiItem item = ItemOf(object);
  OnObject(kind, type, item);
}

void NodeState::OnObject(const std::string& kind, const std::string& type, api::ApiItem& item) {
  const std::string& ns = item.namespace_;
  const std::string& name = item.name;
  if (type == "DELETED") {
    Forget(kind, ns, name);
  } else if (!item.object) {
    log_(LogLevel::kWarn, "ignoring an object netpol cannot decode",
         {{"kind", kind}, {"object", ns.empty() ? name : PodKey(ns, name)}, {"why", item.problem}});
  } else {
    if (kind == "NetworkPolicy") policy_rv_[PodKey(ns, name)] = RvOf(item.resource_version);
    if (kind == "Node" || kind == "ClusterNetworkPolicy") cluster_scoped_[kind].insert(name);
    if (auto* pod = std::get_if<api::Pod>(&*item.object)) {
      if (pod->spec.node_name == options_.node_name) {
        node_pods_[PodKey(ns, name)] = *pod;
        if (Finished(*pod)) {
          Unreserve(PodKey(ns, name));  // finished without ever being wired here
        } else {
          MaybeReserve(PodKey(ns, name), *pod);
        }
      }
      ApplyPod(std::move(*pod));
    } else {
      engine_.Apply(*item.object);
    }
  }
  ++events_;
  ++events_by_kind_[kind];
  Want();
}

void NodeState::OnListBegin(const std::string& kind) {
  listing_[kind].clear();
}

void NodeState::OnListPage(const kube::PolicyResource& resource, std::vector<api::ApiItem>& items) {
  const std::string kind = resource.kind;
  std::set<std::string>& seen = listing_[kind];
  for (api::ApiItem& item : items) {
    // An object that does not decode is still listed: what the state had of
    // it stays (as after an event it cannot decode).
    seen.insert(PodKey(item.namespace_, item.name));
    OnObject(kind, "ADDED", item);
    item = api::ApiItem();  // freed as we go (the whole cluster is never held twice)
  }
}

void NodeState::OnListPage(const kube::PolicyResource& resource, std::vector<Json>& items) {
  std::vector<api::ApiItem> decoded;
  decoded.reserve(items.size());
  for (Json& object : items) {
    // Lists carry kind on the list, not on each item.
    object["kind"] = resource.kind;
    object["apiVersion"] = resource.api_version;
    decoded.push_back(ItemOf(object));
    object = Json();
  }
  OnListPage(resource, decoded);
}

void NodeState::OnListEnd(const std::string& kind) {
  const std::set<std::string> now = std::move(listing_[kind]);
  listing_.erase(kind);
  // What the engine has of this kind (it is the agent's only record).
  std::vector<std::pair<std::string, std::string>> had;
  if (kind == "Pod") {
    for (const policy::PodId id : engine_.Pods())
      had.emplace_back(engine_.pod(id).namespace_, engine_.pod(id).name);
  } else if (kind == "NetworkPolicy") {
    for (const policy::PolicyId id : engine_.Policies()) {
      const api::ObjectMeta& meta = engine_.policy(id).metadata;
      had.emplace_back(meta.namespace_, meta.name);
    }
  } else if (kind == "Namespace") {
    for (const auto& [name, labels] : engine_.Namespaces()) had.emplace_back("", name);
  } else {
    for (const std::string& name : cluster_scoped_[kind]) had.emplace_back("", name);
  }
  for (const auto& [ns, name] : had) {
    if (!now.contains(PodKey(ns, name))) Forget(kind, ns, name);
  }
  if (kind == "Pod") {
    // Reservations a previous run left for pods that are gone or attached.
    std::vector<std::string> ended;
    for (const auto& [key, r] : reserved_) {
      if (!node_pods_.contains(key) || local_.contains(key)) ended.push_back(key);
    }
    for (const std::string& key : ended) Unreserve(key);
  }
  listed_[kind] = true;
  Want();
}

bool NodeState::Synced() const {
  return listed_.size() == std::size(kube::kPolicyResources) + std::size(kube::kOptionalPolicyResources);
}

// --- the CNI plugin's requests -----------------------------------------------------

void NodeState::Attach(const cni::PodRegistration& reg, std::optional<cni::PodRegistration>* replaced) {
  const std::string key = PodKey(reg.pod_namespace, reg.pod_name);
  if (replaced != nullptr) {
    const auto it = local_.find(key);
    if (it != local_.end()) *replaced = it->second;
  }
  local_[key] = reg;
  if (const auto it = reserved_.find(key); it != reserved_.end()) {
    if (SameAddresses(it->second.ips, reg.ips)) {
      reserved_.erase(it);  // taken over by the ADD
    } else {
      Unreserve(key);  // the ADD allocated before the reservation was made
    }
  }
  // Another pod's reservation holding one of these addresses has lost it (its
  // ADD took it over and was killed before staging, and the runtime's DEL
  // freed it): the attached pod's claim wins, and the stale one must neither
  // program rules for the address nor make its pod a peer there.
  std::vector<std::string> stale;
  for (const auto& [other, r] : reserved_) {
    if (std::any_of(r.ips.begin(), r.ips.end(), [&](const IpAddress& ip) {
          return std::find(reg.ips.begin(), reg.ips.end(), ip) != reg.ips.end();
        })) {
      stale.push_back(other);
    }
  }
  for (const std::string& other : stale) {
    Unreserve(other);
    if (const auto it = node_pods_.find(other); it != node_pods_.end()) ApplyPod(it->second);
  }
  if (const auto it = node_pods_.find(key); it != node_pods_.end()) ApplyPod(it->second);
  log_(LogLevel::kInfo, "pod attached", {{"pod", key}, {"interface", reg.host_interface}});
  Want();
}

bool NodeState::Detach(const cni::PodRegistration& reg) {
  const std::string key = PodKey(reg.pod_namespace, reg.pod_name);
  // A late DEL of a pod's earlier sandbox must not detach the sandbox that
  // replaced it: the pod would lose its isolation (fail open).
  if (const auto it = local_.find(key); it != local_.end() && it->second.owner != reg.owner) {
    log_(LogLevel::kInfo, "detach of an earlier attachment ignored",
         {{"pod", key}, {"container", reg.owner.container_id}, {"attached", it->second.owner.container_id}});
    return false;
  }
  local_.erase(key);
  log_(LogLevel::kInfo, "pod detached", {{"pod", key}});
  Want();
  return true;
}

void NodeState::Withdraw(const cni::PodRegistration& staged,
                         const std::optional<cni::PodRegistration>& replaced, bool plugin_done) {
  const std::string key = PodKey(staged.pod_namespace, staged.pod_name);
  const auto it = local_.find(key);
  if (it == local_.end() || it->second.owner != staged.owner) return;
  if (replaced) {
    it->second = *replaced;
    // The engine had the pod at the withdrawn sandbox's addresses (when the
    // API shows none): back to the restored one's.
    if (const auto pod = node_pods_.find(key); pod != node_pods_.end()) ApplyPod(pod->second);
  } else {
    local_.erase(it);
    // Still scheduled here: reserved again (finding what the failed ADD gave
    // back), so the pod stays programmed ahead of its next ADD; gone
    // meanwhile: whatever was given back is released.
    if (const auto pod = node_pods_.find(key); pod != node_pods_.end()) {
      if (plugin_done) MaybeReserve(key, pod->second);
      ApplyPod(pod->second);
    } else if (plugin_done) {
      Unreserve(key, /*pod_gone=*/true);
    }
  }
  log_(LogLevel::kInfo, "pod withdrawn: its ADD did not complete", {{"pod", key}});
  Want();
}

bool NodeState::CaughtUp(const std::string& ns, const Json& read) const {
  const uint64_t read_at = RvOfJson(read);
  std::set<std::string> in_read;
  if (const auto items = read.find("items"); items != read.end() && items->is_array()) {
    for (const Json& p : *items) {
      const std::string name = PodKey(ns, p["metadata"].value("name", ""));
      in_read.insert(name);
      const auto it = policy_rv_.find(name);
      if (it == policy_rv_.end() || it->second < RvOfJson(p)) return false;
    }
  }
  // Known here, absent there, and not changed since the read: its deletion
  // has not reached the watch yet. (The namespace's policies are one range of
  // the ordered map.)
  const std::string prefix = ns + "/";
  for (auto it = policy_rv_.lower_bound(prefix); it != policy_rv_.end() && it->first.starts_with(prefix);
       ++it) {
    if (!in_read.contains(it->first) && it->second < read_at) return false;
  }
  return true;
}

// --- programming -------------------------------------------------------------------

void NodeState::Want() {
  ++wanted_;
  wanted_at_ = Clock::now();
}

std::optional<std::vector<IpAddress>> NodeState::reservation(const std::string& pod) const {
  const auto it = reserved_.find(pod);
  if (it == reserved_.end()) return std::nullopt;
  return it->second.ips;
}

void NodeState::ReserveQueued(AddressAllocator& allocator, const Unlocked& unlocked) {
  // Until none is left: pods queued while the lock was released are reserved
  // too, so the program that follows carries every pod queued before it
  // (their events asked for it, and may ask for no other).
  while (!to_reserve_.empty()) {
    const std::set<std::string> keys = std::exchange(to_reserve_, {});
    std::vector<std::pair<std::string, Result<std::vector<IpAddress>>>> made;
    made.reserve(keys.size());
    unlocked([&] {
      for (const std::string& key : keys) made.emplace_back(key, allocator.Reserve(key));
    });
    std::vector<std::string> unwanted;
    bool recorded = false;
    for (auto& [key, ips] : made) {
      if (!ips) {
        log_(LogLevel::kWarn, "cannot reserve a pod's addresses; its ADD will allocate them",
             {{"pod", key}, {"error", ips.error().message()}});
        continue;
      }
      // The pod may have gone, started or been attached meanwhile: its
      // reservation, never programmed, is released at once.
      const auto pod = node_pods_.find(key);
      if (pod == node_pods_.end() || !NeedsReservation(key, pod->second)) {
        unwanted.push_back(key);
        continue;
      }
      log_(LogLevel::kInfo, "pod reserved: its rules go in force before its ADD",
           {{"pod", key}, {"addresses", Addresses(*ips)}});
      reserved_[key] = {std::move(*ips), wanted_ + 1, false};
      ApplyPod(pod->second);
      recorded = true;
    }
    if (recorded) Want();  // the program that follows carries them
    if (unwanted.empty()) continue;
    // What an ADD took over meanwhile is not the reservation's any more: untouched.
    unlocked([&] {
      for (const std::string& key : unwanted) (void)allocator.Release(key);
    });
  }
}

// Registered pods the engine knows, compiled; registered pods it does not
// know yet, isolated both ways (fail closed); reserved pods, compiled, their
// addresses claimed until they are wired.
policy::NodeProgram NodeState::Compile() {
  std::map<std::string, std::string> names;
  for (const auto& [key, reg] : local_) names[key] = reg.host_interface;
  for (const auto& [key, r] : reserved_) names.emplace(key, "");
  policy::NodeProgram program = compiler_.Compile(engine_, names);
  // What the dataplane leaves out (domainNames peers), said once per change.
  if (program.notes != notes_logged_) {
    for (const policy::CompileNote& note : program.notes) {
      log_(note.fails_open ? LogLevel::kError : LogLevel::kWarn, "not enforced", {{"rule", note.text}});
    }
    notes_logged_ = program.notes;
  }
  for (const auto& [key, r] : reserved_) {
    if (const auto it = program.pods.find(key); it != program.pods.end() && !local_.contains(key))
      it->second.reserved = true;
  }
  for (const auto& [key, reg] : local_) {
    if (program.pods.contains(key) || reg.ips.empty()) continue;
    policy::LocalPod pod;
    pod.ips = reg.ips;
    pod.interface = reg.host_interface;
    pod.ingress.isolated = true;
    pod.egress.isolated = true;
    program.pods[key] = std::move(pod);
  }
  return program;
}

NodeState::Turn NodeState::Program(dataplane::Backend& backend, AddressAllocator* allocator,
                                   const Unlocked& unlocked) {
  if (allocator != nullptr) ReserveQueued(*allocator, unlocked);
  Turn turn;
  turn.generation = wanted_;
  turn.wanted_at = wanted_at_;
  turn.started = Clock::now();
  policy::NodeProgram program = Compile();
  turn.pods = program.pods.size();
  turn.compiled = Clock::now();
  // The backend's work needs nothing the state holds: watch events and CNI
  // requests go on meanwhile.
  unlocked([&] {
    turn.done = backend.Apply(std::move(program));
    turn.installed = backend.InstalledElements();
  });
  turn.applied = Clock::now();
  return turn;
}

void NodeState::Committed(uint64_t generation) {
  applied_ = std::max(applied_, generation);
  for (auto& [key, r] : reserved_) {
    if (!r.in_force && r.generation <= generation) {
      r.in_force = true;
      ++reservations_in_force_;
    }
  }
}

// Only the programming thread reserves, so none of these is reserved again
// while the lock is released.
void NodeState::ReleaseEnded(uint64_t generation, AddressAllocator& allocator, const Unlocked& unlocked) {
  std::vector<std::pair<uint64_t, std::string>> due;
  std::erase_if(unreserving_, [&](const auto& entry) {
    if (entry.first > generation) return false;
    // Reserved again meanwhile (the pod came back): the same addresses, kept.
    if (!reserved_.contains(entry.second)) due.push_back(entry);
    return true;
  });
  if (due.empty()) return;
  std::vector<std::pair<uint64_t, std::string>> failed;
  unlocked([&] {
    for (const auto& entry : due) {
      if (Status s = allocator.Release(entry.second); !s.ok()) {
        log_(LogLevel::kWarn, "cannot release a reservation; tried again after the next program",
             {{"pod", entry.second}, {"error", s.error().message()}});
        failed.push_back(entry);
      }
    }
  });
  unreserving_.insert(unreserving_.end(), failed.begin(), failed.end());
}

}  // namespace netpol::agent
