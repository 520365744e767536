// What /metrics says, from a snapshot and the dataplane's per-pod counters:
// counted addresses become connections per namespace of the pod they are.
#include "agent/agent_metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "api/load.h"

namespace netpol::agent {
namespace {

IpAddress Ip(const std::string& text) {
  return *IpAddress::Parse(text);
}

policy::Engine TwoNamespaces() {
  const api::LoadResult loaded = api::LoadText(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.5.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: data}
spec: {containers: [{name: c}]}
status: {podIPs: [{ip: 198.18.5.2}, {ip: "2001:2::2"}]}
)",
                                               "pods.yaml", {});
  EXPECT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const api::Object& object : loaded.objects) engine.Apply(object);
  return engine;
}

TEST(AgentMetricsTest, CountersBecomeConnectionsPerNamespace) {
  using dataplane::ConnectionCount;
  using dataplane::Decider;
  const policy::Engine engine = TwoNamespaces();
  const std::vector<ConnectionCount> counted = {
      {Ip("198.18.5.1"), policy::Direction::kIngress, Decider::kNetworkPolicy, false, 3},
      {Ip("198.18.5.2"), policy::Direction::kIngress, Decider::kNetworkPolicy, false, 4},
      {Ip("2001:2::2"), policy::Direction::kIngress, Decider::kNetworkPolicy, false, 5},  // the same pod
      {Ip("198.18.5.2"), policy::Direction::kEgress, Decider::kNetworkPolicy, true, 6},
      {Ip("198.18.5.9"), policy::Direction::kEgress, Decider::kNetworkPolicy, false, 1},  // gone since
      {Ip("198.18.5.1"), policy::Direction::kIngress, Decider::kAdminTier, false, 7},
      {Ip("198.18.5.1"), policy::Direction::kIngress, Decider::kAdminTier, true, 8},
      {std::nullopt, policy::Direction::kEgress, Decider::kBaselineTier, false, 2},
  };
  Histogram h({0.001});
  h.Observe(0.0005);
  const std::string text = RenderMetrics(
      {.ready = true, .local_pods = 2, .program_seconds = &h, .update_seconds = &h}, counted, engine);
  for (const char* want : {
           "netpol_agent_ready 1\n",
           "netpol_agent_local_pods 2\n",
           "netpol_agent_known_pods 2\n",
           "netpol_denied_connections_total{namespace=\"shop\",direction=\"ingress\"} 3\n",
           "netpol_denied_connections_total{namespace=\"data\",direction=\"ingress\"} 9\n",
           "netpol_denied_connections_total{namespace=\"unknown\",direction=\"egress\"} 1\n",
           "netpol_allowed_connections_total{namespace=\"data\",direction=\"egress\"} 6\n",
           "netpol_cluster_policy_connections_total{namespace=\"shop\",direction=\"ingress\",tier=\"admin\","
           "verdict=\"denied\"} 7\n",
           "netpol_cluster_policy_connections_total{namespace=\"shop\",direction=\"ingress\",tier=\"admin\","
           "verdict=\"allowed\"} 8\n",
           "netpol_cluster_policy_connections_total{namespace=\"unknown\",direction=\"egress\",tier="
           "\"baseline\","
           "verdict=\"denied\"} 2\n",
           "netpol_agent_update_latency_seconds_count 1\n",
       }) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing " << want << "in\n" << text;
  }
  EXPECT_EQ(text.find("netpol_agent_cni_connections"), std::string::npos) << "no CNI socket, no CNI metrics";
}

}  // namespace
}  // namespace netpol::agent
