// Engine API behaviour: explanations, incremental updates, classes, lookups.
// Semantics per rule are pinned by tests/scenarios/*.scenario.
#include "policy/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/load.h"
#include "policy/flow_text.h"

namespace netpol::policy {
namespace {

std::vector<api::Object> Objects(const std::string& yaml) {
  const api::LoadResult r = api::LoadText(yaml, "test.yaml", {});
  for (const auto& d : r.diagnostics) ADD_FAILURE() << d.ToString();
  return r.objects;
}

void ApplyAll(Engine& engine, const std::string& yaml) {
  for (const auto& o : Objects(yaml)) engine.Apply(o);
}

std::string PodYaml(const std::string& name, const std::string& ns, const std::string& labels,
                    const std::string& ip, const std::string& extra_spec = "",
                    const std::string& node = "n1") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: " + ns + ", labels: {" +
         labels + "}}\nspec: {nodeName: " + node + ", " + extra_spec +
         "containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\nstatus: {podIP: " + ip +
         "}\n---\n";
}

Flow PodFlow(const Engine& e, const std::string& from, const std::string& to, uint16_t port,
             api::Protocol proto = api::Protocol::kTCP) {
  return MakeFlow(e, *ParseEndpoint(e, from, "default"), *ParseEndpoint(e, to, "default"), proto, port);
}

const char* kTwoPolicies = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-allow, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{ipBlock: {cidr: 198.51.100.0/24}}]
  - from:
    - podSelector: {matchLabels: {app: x}}
    - podSelector: {matchLabels: {app: web}}
    ports: [{port: 9}, {port: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
)";

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApplyAll(engine_, PodYaml("web", "shop", "app: web", "198.18.0.1") +
                          PodYaml("db", "shop", "app: db", "198.18.0.2") +
                          PodYaml("other", "misc", "app: web", "198.18.0.3") + kTwoPolicies);
  }
  Engine engine_;
};

TEST_F(EngineTest, ExplanationNamesPolicyRulePeerAndPort) {
  const Verdict v = engine_.Evaluate(PodFlow(engine_, "shop/web", "shop/db", 8080));
  EXPECT_FALSE(v.allowed);  // web is egress-isolated by a-deny
  EXPECT_EQ(v.egress.reason, Reason::kNoRuleMatched);
  EXPECT_THAT(v.egress.isolating, ::testing::ElementsAre(*engine_.FindPolicy("shop", "a-deny")));
  EXPECT_EQ(v.ingress.reason, Reason::kAllowedByRule);
  ASSERT_TRUE(v.ingress.allowed_by.has_value());
  EXPECT_EQ(v.ingress.allowed_by->policy, *engine_.FindPolicy("shop", "b-allow"));
  EXPECT_EQ(v.ingress.allowed_by->rule, 1);
  EXPECT_EQ(v.ingress.allowed_by->peer, 1);
  EXPECT_EQ(v.ingress.allowed_by->port, 1);  // the named port http = 8080
  // Isolating policies are listed by name.
  EXPECT_THAT(v.ingress.isolating, ::testing::ElementsAre(*engine_.FindPolicy("shop", "a-deny"),
                                                          *engine_.FindPolicy("shop", "b-allow")));
}

TEST_F(EngineTest, AllowedAgreesWithEvaluateAndExternalEndpoints) {
  const Flow from_world{Endpoint::OfIp(*IpAddress::Parse("198.51.100.9")),
                        Endpoint::OfPod(*engine_.FindPod("shop", "db")), api::Protocol::kUDP, 5353};
  const Verdict v = engine_.Evaluate(from_world);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.egress.reason, Reason::kNotPolicyManaged);
  EXPECT_EQ(v.ingress.allowed_by->rule, 0);
  EXPECT_EQ(v.ingress.allowed_by->port, -1);
  EXPECT_TRUE(engine_.Allowed(from_world));
  const Flow from_elsewhere{Endpoint::OfIp(*IpAddress::Parse("203.0.113.1")), from_world.dst,
                            api::Protocol::kTCP, 9};
  EXPECT_FALSE(engine_.Allowed(from_elsewhere));
  // A pod's own address identifies it.
  EXPECT_EQ(ParseEndpoint(engine_, "198.18.0.3", "x")->pod, *engine_.FindPod("misc", "other"));
}

