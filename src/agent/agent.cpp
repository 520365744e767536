#include "agent/agent.h"

#include <httplib.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "agent/cni_server.h"
#include "agent/metrics.h"
#include "api/load.h"
#include "cni/ipam.h"
#include "cni/plugin.h"
#include "cni/registry.h"
#include "dataplane/nflog.h"
#include "dataplane/nft/nft_backend.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "policy/explain.h"

namespace netpol::agent {
namespace {

using Clock = std::chrono::steady_clock;
using kube::Json;

const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   0.5,   1,    2.5};

// Names the calling thread (at most 15 characters), for `top -H`, `perf
// report --comm` and gdb: the agent's threads otherwise all look alike.
void NameThread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03lldZ", buffer, static_cast<long long>(ms));
  return out;
}

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

// The allocator's owner of the reservation for the pod `key` ("ns/name").
cni::Owner ReservationOf(const std::string& key) {
  const size_t slash = key.find('/');
  return cni::ReservationOwner(key.substr(0, slash), key.substr(slash + 1));
}

std::string PodKey(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

uint64_t RvOf(const Json& object) {
  const std::string rv = object["metadata"].value("resourceVersion", "");
  return rv.empty() ? 0 : std::strtoull(rv.c_str(), nullptr, 10);
}

}  // namespace

struct Agent::Impl {
  AgentOptions options;
  mutable std::mutex mu;
  std::condition_variable changed;  // something to program, or a program done
  policy::Engine engine;
  policy::NodeCompiler compiler;                      // keeps peer sets between programs
  std::map<std::string, api::Pod> node_pods;          // this node's pods as the API has them
  std::map<std::string, cni::PodRegistration> local;  // ns/name -> registration
  // Pods scheduled here, not attached yet, whose addresses this agent
  // reserved in the plugin's allocator (options.cni_conf): programmed ahead
  // of their ADD.
  struct Reservation {
    std::vector<IpAddress> ips;
    uint64_t generation = 0;  // the first program carrying it
    bool in_force = false;
  };
  std::optional<cni::Ipam> ipam;
  std::map<std::string, Reservation> reserved;  // ns/name ->
  // Reservations to release once a program without them is in force:
  // (generation, ns/name).
  std::vector<std::pair<uint64_t, std::string>> unreserving;
  // Pods to reserve addresses for. The allocator's files are read and written
  // by the programming thread alone, with the lock released: a burst of pods
  // scheduled here does not hold up CNI requests, and no reservation can be
  // made while one of the same pod is being released.
  std::set<std::string> to_reserve;
  std::map<std::string, bool> listed;                    // kind -> listed once
  std::map<std::string, std::set<std::string>> listing;  // kind -> ns/name in the list under way
  // The Nodes and ClusterNetworkPolicies the engine has (their names): what a
  // relist compares with.
  std::map<std::string, std::set<std::string>> cluster_scoped;  // kind -> names
  std::map<std::string, uint64_t> policy_rv;                    // ns/name -> resourceVersion applied
  kube::Client* api_client = nullptr;                           // for reads outside the watches
  uint64_t wanted = 0;                                          // generation of the desired state
  uint64_t applied = 0;                                         // generation in force
  Clock::time_point wanted_at;                                  // when `wanted` last grew
  AgentStats stats;
  std::unique_ptr<dataplane::nft::NftBackend> backend;
  // For /metrics and /healthz.
  Histogram program_seconds{kLatencyBuckets};  // compile + dataplane, per update
  Histogram update_seconds{kLatencyBuckets};   // change reached the agent -> in force
  std::map<std::string, uint64_t> events_by_kind;
  std::map<std::string, const kube::ListWatch*> watches;  // kind -> its list/watch loop
  struct WatchHealth {
    Clock::time_point last_problem, last_success;
    std::string problem;
  };
  std::map<std::string, WatchHealth> watch_health;  // kind ->
  std::unique_ptr<httplib::Server> http;            // /metrics, /healthz, /readyz, /flows
  const CniServer* cni_server = nullptr;            // for /metrics
  // Set to end every loop: on the caller's stop, or when a loop ended on its own.
  std::atomic<bool> halt{false};
  // The dataplane changed behind the agent: what its change notifications
  // said (since the last check) and when the first came; a repair under way
  // since the time given.
  std::vector<std::string> drift_notes;
  bool drift_noticed = false;
  Clock::time_point drift_noticed_at;
  std::optional<Clock::time_point> repairing_since;
  std::atomic<int64_t> heartbeat_ns{
      Clock::now().time_since_epoch().count()};  // the programming loop's last turn

  // Flow logs: connections the dataplane logged (denied; allowed when asked
  // for), attributed, newest last. A token bucket keeps a flood of denials from costing more than
  // kFlowsPerSecond lines a second; what it drops is counted.
  static constexpr size_t kFlowRing = 2000;
  static constexpr double kFlowsPerSecond = 200;
  std::mutex flows_mu;
  std::condition_variable flows_changed;
  std::deque<std::pair<uint64_t, Json>> flows;  // (sequence, line)
  uint64_t flow_seq = 0;
  uint64_t flows_suppressed = 0;
  double flow_tokens = kFlowsPerSecond;
  Clock::time_point flow_refill = Clock::now();

  void Log(LogLevel level, const std::string& msg, Json fields = Json::object()) const {
    if (level < options.log_level) return;
    fields["ts"] = Timestamp();
    fields["level"] = LevelName(level);
    fields["msg"] = msg;
    fields["node"] = options.node_name;
    static std::mutex out;
    std::lock_guard lock(out);
    std::cerr << fields.dump() << std::endl;
  }

  // --- cluster state (called with mu held) -------------------------------------

  std::optional<api::Object> Decode(const Json& object) const {
    api::LoadResult loaded = api::LoadJson(object, "watch", {.field_positions = false});
    if (!loaded.ok() || loaded.objects.size() != 1) {
      std::string why;
      for (const auto& d : loaded.diagnostics) why += d.ToString() + "; ";
      Log(LogLevel::kWarn, "ignoring an object netpol cannot decode", {{"why", why}});
      return std::nullopt;
    }
    return std::move(loaded.objects.front());
  }

  // A pod as the engine should see it: a local pod's addresses come from its
  // registration (or reservation) until the API reports them.
  void ApplyPod(api::Pod pod) {
    const std::string key = PodKey(pod.metadata.namespace_, pod.metadata.name);
    if (pod.pod_ips.empty()) {
      const std::vector<IpAddress>* ips = nullptr;
      if (const auto reg = local.find(key); reg != local.end()) {
        ips = &reg->second.ips;
      } else if (const auto res = reserved.find(key); res != reserved.end()) {
        ips = &res->second.ips;
      }
      if (ips != nullptr) {
        for (const IpAddress& ip : *ips) pod.pod_ips.push_back(ip.ToString());
      }
    }
    engine.Apply(pod);
  }

  // Whether a pod the API shows scheduled here should have its addresses
  // reserved: not running yet, not attached, not finished, not reserved.
  bool NeedsReservation(const std::string& key, const api::Pod& pod) const {
    return ipam && pod.pod_ips.empty() && !pod.spec.host_network && !Finished(pod) && !local.contains(key) &&
           !reserved.contains(key);
  }

  // Queues the pod for a reservation, so its rules are in force before its
  // ADD; the caller asks for a program (Want), which makes it.
  void MaybeReserve(const std::string& key, const api::Pod& pod) {
    if (NeedsReservation(key, pod)) to_reserve.insert(key);
  }

