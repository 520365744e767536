// The agent's insides, shared by the files that define them: agent.cpp (the
// start, the watches, the programming loop, the flow log's reader),
// agent_cni.cpp (the CNI plugin's requests) and agent_http.cpp (/metrics,
// /healthz, /readyz, /flows). Only those include it.
//
//   std::unique_lock lock(impl.mu);
//   impl.state.Attach(registration);   // NodeState: what the agent knows and wants
//   impl.changed.notify_all();         // the programming loop, and who waits for a program
//
// One mutex (`mu`) guards the state and the statistics; the backend's
// transaction, the allocator and the API reads run with it released.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/cni_server.h"
#include "agent/drift_watch.h"
#include "agent/flow_log.h"
#include "agent/log.h"
#include "agent/loop_health.h"
#include "agent/metrics.h"
#include "agent/node_state.h"
#include "agent/watch_health.h"
#include "cni/protocol.h"
#include "cni/registry.h"
#include "dataplane/backend.h"
#include "kube/client.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace netpol::agent {
namespace internal {

using Clock = std::chrono::steady_clock;

inline const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,   0.5,   1,    2.5};

// Names the calling thread (at most 15 characters), for `top -H`, `perf
// report --comm` and gdb: the agent's threads otherwise all look alike.
void NameThread(const char* name);

inline double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace internal

struct Agent::Impl {
  using Clock = internal::Clock;
  using Json = kube::Json;

  // Both where httplib::Server is complete (agent_http.cpp).
  Impl(AgentOptions o, BackendFactory make);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  AgentOptions options;
  Logger log;
  mutable std::mutex mu;
  std::condition_variable changed;  // something to program, or a program done
  NodeState state;                  // under mu
  // The plugin's allocator (options.cni_conf in routed mode): pods are
  // programmed ahead of their ADD. Used by the programming thread alone.
  std::unique_ptr<AddressAllocator> allocator;
  AgentStats stats;
  BackendFactory make_backend;
  std::unique_ptr<dataplane::Backend> backend;  // made by Run
  kube::Client* api_client = nullptr;           // for reads outside the watches
  // For /metrics and /healthz.
  Histogram program_seconds{internal::kLatencyBuckets};   // compile + dataplane, per update
  Histogram update_seconds{internal::kLatencyBuckets};    // change reached the agent -> in force
  std::map<std::string, const kube::ListWatch*> watches;  // kind -> its list/watch loop
  WatchHealth watch_health;                               // for /readyz
  std::unique_ptr<httplib::Server> http;                  // /metrics, /healthz, /readyz, /flows
  const CniServer* cni_server = nullptr;                  // for /metrics
  // Set to end every loop: on the caller's stop, or when a loop ended on its own.
  std::atomic<bool> halt{false};
  // The dataplane changed behind the agent: what its change notifications
  // said since the last check, and a repair under way.
  DriftWatch drift;
  // The loops that beat (programming, CNI socket, dataplane change watch),
  // for /healthz; made by Run before any loop starts.
  std::unique_ptr<LoopHealth> liveness;
  LoopHealth::Id program_beat = 0;
  LoopHealth::Id drift_beat = 0;
  FlowLog flows;
  // The last program in force: when it started, was compiled, was applied.
  struct ProgramTimes {
    Clock::time_point started, compiled, applied;
  } program_times;

  // Runs work with `lock` released (for the state's slow calls).
  static Unlocked Releasing(std::unique_lock<std::mutex>& lock) {
    return [&lock](const std::function<void()>& work) {
      lock.unlock();
      work();
      lock.lock();
    };
  }

  // --- the programming loop ----------------------------------------------------

  // Asks the backend whether what it installed is still in force (the lock
  // released meanwhile: it reads the kernel back). When someone else changed
  // it, a program is asked for, which restores it.
  void CheckDataplane(std::unique_lock<std::mutex>& lock);

  // A program failed. Someone else's change can make a transaction fail (a
  // set it edits deleted meanwhile): that is drift, restored at once (true:
  // program again now), not a failure; otherwise the rules in force are still
  // the previous ones (checked, not assumed).
  bool ProgramFailed(const Error& error, Clock::time_point started, int& drift_retries,
                     std::unique_lock<std::mutex>& lock);

  // A program is in force: the statistics, the repair it finished, the log.
  void ProgramDone(const NodeState::Turn& turn);

  void ProgramLoop(const std::atomic<bool>& stop);

  // Reads the backend's feed of others' changes to the dataplane and wakes
  // the programming loop, which checks and restores.
  void DriftLoop(const std::atomic<bool>& stop, dataplane::ChangeFeed& feed);

  // --- flow logs -------------------------------------------------------------------

  void FlowLoop(const std::atomic<bool>& stop);

  // --- metrics and health ---------------------------------------------------------

  // Why the agent is not ready ("" when it is): the first full program is
  // not in force yet, or a watch of the API is failing: from its error until
  // it next lists, opens its watch stream again (the server answered) or
  // delivers an event.
  std::string NotReady() const;

  // Why the agent is not live (empty when it is): the loops that made no
  // progress within options.stuck_after (LoopHealth::Stuck). Without the lock.
  std::vector<std::string> Stuck() const;

  std::string Metrics();

  // Binds the address serving /metrics, /healthz, /readyz and /flows (before
  // any loop starts: an address in use fails the start, naming it).
  Status BindMetrics(const std::atomic<bool>& stop);

  // Serves what BindMetrics bound until stop.
  void ServeMetrics(const std::atomic<bool>& stop);
  // Closes what BindMetrics bound (once ServeMetrics returned).
  void CloseHttp();

  // --- the CNI socket -------------------------------------------------------------

  // The policies of a namespace as the API has them now, with the list's
  // resourceVersion.
  Result<Json> ReadNamespacePolicies(const std::string& ns) const;

  // A read started when the plugin announced the pod ("prepare"), running
  // while the plugin allocates and wires.
  struct Prefetched {
    std::string pod_namespace;
    std::future<Result<Json>> policies;
  };

  // Starts reading a namespace's policies on a thread of its own.
  Prefetched Prefetch(const std::string& ns);

  // The start-race check: a policy created just before the pod may not have
  // reached this agent's watch yet, so the policies of the pod's namespace
  // (the only ones that can isolate it) are read from the API (or taken from
  // the read "prepare" started), and this waits until the watch has caught
  // up with that read (NodeState::CaughtUp). Holds `lock` on return, unless
  // the read failed; an error message when the watch cannot be trusted for
  // the pod.
  std::optional<std::string> CatchUp(const std::string& ns, std::optional<Prefetched>& prefetched,
                                     std::unique_lock<std::mutex>& lock);

  // Waits (holding `lock`) until the program numbered `target` is in force.
  cni::AgentReply AnswerWhenInForce(uint64_t target, std::unique_lock<std::mutex>& lock);

  // A pod staged before its wiring ("stage"): what to wait for when its "add" comes.
  struct Staged {
    cni::PodRegistration registration;
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
  std::optional<Staged> Stage(const cni::PodRegistration& reg, std::optional<Prefetched> prefetched);

  // The plugin went away between "stage" and "add" (its ADD failed).
  void Withdraw(const Staged& staged);

  // Answers the request of a connection (after its "prepare" and "stage").
  cni::AgentReply Serve(const Result<cni::AgentRequest>& request, std::optional<Prefetched> prefetched,
                        const std::optional<Staged>& staged);

  // One connection of netpol-cni (cni_server.h reads its lines, with a
  // deadline each): "prepare", "stage", then the request that is answered.
  void ServeConnection(CniConnection& connection);
};

}  // namespace netpol::agent
