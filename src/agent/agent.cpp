// The node agent's start and its loops: the API watches feed the NodeState
// (node_state.h), the programming loop turns it into the dataplane's program
// and restores what others change, the flow log's reader attributes logged
// packets. The CNI socket's requests are agent_cni.cpp, the HTTP endpoints
// agent_http.cpp; what they share is internal/agent_impl.h.
#include "agent/agent.h"

#include <malloc.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/internal/agent_impl.h"
#include "cni/ipam.h"
#include "cni/plugin.h"

namespace netpol::agent {

void internal::NameThread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);
}

namespace {

using internal::Clock;
using internal::Ms;
using internal::NameThread;
using kube::Json;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The plugin's allocator, where the agent reserves pods' addresses under the
// owner cni::ReservationOwner.
class IpamAllocator final : public AddressAllocator {
 public:
  explicit IpamAllocator(cni::Ipam ipam) : ipam_(std::move(ipam)) {}
  Result<std::vector<IpAddress>> Reserve(const std::string& pod) override {
    return ipam_.Allocate(OwnerOf(pod));
  }
  Status Release(const std::string& pod) override { return ipam_.Release(OwnerOf(pod)); }

 private:
  static cni::Owner OwnerOf(const std::string& pod) {
    const size_t slash = pod.find('/');
    return cni::ReservationOwner(pod.substr(0, slash), pod.substr(slash + 1));
  }
  cni::Ipam ipam_;
};

}  // namespace

void Agent::Impl::CheckDataplane(std::unique_lock<std::mutex>& lock) {
  const DriftWatch::Notes noticed = drift.Take();
  lock.unlock();
  Result<std::vector<std::string>> found = backend->Verify();
  lock.lock();
  if (!found) {
    log(LogLevel::kWarn, "cannot read the dataplane back to check it", {{"error", found.error().message()}});
    return;
  }
  if (found->empty()) {
    if (noticed.notified) {
      log(LogLevel::kDebug, "others changed nftables; the agent's rules are intact",
          {{"noticed", noticed.what}});
    }
    return;
  }
  log(LogLevel::kWarn, "the dataplane was changed behind the agent; restoring it",
      {{"found", *found},
       {"noticed", noticed.what},
       {"how", noticed.notified ? "change notification" : "periodic read-back"}});
  drift.RepairFrom(noticed.notified ? noticed.at : Clock::now());
  state.Want();
}

bool Agent::Impl::ProgramFailed(const Error& error, Clock::time_point started, int& drift_retries,
                                std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  Result<std::vector<std::string>> found = backend->Verify();
  lock.lock();
  if (found && !found->empty() && ++drift_retries <= 3) {
    log(LogLevel::kWarn, "the dataplane was changed behind the agent while it programmed; restoring it",
        {{"found", *found}, {"error", error.message()}});
    drift.RepairFrom(started);
    return true;
  }
  ++stats.failures;
  if (found) {
    log(LogLevel::kError, "programming the dataplane failed; the previous rules stay in force",
        {{"error", error.message()}});
  } else {
    log(LogLevel::kError, "programming the dataplane failed, and its rules cannot be read back",
        {{"error", error.message()}, {"read_back", found.error().message()}});
  }
  return false;
}

void Agent::Impl::ProgramDone(const NodeState::Turn& turn) {
  const dataplane::ApplyStats& done = *turn.done;
  if (const std::optional<Clock::time_point> since = drift.Repaired()) {
    ++stats.repairs;
    log(LogLevel::kInfo, "dataplane restored",
        {{"ms", Ms(turn.applied - *since)},
         {"added", done.added},
         {"removed", done.removed},
         {"rebuilt", done.created}});
  }
  program_times = {turn.started, turn.compiled, turn.applied};
  stats.last_change_at = turn.wanted_at;
  stats.last_compile_ms = Ms(turn.compiled - turn.started);
  stats.last_dataplane_ms = Ms(turn.applied - turn.compiled);
  stats.last_elements_changed = done.added + done.removed;
  stats.last_plan_ms = done.plan_ms;
  stats.last_send_ms = done.send_ms;
  stats.installed_elements = turn.installed;
  program_seconds.Observe(Seconds(turn.applied - turn.started));
  update_seconds.Observe(Seconds(turn.applied - turn.wanted_at));
  ++stats.programs;
  if (!stats.synced) {
    // The first lists decoded the whole cluster through short-lived JSON
    // documents; hand the freed heap back so the resident size is what the
    // agent keeps, not what the sync passed through.
    ::malloc_trim(0);
    const struct mallinfo2 heap = ::mallinfo2();
    log(LogLevel::kInfo, "first full sync in force",
        {{"pods", turn.pods},
         {"heap_in_use_bytes", heap.uordblks + heap.hblkhd},
         {"heap_free_bytes", heap.fordblks}});
  }
  stats.synced = true;
  log(LogLevel::kDebug, "programmed",
      {{"ms", Ms(turn.applied - turn.started)},
       {"added", done.added},
       {"removed", done.removed},
       {"local_pods", turn.pods}});
}

