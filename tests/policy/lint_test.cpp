#include "policy/lint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/load.h"

namespace netpol::policy {
namespace {

std::vector<std::string> LintOf(const std::string& yaml) {
  const api::LoadResult r = api::LoadText(yaml, "t.yaml", {});
  for (const auto& d : r.diagnostics) ADD_FAILURE() << d.ToString();
  Engine engine;
  for (const auto& o : r.objects) engine.Apply(o);
  std::vector<std::string> out;
  for (const Finding& f : Lint(engine)) out.push_back(f.check + " " + f.policy + " " + f.field);
  return out;
}

const std::string kPods = R"(apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 198.18.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.0.2}
---
)";

TEST(LintTest, CleanPoliciesHaveNoFindings) {
  EXPECT_THAT(LintOf(kPods + R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: http}]}]
  egress:
  - ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
)"),
              ::testing::IsEmpty());
}

TEST(LintTest, DnsOnlyOverUdpIsFlaggedForTcp) {
  EXPECT_THAT(LintOf(kPods + R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  egress: [{ports: [{port: 53, protocol: UDP}]}]
)"),
              ::testing::ElementsAre("egress-blocks-dns default/p spec.policyTypes"));
}

// Issue 15 item 8: judged with the engine, not by the ports alone.
const std::string kDnsPod = R"(apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.0.53}
---
)";

TEST(LintTest, EgressToItsOwnNamespaceOnlyBlocksDns) {
  const std::string policies = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {}}]}]
)";
  EXPECT_THAT(LintOf(kPods + kDnsPod + policies),
              ::testing::ElementsAre("egress-blocks-dns default/p spec.policyTypes"));
  // Without DNS pods: no rule reaches kube-system or an IP address.
  EXPECT_THAT(LintOf(kPods + policies),
              ::testing::ElementsAre("egress-blocks-dns default/p spec.policyTypes"));
}

TEST(LintTest, DnsPodsThatDenyIngressBlockDns) {
  EXPECT_THAT(LintOf(kPods + kDnsPod + R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: dns-closed, namespace: kube-system}
spec:
  podSelector: {}
)"),
              ::testing::ElementsAre("egress-blocks-dns default/p spec.policyTypes"));
}

TEST(LintTest, DnsToTheDnsPodsOrToKubeSystemIsEnough) {
  const std::string policies = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
)";
  EXPECT_THAT(LintOf(kPods + kDnsPod + policies), ::testing::IsEmpty());
  // Without DNS pods (kube-system has none here): a rule to kube-system is enough.
  EXPECT_THAT(
      LintOf(kPods + "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n---\n" + policies),
      ::testing::ElementsAre("peer-matches-nothing default/p spec.egress[0].to[0]"));
}

TEST(LintTest, OfTwoIdenticalRulesTheLaterIsShadowed) {
  const std::string policy = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: NAME}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: 80}]}]
---
)";
  std::string first = policy;
  first.replace(first.find("NAME"), 4, "first");
  std::string second = policy;
  second.replace(second.find("NAME"), 4, "second");
  EXPECT_THAT(LintOf(kPods + first + second),
              ::testing::ElementsAre("rule-shadowed default/second spec.ingress[0]"));
}

TEST(LintTest, PortRangesAndBlocksCover) {
  EXPECT_THAT(LintOf(kPods + R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress:
  - from: [{ipBlock: {cidr: 203.0.113.0/24}}]
    ports: [{port: 8000, endPort: 9000}]
  - from: [{ipBlock: {cidr: 203.0.113.128/25}}]
    ports: [{port: 8080}]
  - from: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.0/26]}}]
    ports: [{port: 7000, endPort: 9000}]
)"),
              ::testing::ElementsAre("rule-shadowed default/p spec.ingress[1]"));
}

}  // namespace
}  // namespace netpol::policy