  // On the programming thread, before a program: reserves the queued pods'
  // addresses with the lock released, then records those still wanted (a pod
  // may have gone, started or been attached meanwhile; its reservation, never
  // programmed, is released at once).
  void ReserveQueued(std::unique_lock<std::mutex>& lock) {
    // Until none is left: pods queued while the lock was released are
    // reserved too, so the program that follows carries every pod queued
    // before it (their events asked for it, and may ask for no other).
    while (!to_reserve.empty()) {
      const std::set<std::string> keys = std::exchange(to_reserve, {});
      std::vector<std::pair<std::string, Result<std::vector<IpAddress>>>> made;
      made.reserve(keys.size());
      lock.unlock();
      for (const std::string& key : keys) made.emplace_back(key, ipam->Allocate(ReservationOf(key)));
      lock.lock();
      std::vector<std::string> unwanted;
      bool recorded = false;
      for (auto& [key, ips] : made) {
        if (!ips) {
          Log(LogLevel::kWarn, "cannot reserve a pod's addresses; its ADD will allocate them",
              {{"pod", key}, {"error", ips.error().message()}});
          continue;
        }
        const auto pod = node_pods.find(key);
        if (pod == node_pods.end() || !NeedsReservation(key, pod->second)) {
          unwanted.push_back(key);
          continue;
        }
        std::string addresses;
        for (const IpAddress& ip : *ips) addresses += (addresses.empty() ? "" : ",") + ip.ToString();
        Log(LogLevel::kInfo, "pod reserved: its rules go in force before its ADD",
            {{"pod", key}, {"addresses", addresses}});
        reserved[key] = {std::move(*ips), wanted + 1, false};
        ApplyPod(pod->second);
        recorded = true;
      }
      if (recorded) Want();  // the program that follows carries them
      if (unwanted.empty()) continue;
      lock.unlock();
      // What an ADD took over meanwhile is not the reservation's any more: untouched.
      for (const std::string& key : unwanted) (void)ipam->Release(ReservationOf(key));
      lock.lock();
    }
  }

  // The reservation of `key` ends without an ADD taking it over (the pod is
  // gone, or attached with other addresses): its addresses go back to the
  // allocator once a program without them is in force. `pod_gone`: the pod
  // left this node, so whatever reservation the allocator holds for it goes,
  // also one this agent does not know of (an ADD that failed after taking it
  // over gives its addresses back to it).
  void Unreserve(const std::string& key, bool pod_gone = false) {
    if (reserved.erase(key) == 0 && !(pod_gone && ipam)) return;
    unreserving.emplace_back(wanted + 1, key);
  }

  // After the program numbered `generation` is in force: counts the
  // reservations it carried first.
  void ReservationsInForce(uint64_t generation) {
    for (auto& [key, r] : reserved) {
      if (!r.in_force && r.generation <= generation) {
        r.in_force = true;
        ++stats.reservations_in_force;
      }
    }
  }

  // On the programming thread, after the program numbered `generation` is in
  // force: releases the reservations it no longer carries, with the lock
  // released (only this thread reserves, so none of them is reserved again
  // meanwhile). A failed release is tried again after the next program.
  void ReleaseEnded(uint64_t generation, std::unique_lock<std::mutex>& lock) {
    std::vector<std::pair<uint64_t, std::string>> due;
    std::erase_if(unreserving, [&](const auto& entry) {
      if (entry.first > generation) return false;
      // Reserved again meanwhile (the pod came back): the same addresses, kept.
      if (!reserved.contains(entry.second)) due.push_back(entry);
      return true;
    });
    if (due.empty()) return;
    std::vector<std::pair<uint64_t, std::string>> failed;
    lock.unlock();
    for (const auto& entry : due) {
      if (Status s = ipam->Release(ReservationOf(entry.second)); !s.ok()) {
        Log(LogLevel::kWarn, "cannot release a reservation; tried again after the next program",
            {{"pod", entry.second}, {"error", s.error().message()}});
        failed.push_back(entry);
      }
    }
    lock.lock();
    unreserving.insert(unreserving.end(), failed.begin(), failed.end());
  }

  void OnObject(const std::string& kind, const std::string& type, const Json& object) {
    const Json& meta = object["metadata"];
    const std::string ns = meta.value("namespace", "");
    const std::string name = meta.value("name", "");
    if (type == "DELETED") {
      engine.Delete(kind, ns, name);
      if (const auto it = cluster_scoped.find(kind); it != cluster_scoped.end()) it->second.erase(name);
      if (kind == "NetworkPolicy") policy_rv.erase(PodKey(ns, name));
      if (kind == "Pod" && node_pods.erase(PodKey(ns, name)) != 0) Unreserve(PodKey(ns, name), true);
    } else if (std::optional<api::Object> decoded = Decode(object)) {
      if (kind == "NetworkPolicy") policy_rv[PodKey(ns, name)] = RvOf(object);
      if (kind == "Node" || kind == "ClusterNetworkPolicy") cluster_scoped[kind].insert(name);
      if (auto* pod = std::get_if<api::Pod>(&*decoded)) {
        if (object["spec"].value("nodeName", "") == options.node_name) {
          node_pods[PodKey(ns, name)] = *pod;
          if (Finished(*pod)) {
            Unreserve(PodKey(ns, name));  // finished without ever being wired here
          } else {
            MaybeReserve(PodKey(ns, name), *pod);
          }
        }
        ApplyPod(*pod);
      } else {
        engine.Apply(*decoded);
      }
    }
    ++stats.events;
    ++events_by_kind[kind];
    Want();
  }

  // A list arrives page by page (so the whole cluster is never held as JSON):
  // every item is applied as it comes; at the end, what the list did not have
  // was deleted while we were not watching.
  void OnListBegin(const std::string& kind) { listing[kind].clear(); }

  void OnListPage(const kube::PolicyResource& resource, std::vector<Json>& items) {
    const std::string kind = resource.kind;
    std::set<std::string>& seen = listing[kind];
    for (Json& object : items) {
      seen.insert(PodKey(object["metadata"].value("namespace", ""), object["metadata"].value("name", "")));
      // Lists carry kind on the list, not on each item.
      object["kind"] = resource.kind;
      object["apiVersion"] = resource.api_version;
      OnObject(kind, "ADDED", object);
      object = Json();  // freed as we go
    }
  }

  void OnListEnd(const std::string& kind) {
    const std::set<std::string> now = std::move(listing[kind]);
    listing.erase(kind);
    // What the engine has of this kind (it is the agent's only record).
    std::vector<std::pair<std::string, std::string>> had;
    if (kind == "Pod") {
      for (const policy::PodId id : engine.Pods())
        had.emplace_back(engine.pod(id).namespace_, engine.pod(id).name);
    } else if (kind == "NetworkPolicy") {
      for (const policy::PolicyId id : engine.Policies()) {
        const api::ObjectMeta& meta = engine.policy(id).metadata;
        had.emplace_back(meta.namespace_, meta.name);
      }
    } else if (kind == "Namespace") {
      for (const auto& [name, labels] : engine.Namespaces()) had.emplace_back("", name);
    } else {
      for (const std::string& name : cluster_scoped[kind]) had.emplace_back("", name);
    }
    for (const auto& [ns, name] : had) {
      if (now.contains(PodKey(ns, name))) continue;
      engine.Delete(kind, ns, name);  // a namespace only referenced, never listed, is not deleted
      if (kind == "Pod" && node_pods.erase(PodKey(ns, name)) != 0) Unreserve(PodKey(ns, name), true);
      if (kind == "NetworkPolicy") policy_rv.erase(PodKey(ns, name));
      if (const auto it = cluster_scoped.find(kind); it != cluster_scoped.end()) it->second.erase(name);
    }
    if (kind == "Pod") {
      // Reservations a previous run left for pods that are gone or attached.
      std::vector<std::string> ended;
      for (const auto& [key, r] : reserved) {
        if (!node_pods.contains(key) || local.contains(key)) ended.push_back(key);
      }
      for (const std::string& key : ended) Unreserve(key);
    }
    listed[kind] = true;
    Want();
  }

  // The last program in force: when it started, was compiled, was applied.
  struct ProgramTimes {
    Clock::time_point started, compiled, applied;
  } program_times;

  // Something changed: the dataplane is behind until the next program.
  void Want() {
    ++wanted;
    wanted_at = Clock::now();
    changed.notify_all();
  }

  // Every kind listed once (an optional kind the cluster does not serve
  // counts as listed, empty).
  bool Synced() const {
    return listed.size() == std::size(kube::kPolicyResources) + std::size(kube::kOptionalPolicyResources);
  }

  std::vector<policy::CompileNote> notes_logged;

