// The ClusterNetworkPolicy tiers in the compiled form: disjoint decision
// boxes with the first rule's action, Pass compiled away, `networks` for
// every protocol (ICMP too), domainNames noted, never enforced in silence.
// (Engine vs compiled form on random tiered clusters: differential_test.cpp.)
//
//   policy::NodeProgram p = Compile(kObjects, "prod/db");
//   EXPECT_FALSE(p.AllowsIp(peer, db, kIcmp, 0));
#include <gtest/gtest.h>

#include <string>

#include "api/decode.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"

namespace netpol {
namespace {

constexpr uint8_t kIcmp = 1;

const char* const kBase = R"(apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {name: dev, labels: {env: dev}}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {nodeName: n1, containers: [{name: main, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec: {nodeName: n2, containers: [{name: main}]}
status: {podIP: 198.18.2.1}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: dev, labels: {app: other}}
spec: {nodeName: n2, containers: [{name: main}]}
status: {podIP: 198.18.2.2}
)";

policy::Engine Build(const std::string& extra) {
  const api::DecodeResult decoded = api::Decode(std::string(kBase) + "---\n" + extra, "t.yaml", {});
  EXPECT_TRUE(decoded.diagnostics.empty()) << decoded.diagnostics.front().ToString();
  policy::Engine engine;
  for (const api::Object& o : decoded.objects) engine.Apply(o);
  return engine;
}

IpAddress Ip(const char* text) {
  return *IpAddress::Parse(text);
}

const IpAddress kDb = Ip("198.18.1.1");
const IpAddress kClient = Ip("198.18.2.1");
const IpAddress kOther = Ip("198.18.2.2");

TEST(CompileTiersTest, FirstMatchWinsAndBoxesAreDisjoint) {
  const policy::Engine engine = Build(R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {env: prod}}}
  ingress:
  - {name: deny-client-pg, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}], protocols: [{tcp: {destinationPort: {number: 5432}}}]}
  - {name: pass-client, action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}]}
  - {name: accept-all, action: Accept, from: [{namespaces: {}}]}
)");
  const policy::NodeProgram p = policy::CompileNode(engine, {{"prod/db", ""}});
  const policy::DirectionProgram& in = p.pods.at("prod/db").ingress;
  ASSERT_FALSE(in.admin.empty());
  EXPECT_TRUE(in.baseline.empty());
  // Disjoint: no two boxes share a point (same family, overlapping in every dimension).
  const auto& boxes = in.admin.boxes();
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (size_t j = i + 1; j < boxes.size(); ++j) {
      const auto& a = boxes[i];
      const auto& b = boxes[j];
      const bool overlap = !(a.peers.last < b.peers.first) && !(b.peers.last < a.peers.first) &&
                           a.protocol_first <= b.protocol_last && b.protocol_first <= a.protocol_last &&
                           a.port_first <= b.port_last && b.port_first <= a.port_last;
      EXPECT_FALSE(overlap) << i << " and " << j;
    }
  }
  // client on 5432: denied by rule 0; on 80: passed (no box: allowed below).
  const policy::DecisionBox* deny = in.admin.Find(kClient, policy::kIpProtoTcp, 5432);
  ASSERT_NE(deny, nullptr);
  EXPECT_EQ(deny->action, policy::TierAction::kDeny);
  EXPECT_EQ(deny->origin, "admin/a ingress[0] deny-client-pg");
  EXPECT_EQ(in.admin.Find(kClient, policy::kIpProtoTcp, 80), nullptr);
  EXPECT_FALSE(p.Allows(kClient, kDb, api::Protocol::kTCP, 5432));
  EXPECT_TRUE(p.Allows(kClient, kDb, api::Protocol::kTCP, 80));
  // Any other pod: accepted, every protocol.
  const policy::DecisionBox* accept = in.admin.Find(kOther, kIcmp, 0);
  ASSERT_NE(accept, nullptr);
  EXPECT_EQ(accept->action, policy::TierAction::kAccept);
  EXPECT_TRUE(accept->all_ports());
}

TEST(CompileTiersTest, NetworksMatchIcmpAndBaselineOnlyForPodsNetworkPoliciesLeave) {
  const policy::Engine engine = Build(R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: b}
spec:
  tier: Baseline
  priority: 10
  subject: {namespaces: {}}
  egress:
  - {name: no-dev-net, action: Deny, to: [{networks: [198.18.2.0/24]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-egress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 198.18.2.0/24}}]
)");
  const policy::NodeProgram p =
      policy::CompileNode(engine, {{"prod/db", ""}, {"dev/client", ""}, {"dev/other", ""}});
  // dev/client is not isolated for egress: the Baseline denies ICMP too.
  EXPECT_FALSE(p.AllowsIp(kClient, kOther, kIcmp, 0));
  EXPECT_FALSE(p.AllowsIp(kClient, kOther, policy::kIpProtoUdp, 53));
  EXPECT_TRUE(p.AllowsIp(kClient, Ip("198.18.3.3"), kIcmp, 0));
  // prod/db is isolated for egress by a NetworkPolicy: the Baseline never sees it.
  EXPECT_TRUE(p.AllowsIp(kDb, kOther, kIcmp, 0));
  EXPECT_TRUE(p.Allows(kDb, kOther, api::Protocol::kTCP, 80));
  EXPECT_TRUE(p.notes.empty());
}

TEST(CompileTiersTest, NamedPortsResolveOnTheDestination) {
  const policy::Engine engine = Build(R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {env: dev}}}
  egress:
  - {action: Deny, to: [{namespaces: {matchLabels: {env: prod}}}], protocols: [{destinationNamedPort: pg}]}
)");
  const policy::NodeProgram p = policy::CompileNode(engine, {{"dev/client", ""}});
  EXPECT_FALSE(p.Allows(kClient, kDb, api::Protocol::kTCP, 5432));
  EXPECT_TRUE(p.Allows(kClient, kDb, api::Protocol::kTCP, 5433));
  EXPECT_TRUE(p.Allows(kClient, kDb, api::Protocol::kUDP, 5432));
}

TEST(CompileTiersTest, DomainNamesAreNotedNeverDroppedInSilence) {
  const policy::Engine engine = Build(R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {env: dev}}}
  egress:
  - {name: example, action: Accept, to: [{domainNames: [example.com]}]}
  - {name: deny-rest, action: Deny, to: [{networks: [0.0.0.0/0]}]}
)");
  const policy::NodeProgram p = policy::CompileNode(engine, {{"dev/client", ""}});
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0].origin, "admin/a egress[0] example");
  EXPECT_FALSE(p.notes[0].fails_open);
  // The Accept compiles to nothing: the Deny after it decides (fails closed).
  EXPECT_FALSE(p.Allows(kClient, Ip("93.184.215.14"), api::Protocol::kTCP, 443));

  const policy::Engine deny = Build(R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {env: dev}}}
  egress:
  - {name: no-example, action: Deny, to: [{domainNames: [example.com]}]}
)");
  const policy::NodeProgram q = policy::CompileNode(deny, {{"dev/client", ""}});
  ASSERT_EQ(q.notes.size(), 1u);
  EXPECT_TRUE(q.notes[0].fails_open);
  EXPECT_NE(q.notes[0].text.find("NOT enforced"), std::string::npos);
}

}  // namespace
}  // namespace netpol