TEST_F(EngineTest, LabelChangeMovesPodBetweenSelections) {
  const PolicyId allow = *engine_.FindPolicy("shop", "b-allow");
  EXPECT_EQ(engine_.SelectedPods(allow).size(), 1u);
  ApplyAll(engine_, PodYaml("web", "shop", "app: db", "198.18.0.1"));
  EXPECT_EQ(engine_.SelectedPods(allow).size(), 2u);
  EXPECT_TRUE(engine_.PeerPods(allow, Direction::kIngress, 1, 1).empty());
  ApplyAll(engine_, PodYaml("web", "shop", "app: web", "198.18.0.1"));
  EXPECT_EQ(engine_.SelectedPods(allow).size(), 1u);
  EXPECT_EQ(engine_.PeerPods(allow, Direction::kIngress, 1, 1).size(), 1u);
}

TEST_F(EngineTest, PodsSharingNamespaceLabelsAndPortsShareAClass) {
  const size_t classes = engine_.stats().classes;
  ApplyAll(engine_, PodYaml("web2", "shop", "app: web", "198.18.0.4") +
                        PodYaml("web3", "shop", "app: web", "198.18.0.5"));
  EXPECT_EQ(engine_.stats().classes, classes);
  EXPECT_EQ(engine_.stats().pods, 5u);
  ApplyAll(engine_, PodYaml("web4", "shop", "app: web, v: '2'", "198.18.0.6"));
  EXPECT_EQ(engine_.stats().classes, classes + 1);
  EXPECT_TRUE(engine_.Delete("Pod", "shop", "web4"));
  EXPECT_EQ(engine_.stats().classes, classes);
  EXPECT_FALSE(engine_.Delete("Pod", "shop", "web4"));
}

TEST_F(EngineTest, DeletingANamespaceDeletesItsContent) {
  ApplyAll(engine_, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n");
  EXPECT_TRUE(engine_.Delete("Namespace", "shop", "shop"));
  EXPECT_FALSE(engine_.FindPod("shop", "web").has_value());
  EXPECT_FALSE(engine_.FindPolicy("shop", "a-deny").has_value());
  EXPECT_EQ(engine_.stats().pods, 1u);
  EXPECT_EQ(engine_.stats().policies, 0u);
  // Never declared: nothing to delete.
  EXPECT_FALSE(engine_.Delete("Namespace", "", "misc"));
}

TEST(EngineWorkloadTest, WorkloadsExpandToNumberedPodsAndScale) {
  Engine engine;
  ApplyAll(engine, R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
)");
  ASSERT_TRUE(engine.FindPod("shop", "api-2").has_value());
  EXPECT_FALSE(engine.FindPod("shop", "api-3").has_value());
  const Pod& pod = engine.pod(*engine.FindPod("shop", "api-0"));
  EXPECT_EQ(pod.owner, "Deployment shop/api");
  EXPECT_TRUE(pod.ips.empty());
  EXPECT_EQ(pod.ports.at(0).container_port, 80);
  ApplyAll(engine, R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c}]}
)");
  EXPECT_EQ(engine.stats().pods, 1u);
  EXPECT_TRUE(engine.Delete("Deployment", "shop", "api"));
  EXPECT_EQ(engine.stats().pods, 0u);
  EXPECT_EQ(engine.stats().classes, 0u);
}

TEST(EngineNamespaceTest, NamespaceLabelsAreMatchedAndUpdated) {
  Engine engine;
  ApplyAll(engine,
           PodYaml("a", "one", "app: a", "198.18.0.1") + PodYaml("b", "two", "app: b", "198.18.0.2") + R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-red, namespace: two}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}}]}]
)");
  const Flow flow = PodFlow(engine, "one/a", "two/b", 80);
  EXPECT_FALSE(engine.Allowed(flow));
  ApplyAll(engine, "apiVersion: v1\nkind: Namespace\nmetadata: {name: one, labels: {team: red}}\n");
  EXPECT_TRUE(engine.Allowed(flow));
  const auto ns = engine.Namespaces();
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[0].second.at("kubernetes.io/metadata.name"), "one");
  EXPECT_EQ(ns[0].second.at("team"), "red");
  ApplyAll(engine, "apiVersion: v1\nkind: Namespace\nmetadata: {name: one, labels: {team: blue}}\n");
  EXPECT_FALSE(engine.Allowed(flow));
}

