#include "agent/agent_metrics.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

namespace netpol::agent {
namespace {

const char* DirectionName(policy::Direction d) {
  return d == policy::Direction::kIngress ? "ingress" : "egress";
}

std::string NamespaceOf(const policy::Engine& engine, const std::optional<IpAddress>& ip) {
  if (ip) {
    if (const auto pod = engine.FindPodByIp(*ip)) return engine.pod(*pod).namespace_;
  }
  return "unknown";
}

MetricsWriter::Sample One(double value) {
  return {{}, value};
}

}  // namespace

std::string RenderMetrics(const AgentMetrics& a, const std::vector<dataplane::ConnectionCount>& counted,
                          const policy::Engine& engine) {
  MetricsWriter out;
  const policy::EngineStats known = engine.stats();
  out.Gauge("netpol_agent_ready", "1 once the first full sync is in force on the node.",
            {One(a.ready ? 1.0 : 0.0)});
  out.Gauge("netpol_agent_known_pods", "Pods the agent knows (the whole cluster).",
            {One(static_cast<double>(known.pods))});
  out.Gauge("netpol_agent_known_policies", "NetworkPolicies the agent knows.",
            {One(static_cast<double>(known.policies))});
  out.Gauge("netpol_agent_known_namespaces", "Namespaces the agent knows.",
            {One(static_cast<double>(known.namespaces))});
  out.Gauge("netpol_agent_local_pods", "Pods attached on this node (CNI registrations).",
            {One(static_cast<double>(a.local_pods))});
  out.Gauge("netpol_agent_reserved_pods",
            "Pods scheduled to this node whose addresses the agent reserved, programmed ahead of their ADD.",
            {One(static_cast<double>(a.reserved_pods))});
  out.Gauge("netpol_agent_nft_set_elements", "nftables set elements installed for this node's pods.",
            {One(static_cast<double>(a.installed_elements))});
  out.Counter("netpol_agent_programs_total", "Dataplane updates committed.",
              {One(static_cast<double>(a.programs))});
  out.Counter("netpol_agent_program_failures_total",
              "Dataplane updates that failed (the previous rules stayed in force; retried).",
              {One(static_cast<double>(a.failures))});
  out.Counter("netpol_agent_dataplane_repairs_total",
              "Changes someone else made to the agent's rules (a table, chain, rule or element deleted or "
              "added), found and undone.",
              {One(static_cast<double>(a.repairs))});
  if (a.cni) {
    out.Gauge("netpol_agent_cni_connections", "CNI plugin connections being served.",
              {One(static_cast<double>(a.cni->open))});
    out.Counter("netpol_agent_cni_connections_total", "CNI plugin connections accepted.",
                {One(static_cast<double>(a.cni->connections))});
    out.Counter("netpol_agent_cni_timeouts_total",
                "CNI plugin connections closed because a request did not come whole within the deadline.",
                {One(static_cast<double>(a.cni->timeouts))});
  }
  std::vector<MetricsWriter::Sample> events;
  std::vector<MetricsWriter::Sample> restarts;
  for (const AgentMetrics::Watch& w : a.watches) {
    events.push_back({{{"kind", w.kind}}, static_cast<double>(w.events)});
    // The first list and watch are the start, not restarts.
    restarts.push_back({{{"kind", w.kind}, {"what", "list"}}, static_cast<double>(std::max(w.lists - 1, 0))});
    restarts.push_back(
        {{{"kind", w.kind}, {"what", "watch"}}, static_cast<double>(std::max(w.watches - 1, 0))});
  }
  out.Counter("netpol_agent_watch_events_total", "Objects applied from lists and watch events, by kind.",
              events);
  out.Counter("netpol_agent_watch_restarts_total",
              "Lists and watches started again after the first (410 Gone, errors, stalls), by kind.",
              restarts);
  out.Counter("netpol_flow_log_lines_total", "Flow log lines written (logged connections, attributed).",
              {One(static_cast<double>(a.flow_lines))});
  out.Counter("netpol_flow_log_suppressed_total", "Logged connections the flow log's rate limit left out.",
              {One(static_cast<double>(a.flows_suppressed))});
  if (a.program_seconds != nullptr) {
    out.Histogram("netpol_agent_program_duration_seconds",
                  "Time to compile the node's program and update the dataplane, per update.",
                  *a.program_seconds);
  }
  if (a.update_seconds != nullptr) {
    out.Histogram(
        "netpol_agent_update_latency_seconds",
        "From a change reaching the agent (watch event or CNI request) until its rules are in force.",
        *a.update_seconds);
  }
  // New connections denied, and allowed by a rule, from the per-pod counters
  // of the isolated pods' addresses.
  for (const auto& [allowed, help] :
       {std::pair{false,
                  "New connections dropped by policy at this node's pods, by the pod's namespace and "
                  "the direction that denied (from per-pod counters: a pod that goes takes its "
                  "count with it)."},
        std::pair{true,
                  "New connections a policy rule allowed at this node's policy-isolated pods, by the "
                  "pod's namespace and direction (pods not isolated in a direction are not "
                  "counted: no policy decides for them)."}}) {
    std::map<std::pair<std::string, std::string>, double> sums;  // (namespace, direction) -> connections
    for (const dataplane::ConnectionCount& c : counted) {
      if (c.decider != dataplane::Decider::kNetworkPolicy || c.allowed != allowed) continue;
      sums[{NamespaceOf(engine, c.pod), DirectionName(c.direction)}] += static_cast<double>(c.connections);
    }
    std::vector<MetricsWriter::Sample> samples;
    samples.reserve(sums.size());
    for (const auto& [key, n] : sums)
      samples.push_back({{{"namespace", key.first}, {"direction", key.second}}, n});
    out.Counter(std::string("netpol_") + (allowed ? "allowed" : "denied") + "_connections_total", help,
                samples);
  }
  // (namespace, direction, tier, verdict) -> connections
  std::map<std::tuple<std::string, std::string, std::string, std::string>, double> tiers;
  for (const dataplane::ConnectionCount& c : counted) {
    if (c.decider == dataplane::Decider::kNetworkPolicy) continue;
    tiers[{NamespaceOf(engine, c.pod), DirectionName(c.direction),
           c.decider == dataplane::Decider::kAdminTier ? "admin" : "baseline",
           c.allowed ? "allowed" : "denied"}] += static_cast<double>(c.connections);
  }
  std::vector<MetricsWriter::Sample> samples;
  samples.reserve(tiers.size());
  for (const auto& [key, n] : tiers) {
    samples.push_back({{{"namespace", std::get<0>(key)},
                        {"direction", std::get<1>(key)},
                        {"tier", std::get<2>(key)},
                        {"verdict", std::get<3>(key)}},
                       n});
  }
  out.Counter("netpol_cluster_policy_connections_total",
              "New connections a ClusterNetworkPolicy tier decided at this node's pods, by the pod's "
              "namespace, direction, tier and verdict (from the decision maps' per-element counters; "
              "`netpol enforce --show` names each element's rule).",
              samples);
  return out.text();
}

}  // namespace netpol::agent
