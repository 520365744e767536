// The CNI plugin's requests (cni/protocol.h), as the agent answers them: a
// pod announced ("prepare": its policies read from the API meanwhile), staged
// ("stage": attached and programmed while the plugin wires it), added (answered
// once its rules are in force, after the start-race check), deleted, checked.
#include <chrono>
#include <future>
#include <mutex>
#include <string>

#include "agent/internal/agent_impl.h"

namespace netpol::agent {
namespace {

using internal::Clock;
using internal::Ms;
using kube::Json;

cni::AgentReply Refused(std::string why) {
  return {.ok = false, .error = std::move(why)};
}

}  // namespace

Result<Json> Agent::Impl::ReadNamespacePolicies(const std::string& ns) const {
  return api_client->Get("/apis/networking.k8s.io/v1/namespaces/" + ns + "/networkpolicies");
}

Agent::Impl::Prefetched Agent::Impl::Prefetch(const std::string& ns) {
  return {ns, std::async(std::launch::async, [this, ns] {
            const auto start = Clock::now();
            Result<Json> read = ReadNamespacePolicies(ns);
            const double ms = Ms(Clock::now() - start);
            std::lock_guard lock(mu);
            stats.last_policy_read_ms = ms;
            return read;
          })};
}

std::optional<std::string> Agent::Impl::CatchUp(const std::string& ns, std::optional<Prefetched>& prefetched,
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
  if (!changed.wait_for(lock, std::chrono::seconds(10),
                        [&] { return state.CaughtUp(ns, *namespace_policies); })) {
    return std::string("the agent's watch has not caught up with the pod's policies");
  }
  return std::nullopt;
}

cni::AgentReply Agent::Impl::AnswerWhenInForce(uint64_t target, std::unique_lock<std::mutex>& lock) {
  // The plugin times out on its side.
  const bool in_force =
      changed.wait_for(lock, std::chrono::seconds(30), [&] { return state.applied() >= target; });
  if (!in_force) return Refused("the dataplane has not applied the pod's rules yet");
  return {.ok = true};
}

std::optional<Agent::Impl::Staged> Agent::Impl::Stage(const cni::PodRegistration& reg,
                                                      std::optional<Prefetched> prefetched) {
  const auto start = Clock::now();
  Staged staged{reg, 0, std::nullopt};
  std::unique_lock lock(mu);
  state.Attach(reg, &staged.replaced);
  changed.notify_all();
  stats.last_add = {};
  stats.last_add.stage_received = start;
  stats.last_add.attached = Clock::now();
  lock.unlock();
  if (CatchUp(reg.pod_namespace, prefetched, lock)) {
    if (!lock.owns_lock()) lock.lock();
    state.Withdraw(reg, staged.replaced, false);  // as it was; the "add" that follows tries again and fails
    changed.notify_all();
    return std::nullopt;
  }
  staged.target = state.wanted();
  stats.last_add.checked = Clock::now();
  stats.last_attach_ms = Ms(stats.last_add.checked - start);
  return staged;
}

void Agent::Impl::Withdraw(const Staged& staged) {
  std::lock_guard lock(mu);
  state.Withdraw(staged.registration, staged.replaced, /*plugin_done=*/true);
  changed.notify_all();
}

cni::AgentReply Agent::Impl::Serve(const Result<cni::AgentRequest>& request,
                                   std::optional<Prefetched> prefetched,
                                   const std::optional<Staged>& staged) {
  if (!request) return Refused(request.error().message());
  const cni::AgentOp op = request->op;
  if (op == cni::AgentOp::kAdd && staged && request->registration == staged->registration) {
    // Attached at "stage" (after the same checks); its program may already be in force.
    const auto received = Clock::now();
    std::unique_lock lock(mu);
    cni::AgentReply answer = AnswerWhenInForce(staged->target, lock);
    stats.last_add.add_received = received;
    stats.last_add.answered = Clock::now();
    stats.last_add.program_started = program_times.started;
    stats.last_add.program_compiled = program_times.compiled;
    stats.last_add.program_applied = program_times.applied;
    return answer;
  }
  if (op == cni::AgentOp::kStatus) {
    std::lock_guard lock(mu);
    return {.ok = stats.synced, .error = stats.synced ? "" : "not synced yet"};
  }
  if (!cni::Answered(op)) return Refused(std::string("\"") + std::string(cni::OpName(op)) + "\" out of turn");
  const cni::PodRegistration& reg = *request->registration;  // DecodeRequest checked it is there
  std::unique_lock lock(mu, std::defer_lock);
  if (op == cni::AgentOp::kAdd) {
    if (std::optional<std::string> failed = CatchUp(reg.pod_namespace, prefetched, lock))
      return Refused(*failed);
    state.Attach(reg);
  } else if (op == cni::AgentOp::kDel) {
    lock.lock();
    (void)state.Detach(reg);
  } else {
    lock.lock();  // kCheck
  }
  state.Want();
  changed.notify_all();
  return AnswerWhenInForce(state.wanted(), lock);
}

void Agent::Impl::ServeConnection(CniConnection& connection) {
  const auto next = [&connection]() -> std::optional<Result<cni::AgentRequest>> {
    const std::optional<std::string> line = connection.ReadLine();
    if (!line) return std::nullopt;
    return cni::DecodeRequest(*line);
  };
  const auto is = [](const std::optional<Result<cni::AgentRequest>>& request, cni::AgentOp op) {
    return request && request->ok() && (*request)->op == op;
  };
  std::optional<Result<cni::AgentRequest>> request = next();
  std::optional<Prefetched> prefetched;
  // "prepare" (no answer): read the pod's policies while the plugin wires it.
  if (is(request, cni::AgentOp::kPrepare)) {
    if (api_client != nullptr) prefetched = Prefetch((*request)->pod_namespace);
    request = next();
  }
  // "stage" (no answer): the pod's addresses are known; program its rules
  // while the plugin wires it.
  std::optional<Staged> staged;
  if (is(request, cni::AgentOp::kStage)) {
    staged = Stage(*(*request)->registration, std::move(prefetched));
    prefetched = std::nullopt;
    request = next();
  }
  if (!request) {
    if (staged) Withdraw(*staged);
    return;
  }
  cni::AgentReply answer;
  try {
    answer = Serve(*request, std::move(prefetched), staged);
  } catch (const std::exception& e) {  // nothing expected; the pod must not stay half attached
    if (staged) Withdraw(*staged);
    answer = Refused(std::string("cannot serve the request: ") + e.what());
  }
  (void)connection.Write(cni::EncodeReply(answer) + "\n");
}

}  // namespace netpol::agent