// A new class is matched only against the policies of its namespace and those
// selecting its namespace (NamespaceRec::policies, selected_by): each pod
// below makes a new class after the change that decides whether it matches.
TEST(EngineNamespaceTest, NewClassesMeetThePoliciesThatSelectTheirNamespace) {
  Engine engine;
  const std::string policy = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in, namespace: two}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: red}}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: three}}
    - podSelector: {matchLabels: {app: near}}
)";
  ApplyAll(engine, PodYaml("b", "two", "app: b", "198.18.0.2") + policy + "---\n" +
                       "apiVersion: v1\nkind: Namespace\nmetadata: {name: one, labels: {team: red}}\n");
  // Namespace one was labelled after the policy came; three is first named by a pod.
  ApplyAll(engine, PodYaml("a", "one", "app: a", "198.18.0.1") +
                       PodYaml("c", "three", "app: c", "198.18.0.3") +
                       PodYaml("near", "two", "app: near", "198.18.0.4") +
                       PodYaml("far", "four", "app: near", "198.18.0.5"));
  EXPECT_TRUE(engine.Allowed(PodFlow(engine, "one/a", "two/b", 80)));
  EXPECT_TRUE(engine.Allowed(PodFlow(engine, "three/c", "two/b", 80)));
  EXPECT_TRUE(engine.Allowed(PodFlow(engine, "two/near", "two/b", 80)));
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "four/far", "two/b", 80)));
  // Relabelled: a new class in one no longer matches, one in four now does.
  ApplyAll(engine,
           "apiVersion: v1\nkind: Namespace\nmetadata: {name: one, labels: {team: blue}}\n---\n"
           "apiVersion: v1\nkind: Namespace\nmetadata: {name: four, labels: {team: red}}\n");
  ApplyAll(engine,
           PodYaml("a2", "one", "app: a2", "198.18.0.6") + PodYaml("far2", "four", "app: x", "198.18.0.7"));
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "one/a2", "two/b", 80)));
  EXPECT_TRUE(engine.Allowed(PodFlow(engine, "four/far2", "two/b", 80)));
  // Deleted: new classes anywhere are matched by nothing (the pod b is open again).
  ASSERT_TRUE(engine.Delete("NetworkPolicy", "two", "in"));
  ApplyAll(engine, R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: two}
spec:
  podSelector: {matchLabels: {app: b}}
)");
  ApplyAll(engine, PodYaml("far3", "four", "app: other", "198.18.0.8") +
                       PodYaml("near2", "two", "app: near", "198.18.0.9"));
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "four/far3", "two/b", 80)));
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "two/near2", "two/b", 80)));
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "four/far2", "two/b", 80)));
}

TEST(EngineNodeTest, HostNetworkPodsAreTheirNode) {
  Engine engine;
  ApplyAll(
      engine,
      PodYaml("agent", "kube-system", "app: agent", "198.19.0.1", "hostNetwork: true, ") +
          PodYaml("agent2", "kube-system", "app: agent", "198.19.0.2", "hostNetwork: true, ", "n2") +
          PodYaml("db", "shop", "app: db", "198.18.0.2") +
          "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\n"
          "spec: {podSelector: {}}\n");
  // Same node: always allowed. Another node's hostNetwork pod: judged by ipBlock only.
  EXPECT_EQ(engine.Evaluate(PodFlow(engine, "kube-system/agent", "shop/db", 5432)).ingress.reason,
            Reason::kOwnNode);
  EXPECT_FALSE(engine.Allowed(PodFlow(engine, "kube-system/agent2", "shop/db", 5432)));
  // The exception is for ingress: db's egress to its own node's hostNetwork pod is judged
  // by db's egress policy (none here, so allowed).
  EXPECT_TRUE(engine.Allowed(PodFlow(engine, "shop/db", "kube-system/agent", 5432)));
}

}  // namespace
}  // namespace netpol::policy