  // The program for this node: registered pods the engine knows, compiled;
  // registered pods it does not know yet, isolated both ways; reserved pods,
  // compiled, their addresses claimed until they are wired.
  policy::NodeProgram Program() {
    std::map<std::string, std::string> names;
    for (const auto& [key, reg] : local) names[key] = reg.host_interface;
    for (const auto& [key, r] : reserved) names.emplace(key, "");
    policy::NodeProgram program = compiler.Compile(engine, names);
    // What the dataplane leaves out (domainNames peers), said once per change.
    if (program.notes != notes_logged) {
      for (const policy::CompileNote& note : program.notes) {
        Log(note.fails_open ? LogLevel::kError : LogLevel::kWarn, "not enforced", {{"rule", note.text}});
      }
      notes_logged = program.notes;
    }
    for (const auto& [key, r] : reserved) {
      if (const auto it = program.pods.find(key); it != program.pods.end() && !local.contains(key))
        it->second.reserved = true;
    }
    for (const auto& [key, reg] : local) {
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

  // --- the programming loop ----------------------------------------------------

  // Asks the backend whether what it installed is still in force (the lock
  // released meanwhile: it reads the kernel back). When someone else changed
  // it, a program is asked for, which restores it; `cause` says what made
  // the agent look.
  void CheckDataplane(std::unique_lock<std::mutex>& lock) {
    std::vector<std::string> noticed = std::exchange(drift_notes, {});
    const bool notified = std::exchange(drift_noticed, false);
    lock.unlock();
    Result<std::vector<std::string>> found = backend->Verify();
    lock.lock();
    if (!found) {
      Log(LogLevel::kWarn, "cannot read the dataplane back to check it",
          {{"error", found.error().message()}});
      return;
    }
    if (found->empty()) {
      if (notified) {
        Log(LogLevel::kDebug, "others changed nftables; the agent's rules are intact",
            {{"noticed", noticed}});
      }
      return;
    }
    Log(LogLevel::kWarn, "the dataplane was changed behind the agent; restoring it",
        {{"found", *found},
         {"noticed", noticed},
         {"how", notified ? "change notification" : "periodic read-back"}});
    if (!repairing_since) repairing_since = notified ? drift_noticed_at : Clock::now();
    Want();
  }

  void ProgramLoop(const std::atomic<bool>& stop) {
    NameThread("np-program");
    std::unique_lock lock(mu);
    auto retry_at = Clock::now();
    auto check_at = Clock::now() + options.dataplane_check_interval;
    int drift_retries = 0;  // programs retried at once because the table changed under them
    while (!stop.load()) {
      // A change may have come while the lock was free (during Apply): check first.
      changed.wait_for(lock, std::chrono::milliseconds(200), [&] {
        return stop.load() || (Synced() && ((applied != wanted && Clock::now() >= retry_at) ||
                                            (stats.synced && drift_noticed)));
      });
      heartbeat_ns = Clock::now().time_since_epoch().count();
      // Others' changes to the rules: announced by the kernel, or found by
      // reading them back now and then. Only once something is in force.
      if (stats.synced && (drift_noticed || Clock::now() >= check_at)) {
        check_at = Clock::now() + options.dataplane_check_interval;
        CheckDataplane(lock);
      }
      if (!Synced() || applied == wanted || Clock::now() < retry_at) continue;
      ReserveQueued(lock);
      const uint64_t target = wanted;
      const Clock::time_point change_at = wanted_at;
      const auto start = Clock::now();
      policy::NodeProgram program = Program();
      const size_t local_pods = program.pods.size();
      const auto compiled = Clock::now();
      // The backend's work (rendering, the kernel transaction) needs nothing
      // the lock guards: watch events and CNI requests go on meanwhile, and
      // the next program starts as soon as this one is in force.
      lock.unlock();
      Result<dataplane::ApplyStats> done = backend->Apply(std::move(program));
      const size_t installed = backend->InstalledElements();
      lock.lock();
      const auto end = Clock::now();
      const double ms = std::chrono::duration<double, std::milli>(end - start).count();
      if (!done) {
        // Someone else's change can make a transaction fail (a set it
        // edits deleted meanwhile): that is drift, restored at once, not a
        // failure; otherwise the rules in force are still the previous ones
        // (checked, not assumed).
        lock.unlock();
        Result<std::vector<std::string>> drift = backend->Verify();
        lock.lock();
        if (drift && !drift->empty() && ++drift_retries <= 3) {
          Log(LogLevel::kWarn, "the dataplane was changed behind the agent while it programmed; restoring it",
              {{"found", *drift}, {"error", done.error().message()}});
          if (!repairing_since) repairing_since = start;
          continue;
        }
        ++stats.failures;
        retry_at = Clock::now() + std::chrono::milliseconds(500);
        if (drift) {
          Log(LogLevel::kError, "programming the dataplane failed; the previous rules stay in force",
              {{"error", done.error().message()}});
        } else {
          Log(LogLevel::kError, "programming the dataplane failed, and its rules cannot be read back",
              {{"error", done.error().message()}, {"read_back", drift.error().message()}});
        }
        continue;
      }
      drift_retries = 0;
      if (repairing_since) {
        ++stats.repairs;
        Log(LogLevel::kInfo, "dataplane restored",
            {{"ms", std::chrono::duration<double, std::milli>(end - *repairing_since).count()},
             {"added", done->added},
             {"removed", done->removed},
             {"rebuilt", done->created}});
        repairing_since.reset();
      }
      applied = target;
      program_times = {start, compiled, end};
      stats.last_change_at = change_at;
      stats.last_compile_ms = std::chrono::duration<double, std::milli>(compiled - start).count();
      stats.last_dataplane_ms = std::chrono::duration<double, std::milli>(end - compiled).count();
      stats.last_elements_changed = done->added + done->removed;
      stats.last_plan_ms = done->plan_ms;
      stats.last_send_ms = done->send_ms;
      stats.installed_elements = installed;
      ReservationsInForce(target);
      program_seconds.Observe(Seconds(end - start));
      update_seconds.Observe(Seconds(end - change_at));
      ++stats.programs;
      if (!stats.synced) {
        // The first lists decoded the whole cluster through short-lived JSON
        // documents; hand the freed heap back so the resident size is what the
        // agent keeps, not what the sync passed through.
        ::malloc_trim(0);
        const struct mallinfo2 heap = ::mallinfo2();
        Log(LogLevel::kInfo, "first full sync in force",
            {{"pods", local_pods},
             {"heap_in_use_bytes", heap.uordblks + heap.hblkhd},
             {"heap_free_bytes", heap.fordblks}});
      }
      stats.synced = true;
      Log(LogLevel::kDebug, "programmed",
          {{"ms", ms}, {"added", done->added}, {"removed", done->removed}, {"local_pods", local_pods}});
      changed.notify_all();
      ReleaseEnded(target, lock);
    }
  }

  // --- flow logs -------------------------------------------------------------------

  // One end of a logged flow: its address, and the pod it is, if known.
  Json EndpointJson(const IpAddress& ip) const {
    Json out = {{"ip", ip.ToString()}};
    if (const auto pod = engine.FindPodByIp(ip)) {
      out["namespace"] = engine.pod(*pod).namespace_;
      out["pod"] = engine.pod(*pod).name;
    }
    return out;
  }

  // A logged connection, attributed. Denied: the direction that denied it and
  // the policies isolating the pod for that direction (none of whose rules
  // allow it). Allowed: the policy and rule that allowed it.
  Json Attribute(const dataplane::LoggedPacket& p) {
    const bool ingress = p.prefix.find("ingress") != std::string::npos;
    const bool allowed = p.prefix.find(" allow ") != std::string::npos;
    const policy::Direction direction = ingress ? policy::Direction::kIngress : policy::Direction::kEgress;
    Json line = {{"time", Timestamp()},
                 {"node", options.node_name},
                 {"verdict", allowed ? "allowed" : "denied"},
                 {"direction", ingress ? "ingress" : "egress"},
                 {"protocol",
                  p.protocol ? std::string(api::ProtocolName(*p.protocol)) : std::to_string(p.ip_protocol)}};
    if (p.protocol) line["port"] = p.dst_port;
    std::lock_guard lock(mu);
    line["src"] = EndpointJson(p.src);
    line["dst"] = EndpointJson(p.dst);
    // A ClusterNetworkPolicy tier decided ("netpol ingress admin deny "): the
    // rule that decides it now, as the engine says (the map element that
    // matched names it too, in its comment and counter).
    // The connection judged by the policies in force now (the log line names no rule).
    const auto judge_now = [&] {
      const auto endpoint = [&](const IpAddress& ip) {
        const auto pod = engine.FindPodByIp(ip);
        return pod ? policy::Endpoint::OfPod(*pod, ip) : policy::Endpoint::OfIp(ip);
      };
      const policy::Flow flow{endpoint(p.src), endpoint(p.dst), p.protocol.value_or(api::Protocol::kTCP),
                              p.dst_port};
      const policy::Verdict verdict = engine.Evaluate(flow);
      return ingress ? verdict.ingress : verdict.egress;
    };
    for (const char* tier : {"admin", "baseline"}) {
      if (p.prefix.find(std::string(" ") + tier + " ") == std::string::npos) continue;
      line["tier"] = tier;
      const policy::DirectionVerdict judged = judge_now();
      if (judged.cluster_rule) {
        line["policy"] = engine.ClusterPolicyName(judged.cluster_rule->policy);
        line["rule"] =
            std::string(ingress ? "ingress[" : "egress[") + std::to_string(judged.cluster_rule->rule) + "]";
        line["reason"] = policy::DescribeClusterRule(engine, direction, *judged.cluster_rule);
      } else {
        line["reason"] =
            std::string("decided by a ") + tier +
            " ClusterNetworkPolicy rule in force when it was logged (its policies have changed since)";
      }
      return line;
    }
    if (allowed) {
      const policy::DirectionVerdict judged = judge_now();
      if (judged.allowed_by) {
        line["policy"] = engine.PolicyName(judged.allowed_by->policy);
        line["rule"] =
            std::string(ingress ? "ingress[" : "egress[") + std::to_string(judged.allowed_by->rule) + "]";
        line["reason"] = policy::DescribeRule(engine, direction, *judged.allowed_by);
      } else {
        line["reason"] = "allowed by the rules in force when it was logged (its policies have changed since)";
      }
      return line;
    }
    Json policies = Json::array();
    if (const auto pod = engine.FindPodByIp(ingress ? p.dst : p.src)) {
      for (const policy::PolicyId id : engine.IsolatingPolicies(*pod, direction)) {
        policies.push_back(engine.PolicyName(id));
      }
    }
    line["reason"] = policies.empty() ? "isolated (its policies have just changed)"
                                      : "isolated, and no rule of its policies allows this peer and port";
    line["policies"] = std::move(policies);
    return line;
  }

  // The token bucket: true when one more flow line may be written now; else
  // counts it as suppressed.
  bool TakeFlowToken() {
    std::lock_guard lock(flows_mu);
    const Clock::time_point now = Clock::now();
    flow_tokens = std::min(kFlowsPerSecond, flow_tokens + Seconds(now - flow_refill) * kFlowsPerSecond);
    flow_refill = now;
    if (flow_tokens < 1) {
      ++flows_suppressed;
      return false;
    }
    flow_tokens -= 1;
    return true;
  }

  // Reads the backend's feed of others' changes to the dataplane and wakes
  // the programming loop, which checks and restores.
  void DriftLoop(const std::atomic<bool>& stop, dataplane::ChangeFeed& feed) {
    NameThread("np-drift");
    while (!stop.load()) {
      Result<std::vector<std::string>> next = feed.Next(std::chrono::milliseconds(200));
      if (!next) {
        Log(LogLevel::kWarn, "reading the dataplane's change notifications failed",
            {{"error", next.error().message()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (next->empty()) continue;
      std::lock_guard lock(mu);
      if (!drift_noticed) drift_noticed_at = Clock::now();
      drift_noticed = true;
      drift_notes.insert(drift_notes.end(), next->begin(), next->end());
      changed.notify_all();
    }
  }

  void FlowLoop(const std::atomic<bool>& stop) {
    NameThread("np-flows");
    Result<dataplane::NflogReader> reader = dataplane::NflogReader::Open(options.netns, options.log_group);
    if (!reader) {
      Log(LogLevel::kWarn, "no flow logs: cannot read NFLOG", {{"error", reader.error().message()}});
      return;
    }
    while (!stop.load()) {
      Result<std::vector<dataplane::LoggedPacket>> next = reader->Next(std::chrono::milliseconds(200));
      if (!next) {
        Log(LogLevel::kWarn, "reading flow logs failed", {{"error", next.error().message()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      for (const dataplane::LoggedPacket& packet : *next) {
        // The rate limit first: a packet it drops is not attributed (that
        // takes the agent's lock, which programming needs).
        if (!TakeFlowToken()) continue;
        Json line = Attribute(packet);
        std::lock_guard lock(flows_mu);
        flows.emplace_back(++flow_seq, std::move(line));
        if (flows.size() > kFlowRing) flows.pop_front();
        flows_changed.notify_all();
      }
    }
  }

  static bool FlowMatches(const Json& line, const std::string& ns, const std::string& pod,
                          const std::string& verdict) {
    if (!verdict.empty() && line.value("verdict", "") != verdict) return false;
    const auto end_matches = [&](const char* end) {
      const Json& e = line[end];
      if (!ns.empty() && e.value("namespace", "") != ns) return false;
      if (!pod.empty() && e.value("pod", "") != pod &&
          e.value("namespace", "") + "/" + e.value("pod", "") != pod)
        return false;
      return true;
    };
    return end_matches("src") || end_matches("dst");
  }

  // --- metrics and health ---------------------------------------------------------

  // Why the agent is not ready ("" when it is): the first full program is
  // not in force yet, or a watch of the API is failing: from its error until
  // it next lists, opens its watch stream again (the server answered) or
  // delivers an event.
  std::string NotReady() const {
    if (!stats.synced) return "the first full sync is not in force yet";
    for (const auto& [kind, health] : watch_health) {
      if (health.last_problem > health.last_success)
        return "the " + kind + " watch is failing: " + health.problem;
    }
    return "";
  }

  // Live: the programming loop turned within the last 10 s (it turns every
  // 200 ms, or after each update).
  bool Healthy() const {
    return Clock::now() - Clock::time_point(Clock::duration(heartbeat_ns.load())) < std::chrono::seconds(10);
  }

  std::string Metrics() {
    // The per-pod counters first, from the kernel, without the agent's lock:
    // listing eight sets takes milliseconds, and programming waits for that
    // lock (a scrape must not show up in the update latency).
    std::map<std::string, std::map<std::string, uint64_t>> counters;  // set -> element -> packets
    bool synced = false;
    {
      std::lock_guard lock(mu);
      synced = stats.synced;
    }
    if (backend && synced) {
      for (const char* verdict : {"denied", "allowed"}) {
        for (const char* prefix : {"in", "eg"}) {
          for (const char* family : {"v4", "v6"}) {
            const std::string name = std::string(prefix) + "_" + verdict + "_" + family;
            if (Result<dataplane::nft::ObservedSet> set = backend->ObserveSet(name)) {
              counters[name] = std::move(set->elements);
            }
          }
        }
      }
    }
    // The ClusterNetworkPolicy tiers' decision maps: each element counts the
    // new connections its box decided (schema 4).
    std::map<std::string, std::map<std::string, uint64_t>> tier_counters;  // map -> element -> packets
    if (backend && synced) {
      for (const char* map : {"admin", "adminall", "base", "baseall"}) {
        for (const char* prefix : {"in", "eg"}) {
          for (const char* family : {"v4", "v6"}) {
            const std::string name = std::string(prefix) + "_" + map + "_" + family;
            if (Result<dataplane::nft::ObservedSet> set = backend->ObserveSet(name)) {
              tier_counters[name] = std::move(set->elements);
            }
          }
        }
      }
    }
    std::lock_guard lock(mu);
    MetricsWriter out;
    const policy::EngineStats known = engine.stats();
    out.Gauge("netpol_agent_ready", "1 once the first full sync is in force on the node.",
              {{{}, stats.synced ? 1.0 : 0.0}});
    out.Gauge("netpol_agent_known_pods", "Pods the agent knows (the whole cluster).",
              {{{}, static_cast<double>(known.pods)}});
    out.Gauge("netpol_agent_known_policies", "NetworkPolicies the agent knows.",
              {{{}, static_cast<double>(known.policies)}});
    out.Gauge("netpol_agent_known_namespaces", "Namespaces the agent knows.",
              {{{}, static_cast<double>(known.namespaces)}});
    out.Gauge("netpol_agent_local_pods", "Pods attached on this node (CNI registrations).",
              {{{}, static_cast<double>(local.size())}});
    out.Gauge(
        "netpol_agent_reserved_pods",
        "Pods scheduled to this node whose addresses the agent reserved, programmed ahead of their ADD.",
        {{{}, static_cast<double>(reserved.size())}});
    out.Gauge("netpol_agent_nft_set_elements", "nftables set elements installed for this node's pods.",
              {{{}, static_cast<double>(stats.installed_elements)}});
    out.Counter("netpol_agent_programs_total", "Dataplane updates committed.",
                {{{}, static_cast<double>(stats.programs)}});
    out.Counter("netpol_agent_program_failures_total",
                "Dataplane updates that failed (the previous rules stayed in force; retried).",
                {{{}, static_cast<double>(stats.failures)}});
    out.Counter("netpol_agent_dataplane_repairs_total",
                "Changes someone else made to the agent's rules (a table, chain, rule or element deleted or "
                "added), found and undone.",
                {{{}, static_cast<double>(stats.repairs)}});
    if (cni_server != nullptr) {
      const CniServerStats cni = cni_server->stats();
      out.Gauge("netpol_agent_cni_connections", "CNI plugin connections being served.",
                {{{}, static_cast<double>(cni.open)}});
      out.Counter("netpol_agent_cni_connections_total", "CNI plugin connections accepted.",
                  {{{}, static_cast<double>(cni.connections)}});
      out.Counter("netpol_agent_cni_timeouts_total",
                  "CNI plugin connections closed because a request did not come whole within the deadline.",
                  {{{}, static_cast<double>(cni.timeouts)}});
    }
    std::vector<MetricsWriter::Sample> events;
    std::vector<MetricsWriter::Sample> restarts;
    for (const auto& [kind, watch] : watches) {
      const auto it = events_by_kind.find(kind);
      events.push_back({{{"kind", kind}}, static_cast<double>(it == events_by_kind.end() ? 0 : it->second)});
      // The first list and watch are the start, not restarts.
      restarts.push_back(
          {{{"kind", kind}, {"what", "list"}}, static_cast<double>(std::max(watch->lists() - 1, 0))});
      restarts.push_back(
          {{{"kind", kind}, {"what", "watch"}}, static_cast<double>(std::max(watch->watches() - 1, 0))});
    }
    out.Counter("netpol_agent_watch_events_total", "Objects applied from lists and watch events, by kind.",
                events);
    out.Counter("netpol_agent_watch_restarts_total",
                "Lists and watches started again after the first (410 Gone, errors, stalls), by kind.",
                restarts);
    {
      std::lock_guard flows_lock(flows_mu);
      out.Counter("netpol_flow_log_lines_total", "Flow log lines written (logged connections, attributed).",
                  {{{}, static_cast<double>(flow_seq)}});
      out.Counter("netpol_flow_log_suppressed_total",
                  "Logged connections the flow log's rate limit left out.",
                  {{{}, static_cast<double>(flows_suppressed)}});
    }
    out.Histogram("netpol_agent_program_duration_seconds",
                  "Time to compile the node's program and update the dataplane, per update.",
                  program_seconds);
    out.Histogram(
        "netpol_agent_update_latency_seconds",
        "From a change reaching the agent (watch event or CNI request) until its rules are in force.",
        update_seconds);
    // New connections denied, and allowed by a rule, from the per-pod
    // counters of the isolated pods' addresses.
    for (const auto& [verdict, help] :
         {std::pair{"denied",
                    "New connections dropped by policy at this node's pods, by the pod's namespace and "
                    "the direction that denied (from per-pod counters: a pod that goes takes its "
                    "count with it)."},
          std::pair{"allowed",
                    "New connections a policy rule allowed at this node's policy-isolated pods, by the "
                    "pod's namespace and direction (pods not isolated in a direction are not "
                    "counted: no policy decides for them)."}}) {
      std::map<std::pair<std::string, std::string>, double> counted;  // (namespace, direction) -> connections
      for (const auto& [direction, prefix] : {std::pair{"ingress", "in"}, std::pair{"egress", "eg"}}) {
        for (const char* family : {"v4", "v6"}) {
          const auto set = counters.find(std::string(prefix) + "_" + verdict + "_" + family);
          if (set == counters.end()) continue;
          for (const auto& [element, packets] : set->second) {
            std::string ns = "unknown";
            if (Result<IpAddress> ip = IpAddress::Parse(element)) {
              if (const auto pod = engine.FindPodByIp(*ip)) ns = engine.pod(*pod).namespace_;
            }
            counted[{ns, direction}] += static_cast<double>(packets);
          }
        }
      }
      std::vector<MetricsWriter::Sample> samples;
      samples.reserve(counted.size());
      for (const auto& [key, packets] : counted)
        samples.push_back({{{"namespace", key.first}, {"direction", key.second}}, packets});
      out.Counter(std::string("netpol_") + verdict + "_connections_total", help, samples);
    }
    {
      // (namespace, direction, tier, verdict) -> connections
      std::map<std::tuple<std::string, std::string, std::string, std::string>, double> counted;
      for (const auto& [name, elements] : tier_counters) {
        const std::string direction = name.starts_with("in_") ? "ingress" : "egress";
        const std::string tier = name.find("_admin") != std::string::npos ? "admin" : "baseline";
        for (const auto& [element, packets] : elements) {
          const std::string verdict =
              element.ends_with(std::string("_deny_") + name.substr(name.size() - 2)) ? "denied" : "allowed";
          std::string ns = "unknown";
          if (Result<IpAddress> ip = IpAddress::Parse(element.substr(0, element.find(' ')))) {
            if (const auto pod = engine.FindPodByIp(*ip)) ns = engine.pod(*pod).namespace_;
          }
          counted[{ns, direction, tier, verdict}] += static_cast<double>(packets);
        }
      }
      std::vector<MetricsWriter::Sample> samples;
      samples.reserve(counted.size());
      for (const auto& [key, packets] : counted) {
        samples.push_back({{{"namespace", std::get<0>(key)},
                            {"direction", std::get<1>(key)},
                            {"tier", std::get<2>(key)},
                            {"verdict", std::get<3>(key)}},
                           packets});
      }
      out.Counter("netpol_cluster_policy_connections_total",
                  "New connections a ClusterNetworkPolicy tier decided at this node's pods, by the pod's "
                  "namespace, direction, tier and verdict (from the decision maps' per-element counters; "
                  "`netpol enforce --show` names each element's rule).",
                  samples);
    }
    return out.text();
  }

  // Binds the address serving /metrics, /healthz, /readyz and /flows (before
  // any loop starts: an address in use fails the start, naming it).
  Status BindMetrics(const std::atomic<bool>& stop) {
    const size_t colon = options.metrics_address.rfind(':');
    int port = 0;
    const char* digits = options.metrics_address.c_str() + (colon == std::string::npos ? 0 : colon + 1);
    const auto [end, ec] =
        std::from_chars(digits, options.metrics_address.c_str() + options.metrics_address.size(), port);
    if (colon == std::string::npos || ec != std::errc() || *end != '\0' || port <= 0 || port > 65535) {
      return InvalidArgument("--metrics-address wants host:port, not \"" + options.metrics_address + "\"");
    }
    std::string host = options.metrics_address.substr(0, colon);
    if (host.empty()) host = "0.0.0.0";  // ":9963": every address (a hostNetwork DaemonSet's probes)
    http = std::make_unique<httplib::Server>();
    httplib::Server& server = *http;
    server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(Metrics(), "text/plain; version=0.0.4; charset=utf-8");
    });
    // Flow log lines (JSON, one per line); ?namespace=&pod=&verdict= filter,
    // ?follow=true keeps the response open and streams new lines.
    server.Get("/flows", [&](const httplib::Request& req, httplib::Response& res) {
      const std::string ns = req.get_param_value("namespace");
      const std::string pod = req.get_param_value("pod");
      const std::string verdict = req.get_param_value("verdict");
      const bool follow = req.get_param_value("follow") == "true";
      std::string body;
      uint64_t seen = 0;
      {
        std::lock_guard lock(flows_mu);
        for (const auto& [seq, line] : flows) {
          if (FlowMatches(line, ns, pod, verdict)) body += line.dump() + "\n";
          seen = seq;
        }
        if (flows.empty()) seen = flow_seq;
      }
      if (!follow) {
        res.set_content(body, "application/x-ndjson");
        return;
      }
      res.set_chunked_content_provider("application/x-ndjson", [this, &stop, ns, pod, verdict, body, seen](
                                                                   size_t, httplib::DataSink& sink) mutable {
        if (!body.empty()) {
          sink.write(body.data(), body.size());
          body.clear();
        }
        std::unique_lock lock(flows_mu);
        flows_changed.wait_for(lock, std::chrono::milliseconds(500),
                               [&] { return flow_seq > seen || stop.load(); });
        if (stop.load()) {
          sink.done();
          return true;
        }
        std::string more;
        for (const auto& [seq, line] : flows) {
          if (seq <= seen) continue;
          if (FlowMatches(line, ns, pod, verdict)) more += line.dump() + "\n";
          seen = seq;
        }
        lock.unlock();
        if (!more.empty() && !sink.write(more.data(), more.size())) return false;
        return sink.is_writable();
      });
    });
    server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
      const bool ok = Healthy();
      res.status = ok ? 200 : 503;
      res.set_content(ok ? "ok\n" : "the programming loop is stuck\n", "text/plain");
    });
    server.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
      std::string why;
      {
        std::lock_guard lock(mu);
        why = NotReady();
      }
      res.status = why.empty() ? 200 : 503;
      res.set_content(why.empty() ? "ok\n" : why + "\n", "text/plain");
    });
    errno = 0;
    if (!server.bind_to_port(host, port)) {
      const int err = errno;
      return Unavailable("cannot serve metrics on " + options.metrics_address +
                         (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
    }
    return Ok();
  }

  // Serves what BindMetrics bound until stop.
  void ServeMetrics(const std::atomic<bool>& stop) {
    NameThread("np-metrics");
    Log(LogLevel::kInfo, "serving /metrics, /healthz and /readyz", {{"address", options.metrics_address}});
    std::thread stopper([&] {
      while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      http->stop();
    });
    http->listen_after_bind();
    stopper.join();
  }

  // --- the CNI socket -------------------------------------------------------------

  // The policies of a namespace as the API has them now, with the list's
  // resourceVersion.
  Result<Json> ReadNamespacePolicies(const std::string& ns) const {
    return api_client->Get("/apis/networking.k8s.io/v1/namespaces/" + ns + "/networkpolicies");
  }

  // A read started when the plugin announced the pod ("prepare"), running
  // while the plugin allocates and wires.
  struct Prefetched {
    std::string pod_namespace;
    std::future<Result<Json>> policies;
  };

  // Starts reading a namespace's policies on a thread of its own.
  Prefetched Prefetch(const std::string& ns) {
    return {ns, std::async(std::launch::async, [this, ns] {
              const auto start = Clock::now();
              Result<Json> read = ReadNamespacePolicies(ns);
              const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
              std::lock_guard lock(mu);
              stats.last_policy_read_ms = ms;
              return read;
            })};
  }

  // The start-race check: a policy created just before the pod may not have
  // reached this agent's watch yet, so the policies of the pod's namespace
  // (the only ones that can isolate it) are read from the API (or taken from
  // the read "prepare" started), and this waits until the watch has caught
  // up with that read. Holds `lock` on return, unless the read failed; an
  // error message when the watch cannot be trusted for the pod.
  std::optional<std::string> CatchUp(const std::string& ns, std::optional<Prefetched>& prefetched,
                                     std::unique_lock<std::mutex>& lock) {
    std::optional<Json> namespace_policies;
    if (api_client != nullptr) {
      Result<Json> read = prefetched && prefetched->pod_namespace == ns && prefetched->policies.valid()
                              ? prefetched->policies.get()
                              : ReadNamespacePolicies(ns);
      if (!read) return "cannot read the pod's policies: " + read.error().message();
      namespace_policies = std::move(*read);
    }
    lock.lock();
    if (!namespace_policies) return std::nullopt;
    const uint64_t read_at = RvOf(*namespace_policies);
    const std::string prefix = ns + "/";
    const auto caught_up = [&] {
      std::set<std::string> in_read;
      for (const Json& p : (*namespace_policies)["items"]) {
        const std::string name = PodKey(ns, p["metadata"].value("name", ""));
        in_read.insert(name);
        const auto it = policy_rv.find(name);
        if (it == policy_rv.end() || it->second < RvOf(p)) return false;
      }
      // Known here, absent there, and not changed since the read: its
      // deletion has not reached the watch yet. (The namespace's policies
      // are one range of the ordered map.)
      for (auto it = policy_rv.lower_bound(prefix); it != policy_rv.end() && it->first.starts_with(prefix);
           ++it) {
        if (!in_read.contains(it->first) && it->second < read_at) return false;
      }
      return true;
    };
    if (!changed.wait_for(lock, std::chrono::seconds(10), caught_up)) {
      return std::string("the agent's watch has not caught up with the pod's policies");
    }
    return std::nullopt;
  }

  // Attaches a pod (holding the lock). `replaced`, when given, receives the
  // registration the pod had before.
  void AttachLocked(const cni::PodRegistration& reg,
                    std::optional<cni::PodRegistration>* replaced = nullptr) {
    const std::string key = PodKey(reg.pod_namespace, reg.pod_name);
    if (replaced != nullptr) {
      const auto it = local.find(key);
      if (it != local.end()) *replaced = it->second;
    }
    local[key] = reg;
    if (const auto it = reserved.find(key); it != reserved.end()) {
      if (SameAddresses(it->second.ips, reg.ips)) {
        reserved.erase(it);  // taken over by the ADD
      } else {
        Unreserve(key);  // the ADD allocated before the reservation was made
      }
    }
    // Another pod's reservation holding one of these addresses has lost it
    // (its ADD took it over and was killed before staging, and the runtime's
    // DEL freed it): the attached pod's claim wins, and the stale one must
    // neither program rules for the address nor make its pod a peer there.
    std::vector<std::string> stale;
    for (const auto& [other, r] : reserved) {
      if (std::any_of(r.ips.begin(), r.ips.end(), [&](const IpAddress& ip) {
            return std::find(reg.ips.begin(), reg.ips.end(), ip) != reg.ips.end();
          })) {
        stale.push_back(other);
      }
    }
    for (const std::string& other : stale) {
      Unreserve(other);
      if (const auto it = node_pods.find(other); it != node_pods.end()) ApplyPod(it->second);
    }
    if (const auto it = node_pods.find(key); it != node_pods.end()) ApplyPod(it->second);
    Log(LogLevel::kInfo, "pod attached", {{"pod", key}, {"interface", reg.host_interface}});
  }

  // Attaches a pod for "add" once the start-race check passed. Holds `lock`
  // on return; an error message when the pod cannot be attached.
  std::optional<std::string> Attach(const cni::PodRegistration& reg, std::optional<Prefetched> prefetched,
                                    std::unique_lock<std::mutex>& lock) {
    if (std::optional<std::string> failed = CatchUp(reg.pod_namespace, prefetched, lock)) return failed;
    AttachLocked(reg);
    return std::nullopt;
  }

  // Waits (holding `lock`) until the program numbered `target` is in force; the answer line.
  std::string AnswerWhenInForce(uint64_t target, std::unique_lock<std::mutex>& lock) {
    // The plugin times out on its side.
    const bool in_force = changed.wait_for(lock, std::chrono::seconds(30), [&] { return applied >= target; });
    if (!in_force)
      return Json{{"ok", false}, {"error", "the dataplane has not applied the pod's rules yet"}}.dump();
    return Json{{"ok", true}}.dump();
  }

  // A pod staged before its wiring ("stage"): what to wait for when its "add" comes.
  struct Staged {
    Json registration;  // as the plugin sent it
    std::string key;
    cni::Owner owner;
    uint64_t target = 0;  // the program that carries it
    // What the pod was attached as before (an earlier sandbox of the same
    // pod), put back if this ADD does not complete.
    std::optional<cni::PodRegistration> replaced;
  };

  // "stage": attaches the pod and asks for a program at once, with what the
  // watch has seen so far, then makes the start-race check while that program
  // runs. The pod runs nothing before "add" is answered, and "add" waits for
  // the newest program asked for once the check passed: one carrying every
  // policy the check waited for.
  std::optional<Staged> Stage(const Json& request, std::optional<Prefetched> prefetched) {
    const Json registration = request.value("registration", Json::object());
    Result<cni::PodRegistration> reg = cni::DecodeRegistration(registration.dump());
    if (!reg) return std::nullopt;  // the "add" that follows gets the error
    const auto start = Clock::now();
    Staged staged{registration, PodKey(reg->pod_namespace, reg->pod_name), reg->owner, 0, std::nullopt};
    std::unique_lock lock(mu);
    AttachLocked(*reg, &staged.replaced);
    Want();
    stats.last_add = {};
    stats.last_add.stage_received = start;
    stats.last_add.attached = Clock::now();
    lock.unlock();
    if (CatchUp(reg->pod_namespace, prefetched, lock)) {
      if (!lock.owns_lock()) lock.lock();
      WithdrawLocked(staged, false);  // as it was; the "add" that follows tries again and fails
      return std::nullopt;
    }
    staged.target = wanted;
    stats.last_add.checked = Clock::now();
    stats.last_attach_ms = std::chrono::duration<double, std::milli>(stats.last_add.checked - start).count();
    return staged;
  }

  // The plugin went away between "stage" and "add" (its ADD failed): the pod
  // is not attached after all (or attached as it was before the stage),
  // unless another ADD has attached it since.
  void Withdraw(const Staged& staged) {
    std::lock_guard lock(mu);
    WithdrawLocked(staged, true);
  }

  // `plugin_done`: the plugin has exited (its connection closed), so an
  // address it took over from the pod's reservation is back in it, or still
  // its own if it was killed.
  void WithdrawLocked(const Staged& staged, bool plugin_done) {
    const auto it = local.find(staged.key);
    if (it == local.end() || it->second.owner.container_id != staged.owner.container_id ||
        it->second.owner.ifname != staged.owner.ifname) {
      return;
    }
    if (staged.replaced) {
      it->second = *staged.replaced;
    } else {
      local.erase(it);
      // Still scheduled here: reserved again (finding what the failed ADD
      // gave back), so the pod stays programmed ahead of its next ADD; gone
      // meanwhile: whatever was given back is released.
      if (const auto pod = node_pods.find(staged.key); pod != node_pods.end()) {
        if (plugin_done) MaybeReserve(staged.key, pod->second);
        ApplyPod(pod->second);
      } else if (plugin_done) {
        Unreserve(staged.key, /*pod_gone=*/true);
      }
    }
    Log(LogLevel::kInfo, "pod withdrawn: its ADD did not complete", {{"pod", staged.key}});
    Want();
  }

  // Handles one request; the answer line.
  std::string Serve(const std::string& line, std::optional<Prefetched> prefetched = std::nullopt,
                    const std::optional<Staged>& staged = std::nullopt) {
    Json request;
    try {
      request = Json::parse(line);
    } catch (const Json::exception& e) {
      return Json{{"ok", false}, {"error", std::string("unreadable request: ") + e.what()}}.dump();
    }
    const std::string op = request.value("op", "");
    if (op == "add" && staged && request.value("registration", Json::object()) == staged->registration) {
      // Attached at "stage" (after the same checks); its program may already be in force.
      const auto received = Clock::now();
      std::unique_lock lock(mu);
      std::string answer = AnswerWhenInForce(staged->target, lock);
      stats.last_add.add_received = received;
      stats.last_add.answered = Clock::now();
      stats.last_add.program_started = program_times.started;
      stats.last_add.program_compiled = program_times.compiled;
      stats.last_add.program_applied = program_times.applied;
      return answer;
    }
    Result<cni::PodRegistration> reg =
        cni::DecodeRegistration(request.value("registration", Json::object()).dump());
    if (op == "status") {
      std::lock_guard lock(mu);
      return Json{{"ok", stats.synced}, {"error", stats.synced ? "" : "not synced yet"}}.dump();
    }
    if (!reg) return Json{{"ok", false}, {"error", reg.error().message()}}.dump();
    const std::string key = PodKey(reg->pod_namespace, reg->pod_name);
    std::unique_lock lock(mu, std::defer_lock);
    if (op == "add") {
      if (std::optional<std::string> failed = Attach(*reg, std::move(prefetched), lock)) {
        return Json{{"ok", false}, {"error", *failed}}.dump();
      }
    } else if (op == "del") {
      lock.lock();
      // A DEL ends the attachment it names. A late DEL of a pod's earlier sandbox must not
      // detach the sandbox that replaced it: the pod would lose its isolation (fail open).
      if (const auto it = local.find(key); it != local.end() && it->second.owner != reg->owner) {
        Log(LogLevel::kInfo, "detach of an earlier attachment ignored",
            {{"pod", key},
             {"container", reg->owner.container_id},
             {"attached", it->second.owner.container_id}});
      } else {
        local.erase(key);
        Log(LogLevel::kInfo, "pod detached", {{"pod", key}});
      }
    } else if (op == "check") {
      lock.lock();
    } else {
      return Json{{"ok", false}, {"error", "unknown op " + op}}.dump();
    }
    Want();
    return AnswerWhenInForce(wanted, lock);
  }

  // One connection of netpol-cni (cni_server.h reads its lines, with a
  // deadline each): "prepare", "stage", then the request that is answered.
  void ServeConnection(CniConnection& connection) {
    std::optional<std::string> line = connection.ReadLine();
    std::optional<Prefetched> prefetched;
    // "prepare" (no answer): read the pod's policies while the plugin wires it.
    if (line && line->find("\"prepare\"") != std::string::npos) {
      const Json request = Json::parse(*line, nullptr, false);
      if (request.is_object() && request.value("op", "") == "prepare" && api_client != nullptr) {
        const std::string ns = request.value("namespace", "");
        prefetched = Prefetch(ns);
      }
      line = connection.ReadLine();
    }
    // "stage" (no answer): the pod's addresses are known; program its
    // rules while the plugin wires it.
    std::optional<Staged> staged;
    if (line && line->find("\"stage\"") != std::string::npos) {
      const Json request = Json::parse(*line, nullptr, false);
      if (request.is_object() && request.value("op", "") == "stage") {
        staged = Stage(request, std::move(prefetched));
        prefetched = std::nullopt;
        line = connection.ReadLine();
      }
    }
    if (line) {
      std::string answer;
      try {
        answer = Serve(*line, std::move(prefetched), staged);
      } catch (const std::exception& e) {  // a request of unexpected shape (JSON's type errors)
        if (staged) Withdraw(*staged);
        answer = Json{{"ok", false}, {"error", std::string("cannot serve the request: ") + e.what()}}.dump();
      }
      (void)connection.Write(answer + "\n");
    } else if (staged) {
      Withdraw(*staged);
    }
  }
};

namespace {

class Watcher final : public kube::ListWatchHandler {
 public:
  Watcher(Agent::Impl& agent, const kube::PolicyResource& resource, bool optional = false)
      : agent_(agent), resource_(resource), kind_(resource.kind), optional_(optional) {}
  void OnListBegin() override {
    std::lock_guard lock(agent_.mu);
    agent_.OnListBegin(kind_);
    items_ = 0;
  }
  void OnListPage(std::vector<Json>& items) override {
    std::lock_guard lock(agent_.mu);
    agent_.OnListPage(resource_, items);
    items_ += items.size();
  }
  void OnListEnd() override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health[kind_].last_success = Clock::now();
    agent_.OnListEnd(kind_);
    absent_ = false;
    agent_.Log(LogLevel::kInfo, "listed", {{"kind", kind_}, {"items", items_}});
  }
  void OnEvent(const std::string& type, const Json& object) override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health[kind_].last_success = Clock::now();
    agent_.OnObject(kind_, type, object);
  }
  void OnWatching() override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health[kind_].last_success = Clock::now();
  }
  // An optional kind the cluster does not serve (no ClusterNetworkPolicy CRD:
  // 404) or does not let us read (403): said once, then the agent goes on
  // as if it were listed empty (objects of the kind it had are deleted) and
  // stays ready; the loop keeps retrying, so a CRD installed later is picked
  // up. Other failures, and these for the required kinds, are problems.
  void OnFailure(const Error& error) override {
    const bool absent = error.code() == ErrorCode::kNotFound || error.code() == ErrorCode::kPermissionDenied;
    if (!optional_ || !absent) return OnProblem(error.message());
    std::lock_guard lock(agent_.mu);
    if (absent_) return;
    absent_ = true;
    agent_.Log(LogLevel::kWarn,
               "not watched: the cluster does not serve it or lets us read it; going on without it",
               {{"kind", kind_}, {"error", error.message()}});
    agent_.OnListBegin(kind_);
    agent_.OnListEnd(kind_);
  }
  void OnProblem(const std::string& what) override {
    {
      std::lock_guard lock(agent_.mu);
      Agent::Impl::WatchHealth& health = agent_.watch_health[kind_];
      health.last_problem = Clock::now();
      health.problem = what;
    }
    agent_.Log(LogLevel::kWarn, "watch interrupted; recovering", {{"kind", kind_}, {"error", what}});
  }

 private:
  Agent::Impl& agent_;
  const kube::PolicyResource& resource_;
  std::string kind_;
  bool optional_ = false;
  bool absent_ = false;  // said not served (until it is listed)
  size_t items_ = 0;
};

}  // namespace

Agent::Agent(AgentOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Agent::~Agent() = default;

AgentStats Agent::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

Status Agent::Run(const std::atomic<bool>& stop) {
  Impl& a = *impl_;
  a.halt = false;
  // What can be refused is asked for first, before anything starts: a
  // socket or port that cannot be had ends the start with the reason.
  CniServer cni({.path = a.options.socket_path,
                 .mode = a.options.socket_mode,
                 .max_connections = std::max<size_t>(a.options.cni_max_connections, 1),
                 .read_timeout = a.options.cni_timeout,
                 .write_timeout = a.options.cni_timeout},
                [&a](bool warning, const std::string& message) {
                  a.Log(warning ? LogLevel::kWarn : LogLevel::kInfo, message);
                });
  NETPOL_RETURN_IF_ERROR(cni.Bind(), "");
  if (!a.options.metrics_address.empty()) NETPOL_RETURN_IF_ERROR(a.BindMetrics(a.halt), "");
  NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<kube::Client> client, kube::Client::Create(a.options.api),
                          "netpold");
  NETPOL_ASSIGN_OR_RETURN(
      a.backend,
      dataplane::nft::NftBackend::Create({a.options.netns,
                                          {.log_group = a.options.log_group,
                                           .log_allowed = a.options.flow_logs && a.options.flow_logs_allowed},
                                          /*observe_at_create=*/true}),
      "netpold");
  // Pods attached before this start (a restart): known at once, from disk.
  NETPOL_ASSIGN_OR_RETURN(const std::vector<cni::PodRegistration> registered,
                          cni::ListRegistrations(a.options.state_dir), "reading pod registrations");
  {
    std::lock_guard lock(a.mu);
    for (const auto& reg : registered) a.local[PodKey(reg.pod_namespace, reg.pod_name)] = reg;
  }
  if (!a.options.cni_conf.empty()) {
    std::ifstream in(a.options.cni_conf);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return InvalidArgument("cannot read the CNI configuration " + a.options.cni_conf);
    Result<cni::Ipam> ipam = cni::OpenNetworkIpam(text.str());
    if (!ipam && ipam.error().code() != ErrorCode::kNotFound) {
      return std::move(ipam).error().WithContext("reserving pods' addresses from " + a.options.cni_conf);
    }
    if (!ipam) {
      a.Log(LogLevel::kInfo, "pods wait for their ADD to be programmed", {{"why", ipam.error().message()}});
    } else {
      // Reservations of a previous run: kept for their pods, or released once
      // the pod list shows them gone.
      NETPOL_ASSIGN_OR_RETURN(const std::vector<cni::Allocation> allocations, ipam->List(),
                              "reading reservations");
      std::lock_guard lock(a.mu);
      for (const cni::Allocation& allocation : allocations) {
        if (const std::optional<std::string> pod = cni::ReservedPod(allocation.owner))
          a.reserved[*pod].ips.push_back(allocation.address);
      }
      a.ipam = std::move(*ipam);
    }
  }
  // Others' changes to the rules, as the kernel announces them; without
  // them, the periodic read-back alone finds such changes.
  std::unique_ptr<dataplane::ChangeFeed> feed;
  if (a.options.dataplane_notifications) {
    Result<std::unique_ptr<dataplane::ChangeFeed>> watched = a.backend->WatchChanges();
    if (watched) {
      feed = std::move(*watched);
    } else {
      a.Log(LogLevel::kWarn, "changes others make to the rules are found only by reading them back",
            {{"error", watched.error().message()},
             {"every_s", std::chrono::duration<double>(a.options.dataplane_check_interval).count()}});
    }
  }
  a.api_client = client.get();
  a.cni_server = &cni;
  a.Log(LogLevel::kInfo, "starting",
        {{"server", a.options.api.server}, {"registered_pods", registered.size()}});
  std::vector<std::unique_ptr<Watcher>> handlers;
  std::vector<std::unique_ptr<kube::ListWatch>> loops;
  const auto watch = [&](const kube::PolicyResource& resource, bool optional) {
    handlers.push_back(std::make_unique<Watcher>(a, resource, optional));
    loops.push_back(std::make_unique<kube::ListWatch>(*client, resource.path, *handlers.back()));
    std::lock_guard lock(a.mu);
    a.watches[resource.kind] = loops.back().get();
  };
  for (const kube::PolicyResource& resource : kube::kPolicyResources) watch(resource, false);
  for (const kube::PolicyResource& resource : kube::kOptionalPolicyResources) watch(resource, true);
  // Every loop runs until halt; one that ends before is fatal (the agent
  // would go on without watching, programming or serving): the others are
  // stopped and Run says which one ended.
  std::mutex fatal_mu;
  std::optional<Error> fatal;
  std::vector<std::thread> threads;
  threads.reserve(loops.size() + 5);  // the watches, programming, CNI socket, metrics, drift, flows
  const auto start = [&](std::string what, std::function<void()> body) {
    threads.emplace_back([&a, &fatal_mu, &fatal, what = std::move(what), body = std::move(body)] {
      body();
      if (a.halt.exchange(true)) return;
      std::lock_guard lock(fatal_mu);
      fatal = Internal("the " + what + " ended unexpectedly");
      a.Log(LogLevel::kError, "a loop ended unexpectedly; stopping", {{"loop", what}});
    });
  };
  for (const auto& loop : loops) {
    start("API watch", [&a, &loop] {
      NameThread("np-watch");
      loop->Run(a.halt);
    });
  }
  start("programming loop", [&a] { a.ProgramLoop(a.halt); });
  start("CNI socket", [&a, &cni] {
    NameThread("np-cni");
    cni.Serve(a.halt, [&a](CniConnection& connection) { a.ServeConnection(connection); });
  });
  if (a.http) start("metrics server", [&a] { a.ServeMetrics(a.halt); });
  if (feed) start("dataplane change watch", [&a, &feed] { a.DriftLoop(a.halt, *feed); });
  // Flow logs are an extra: without NFLOG the agent goes on without them.
  if (a.options.flow_logs) threads.emplace_back([&a] { a.FlowLoop(a.halt); });
  while (!stop.load() && !a.halt.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  a.halt = true;
  for (std::thread& t : threads) t.join();
  a.Log(LogLevel::kInfo, "stopped; the rules in force stay in force");
  {
    std::lock_guard lock(a.mu);
    a.watches.clear();
    a.cni_server = nullptr;
  }
  a.http.reset();
  std::lock_guard lock(fatal_mu);
  if (fatal) return *fatal;
  return Ok();
}

}  // namespace netpol::agent