void Agent::Impl::ProgramLoop(const std::atomic<bool>& stop) {
  NameThread("np-program");
  std::unique_lock lock(mu);
  const Unlocked unlocked = Releasing(lock);
  auto retry_at = Clock::now();
  auto check_at = Clock::now() + options.dataplane_check_interval;
  int drift_retries = 0;  // programs retried at once because the table changed under them
  while (!stop.load()) {
    // A change may have come while the lock was free (during Apply): check first.
    changed.wait_for(lock, std::chrono::milliseconds(200), [&] {
      return stop.load() || (state.Synced() && ((state.Due() && Clock::now() >= retry_at) ||
                                                (stats.synced && drift.noticed())));
    });
    liveness->Beat(program_beat);
    // Others' changes to the rules: announced by the kernel, or found by
    // reading them back now and then. Only once something is in force.
    if (stats.synced && (drift.noticed() || Clock::now() >= check_at)) {
      check_at = Clock::now() + options.dataplane_check_interval;
      CheckDataplane(lock);
    }
    if (!state.Due() || Clock::now() < retry_at) continue;
    // Watch events and CNI requests go on while the backend works; the
    // next program starts as soon as this one is in force.
    const NodeState::Turn turn = state.Program(*backend, allocator.get(), unlocked);
    if (!turn.done) {
      if (!ProgramFailed(turn.done.error(), turn.started, drift_retries, lock)) {
        retry_at = Clock::now() + std::chrono::milliseconds(500);
      }
      continue;
    }
    drift_retries = 0;
    state.Committed(turn.generation);
    ProgramDone(turn);
    changed.notify_all();
    if (allocator) state.ReleaseEnded(turn.generation, *allocator, unlocked);
  }
}

void Agent::Impl::DriftLoop(const std::atomic<bool>& stop, dataplane::ChangeFeed& feed) {
  NameThread("np-drift");
  while (!stop.load()) {
    liveness->Beat(drift_beat);
    Result<std::vector<std::string>> next = feed.Next(std::chrono::milliseconds(200));
    if (!next) {
      log(LogLevel::kWarn, "reading the dataplane's change notifications failed",
          {{"error", next.error().message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (next->empty()) continue;
    std::lock_guard lock(mu);
    drift.Notice(*next, Clock::now());
    changed.notify_all();
  }
}

void Agent::Impl::FlowLoop(const std::atomic<bool>& stop) {
  NameThread("np-flows");
  Result<std::unique_ptr<dataplane::PacketFeed>> feed = backend->WatchPackets();
  if (!feed) {
    log(LogLevel::kWarn, "no flow logs: cannot read the dataplane's packet log",
        {{"error", feed.error().message()}});
    return;
  }
  while (!stop.load()) {
    Result<std::vector<dataplane::LoggedPacket>> next = (*feed)->Next(std::chrono::milliseconds(200));
    if (!next) {
      log(LogLevel::kWarn, "reading flow logs failed", {{"error", next.error().message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    for (const dataplane::LoggedPacket& packet : *next) {
      // The rate limit first: a packet it drops is not attributed (that
      // takes the agent's lock, which programming needs).
      if (!flows.Admit(Clock::now())) continue;
      Json line;
      {
        std::lock_guard lock(mu);
        line = AttributeFlow(state.engine(), packet, options.node_name, Timestamp());
      }
      flows.Add(std::move(line));
    }
  }
}

namespace {

class Watcher final : public kube::ObjectListWatchHandler {
 public:
  Watcher(Agent::Impl& agent, const kube::PolicyResource& resource, bool optional = false)
      : agent_(agent), resource_(resource), kind_(resource.kind), optional_(optional) {}
  void OnListBegin() override {
    std::lock_guard lock(agent_.mu);
    agent_.state.OnListBegin(kind_);
    items_ = 0;
  }
  void OnListPage(std::vector<api::ApiItem>& items) override {
    std::lock_guard lock(agent_.mu);
    agent_.state.OnListPage(resource_, items);
    items_ += items.size();
    agent_.changed.notify_all();
  }
  void OnListEnd() override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health.Succeeded(kind_, Clock::now());
    agent_.state.OnListEnd(kind_);
    agent_.changed.notify_all();
    absent_ = false;
    agent_.log(LogLevel::kInfo, "listed", {{"kind", kind_}, {"items", items_}});
  }
  void OnEvent(const std::string& type, api::ApiItem& item) override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health.Succeeded(kind_, Clock::now());
    agent_.state.OnObject(kind_, type, item);
    agent_.changed.notify_all();
  }
  void OnWatching() override {
    std::lock_guard lock(agent_.mu);
    agent_.watch_health.Succeeded(kind_, Clock::now());
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
    agent_.log(LogLevel::kWarn,
               "not watched: the cluster does not serve it or lets us read it; going on without it",
               {{"kind", kind_}, {"error", error.message()}});
    agent_.state.OnListBegin(kind_);
    agent_.state.OnListEnd(kind_);
    agent_.changed.notify_all();
  }
  void OnProblem(const std::string& what) override {
    {
      std::lock_guard lock(agent_.mu);
      agent_.watch_health.Failed(kind_, what, Clock::now());
    }
    agent_.log(LogLevel::kWarn, "watch interrupted; recovering", {{"kind", kind_}, {"error", what}});
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

Agent::Agent(AgentOptions options, BackendFactory backend)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(backend))) {}

Agent::~Agent() = default;

AgentStats Agent::stats() const {
  std::lock_guard lock(impl_->mu);
  AgentStats stats = impl_->stats;
  stats.events = impl_->state.events();
  stats.reservations_in_force = impl_->state.reservations_in_force();
  return stats;
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
                  a.log(warning ? LogLevel::kWarn : LogLevel::kInfo, message);
                });
  NETPOL_RETURN_IF_ERROR(cni.Bind(), "");
  if (!a.options.metrics_address.empty()) NETPOL_RETURN_IF_ERROR(a.BindMetrics(a.halt), "");
  NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<kube::Client> client, kube::Client::Create(a.options.api),
                          "netpold");
  // Which dataplane is the caller's choice (netpold's main.cpp: nftables).
  if (!a.make_backend) return InvalidArgument("netpold: no dataplane backend to program");
  NETPOL_ASSIGN_OR_RETURN(a.backend, a.make_backend(a.options), "netpold");
  // Pods attached before this start (a restart): known at once, from disk.
  NETPOL_ASSIGN_OR_RETURN(const std::vector<cni::PodRegistration> registered,
                          cni::ListRegistrations(a.options.state_dir), "reading pod registrations");
  {
    std::lock_guard lock(a.mu);
    a.state.AdoptRegistrations(registered);
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
      a.log(LogLevel::kInfo, "pods wait for their ADD to be programmed", {{"why", ipam.error().message()}});
    } else {
      // Reservations of a previous run: kept for their pods, or released once
      // the pod list shows them gone.
      NETPOL_ASSIGN_OR_RETURN(const std::vector<cni::Allocation> allocations, ipam->List(),
                              "reading reservations");
      std::lock_guard lock(a.mu);
      a.state.AdoptReservations(allocations);
      a.allocator = std::make_unique<IpamAllocator>(std::move(*ipam));
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
      a.log(LogLevel::kWarn, "changes others make to the rules are found only by reading them back",
            {{"error", watched.error().message()},
             {"every_s", std::chrono::duration<double>(a.options.dataplane_check_interval).count()}});
    }
  }
  a.api_client = client.get();
  a.cni_server = &cni;
  a.log(LogLevel::kInfo, "starting",
        {{"server", a.options.api.server}, {"registered_pods", registered.size()}});
  std::vector<std::unique_ptr<Watcher>> handlers;
  std::vector<std::unique_ptr<kube::ListWatch>> loops;
  std::vector<std::string> loop_kinds;
  const auto watch = [&](const kube::PolicyResource& resource, bool optional) {
    handlers.push_back(std::make_unique<Watcher>(a, resource, optional));
    loops.push_back(std::make_unique<kube::ListWatch>(*client, resource, *handlers.back()));
    loop_kinds.push_back(resource.kind);
    std::lock_guard lock(a.mu);
    a.watches[resource.kind] = loops.back().get();
  };
  for (const kube::PolicyResource& resource : kube::kPolicyResources) watch(resource, false);
  for (const kube::PolicyResource& resource : kube::kOptionalPolicyResources) watch(resource, true);
  // Liveness (/healthz): the loops that turn at least every 200 ms beat, and
  // one silent for stuck_after is stuck. The watches do not beat: an idle
  // watch is silent until the server ends it, their waits are bounded in
  // kube (the stall timer, back-off), the lock their events take is the one
  // the programming loop takes every turn, and their failures are readiness.
  a.liveness = std::make_unique<LoopHealth>();
  a.program_beat = a.liveness->Add("programming loop", a.options.stuck_after);
  const LoopHealth::Id cni_beat = a.liveness->Add("CNI socket's accept loop", a.options.stuck_after);
  if (feed) a.drift_beat = a.liveness->Add("dataplane change watch", a.options.stuck_after);
  // Every loop runs until halt; one that ends or throws before is fatal (the
  // agent would go on without watching, programming or serving): the others
  // are stopped and Run says which one ended, and why.
  std::mutex fatal_mu;
  std::optional<Error> fatal;
  std::vector<std::thread> threads;
  threads.reserve(loops.size() + 5);  // the watches, programming, CNI socket, metrics, drift, flows
  const auto start = [&](std::string what, std::function<void()> body) {
    threads.emplace_back([&a, &fatal_mu, &fatal, what = std::move(what), body = std::move(body)] {
      std::optional<Error> ended = RunLoop(what, body, a.halt);
      if (!ended) return;
      a.log(LogLevel::kError, "a loop ended; stopping", {{"loop", what}, {"error", ended->message()}});
      std::lock_guard lock(fatal_mu);
      if (!fatal) fatal = std::move(*ended);
      a.halt = true;
    });
  };
  for (size_t i = 0; i < loops.size(); ++i) {
    start(loop_kinds[i] + " watch", [&a, &loop = *loops[i]] {
      NameThread("np-watch");
      loop.Run(a.halt);
    });
  }
  start("programming loop", [&a] { a.ProgramLoop(a.halt); });
  start("CNI socket", [&a, &cni, cni_beat] {
    NameThread("np-cni");
    cni.Serve(
        a.halt, [&a](CniConnection& connection) { a.ServeConnection(connection); },
        [&a, cni_beat] { a.liveness->Beat(cni_beat); });
  });
  if (a.http) start("metrics server", [&a] { a.ServeMetrics(a.halt); });
  if (feed) start("dataplane change watch", [&a, &feed] { a.DriftLoop(a.halt, *feed); });
  // Flow logs are an extra: without them the agent goes on.
  if (a.options.flow_logs) {
    threads.emplace_back([&a] {
      if (std::optional<Error> ended = RunLoop(
              "flow log reader", [&a] { a.FlowLoop(a.halt); }, a.halt)) {
        a.log(LogLevel::kWarn, "no more flow logs; the agent goes on", {{"error", ended->message()}});
      }
    });
  }
  while (!stop.load() && !a.halt.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  a.halt = true;
  for (std::thread& t : threads) t.join();
  a.log(LogLevel::kInfo, "stopped; the rules in force stay in force");
  {
    std::lock_guard lock(a.mu);
    a.watches.clear();
    a.cni_server = nullptr;
  }
  a.CloseHttp();
  std::lock_guard lock(fatal_mu);
  if (fatal) return *fatal;
  return Ok();
}

}  // namespace netpol::agent
