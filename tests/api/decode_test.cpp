#include "api/decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace netpol::api {
namespace {

using ::testing::HasSubstr;

DecodeResult DecodeText(const std::string& text, DecodeOptions options = {}) {
  return Decode(text, "in.yaml", options);
}

std::string AllDiagnostics(const DecodeResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.ToString() + "\n";
  return out;
}

TEST(DecodeTest, MultiDocumentYamlWithDefaults) {
  const DecodeResult r = DecodeText(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
spec:
  podSelector:
    matchLabels: {app: db}
  ingress:
  - from:
    - podSelector: {}
      namespaceSelector:
        matchExpressions:
        - {key: team, operator: In, values: [a, b]}
    ports:
    - port: 3306
    - protocol: UDP
      port: dns
    - port: 8000
      endPort: 8080
---
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
)");
  ASSERT_TRUE(r.diagnostics.empty()) << AllDiagnostics(r);
  ASSERT_EQ(r.objects.size(), 2u);
  const auto& policy = std::get<NetworkPolicy>(r.objects[0]);
  EXPECT_EQ(policy.metadata.namespace_, "default");
  EXPECT_EQ(policy.pod_selector.match_labels.at("app"), "db");
  ASSERT_EQ(policy.ingress.size(), 1u);
  const auto& rule = policy.ingress[0];
  ASSERT_EQ(rule.peers.size(), 1u);
  EXPECT_TRUE(rule.peers[0].pod_selector.has_value());
  EXPECT_TRUE(rule.peers[0].pod_selector->empty());
  ASSERT_TRUE(rule.peers[0].namespace_selector.has_value());
  EXPECT_EQ(rule.peers[0].namespace_selector->match_expressions[0].values,
            (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(rule.ports.size(), 3u);
  EXPECT_EQ(rule.ports[0].protocol, Protocol::kTCP);  // defaulted
  EXPECT_EQ(std::get<int32_t>(*rule.ports[0].port), 3306);
  EXPECT_EQ(rule.ports[1].protocol, Protocol::kUDP);
  EXPECT_EQ(std::get<std::string>(*rule.ports[1].port), "dns");
  EXPECT_EQ(*rule.ports[2].end_port, 8080);
  const auto& ns = std::get<Namespace>(r.objects[1]);
  EXPECT_EQ(ns.metadata.name, "shop");
  EXPECT_EQ(ns.metadata.namespace_, "");
}

TEST(DecodeTest, AbsentVersusEmptyPeerSelectors) {
  const DecodeResult r = DecodeText(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {}
    - podSelector: null
      namespaceSelector: {matchLabels: {a: b}}
  - {}
)");
  ASSERT_TRUE(r.diagnostics.empty()) << AllDiagnostics(r);
  const auto& p = std::get<NetworkPolicy>(r.objects[0]);
  ASSERT_EQ(p.ingress.size(), 2u);
  EXPECT_FALSE(p.ingress[0].peers[0].pod_selector.has_value());
  EXPECT_TRUE(p.ingress[0].peers[0].namespace_selector.has_value());
  EXPECT_FALSE(p.ingress[0].peers[1].pod_selector.has_value());  // null is absent
  EXPECT_TRUE(p.ingress[1].peers.empty());
  EXPECT_TRUE(p.ingress[1].ports.empty());
}

TEST(DecodeTest, JsonAndKindList) {
  const DecodeResult r = DecodeText(R"({
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web"}},
     "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
     "status": {"phase": "Running", "podIP": "198.18.0.4", "podIPs": [{"ip": "198.18.0.4"}, {"ip": "2001:2::4"}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
     "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
              "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "c"}]}}}}
  ]
})");
  ASSERT_TRUE(r.diagnostics.empty()) << AllDiagnostics(r);
  ASSERT_EQ(r.objects.size(), 2u);
  const auto& pod = std::get<Pod>(r.objects[0]);
  EXPECT_EQ(pod.metadata.namespace_, "shop");
  EXPECT_EQ(pod.pod_ips, (std::vector<std::string>{"198.18.0.4", "2001:2::4"}));
  EXPECT_EQ(pod.spec.containers[0].ports[0].container_port, 80);
  const auto& deploy = std::get<Workload>(r.objects[1]);
  EXPECT_EQ(deploy.kind, WorkloadKind::kDeployment);
  EXPECT_EQ(deploy.replicas, 3);
  EXPECT_EQ(r.ignored.at("Service"), 1);
}

TEST(DecodeTest, WorkloadKindsAndTheirCounts) {
  const DecodeResult r = DecodeText(R"(apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      parallelism: 2
      template:
        metadata: {labels: {job: nightly}}
        spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata: {labels: {app: legacy}}
    spec: {containers: [{name: c}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {hostNetwork: true, containers: [{name: c}]}
)");
  ASSERT_TRUE(r.diagnostics.empty()) << AllDiagnostics(r);
  ASSERT_EQ(r.objects.size(), 3u);
  const auto& cron = std::get<Workload>(r.objects[0]);
  EXPECT_EQ(cron.kind, WorkloadKind::kCronJob);
  EXPECT_EQ(cron.replicas, 2);
  EXPECT_EQ(cron.pod_template.labels.at("job"), "nightly");
  const auto& rc = std::get<Workload>(r.objects[1]);
  EXPECT_EQ(rc.selector->match_labels.at("app"), "legacy");
  const auto& ds = std::get<Workload>(r.objects[2]);
  EXPECT_EQ(ds.replicas, 1);
  EXPECT_TRUE(ds.pod_template.spec.host_network);
}

TEST(DecodeTest, TypeErrorsNameFieldAndPosition) {
  const DecodeResult r = DecodeText(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  labels:
    version: 1
spec:
  podSelector: {}
  policyTypes: [Ingress, Sideways]
  ingress:
  - ports:
    - protocol: ICMP
      port: [80]
)");
  const std::string all = AllDiagnostics(r);
  EXPECT_THAT(all, HasSubstr("in.yaml:6:14: error: NetworkPolicy default/p: metadata.labels.version: "
                             "Invalid value: 1: expected a string"));
  EXPECT_THAT(all, HasSubstr("in.yaml:9:26: error: NetworkPolicy default/p: spec.policyTypes[1]: "
                             "Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\""));
  EXPECT_THAT(all,
              HasSubstr("in.yaml:12:17: error: NetworkPolicy default/p: spec.ingress[0].ports[0].protocol: "
                        "Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\""));
  EXPECT_THAT(all, HasSubstr("spec.ingress[0].ports[0].port: Invalid value: expected a port number or name"));
}

TEST(DecodeTest, QuotedNumberIsANamedPort) {
  const DecodeResult r = DecodeText(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress: [{ports: [{port: "80"}]}]
)");
  ASSERT_TRUE(r.diagnostics.empty());
  const auto& p = std::get<NetworkPolicy>(r.objects[0]);
  EXPECT_EQ(std::get<std::string>(*p.ingress[0].ports[0].port), "80");
}

TEST(DecodeTest, UnknownFieldsWarnOrFailWhenStrict) {
  const std::string text = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingres: []
)";
  const DecodeResult lax = DecodeText(text);
  ASSERT_EQ(lax.diagnostics.size(), 1u);
  EXPECT_EQ(lax.diagnostics[0].severity, Severity::kWarning);
  EXPECT_EQ(lax.diagnostics[0].ToString(),
            "in.yaml:6:3: warning: NetworkPolicy default/p: unknown field \"spec.ingres\"");
  EXPECT_EQ(lax.objects.size(), 1u);
  DecodeOptions strict;
  strict.strict = true;
  const DecodeResult hard = DecodeText(text, strict);
  ASSERT_EQ(hard.diagnostics.size(), 1u);
  EXPECT_EQ(hard.diagnostics[0].severity, Severity::kError);
}

TEST(DecodeTest, DocumentLevelErrors) {
  EXPECT_THAT(AllDiagnostics(DecodeText("kind: [\n")), HasSubstr("in.yaml:2:1: error: invalid YAML or JSON"));
  EXPECT_THAT(AllDiagnostics(DecodeText("- a\n- b\n")), HasSubstr("expected a Kubernetes object"));
  EXPECT_THAT(AllDiagnostics(DecodeText("apiVersion: v1\nmetadata: {name: x}\n")),
              HasSubstr("Object 'Kind' is missing"));
  EXPECT_THAT(AllDiagnostics(DecodeText("apiVersion: extensions/v1beta1\nkind: NetworkPolicy\n")),
              HasSubstr("no matches for kind \"NetworkPolicy\" in version \"extensions/v1beta1\""));
  EXPECT_THAT(
      AllDiagnostics(DecodeText("apiVersion: v1\nkind: Pod\nmetadata: {name: a, name: b}\n")),
      HasSubstr("in.yaml:3:21: error: Pod default/a: metadata.name: key \"name\" already set in map"));
  EXPECT_TRUE(DecodeText("").diagnostics.empty());
  EXPECT_TRUE(DecodeText("---\n---\n").objects.empty());
}

TEST(DecodeTest, NamespaceOptionAppliesToObjectsWithoutOne) {
  DecodeOptions options;
  options.default_namespace = "team-a";
  const DecodeResult r = DecodeText(R"(apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: other}
spec: {containers: [{name: c}]}
)",
                                    options);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(MetaOf(r.objects[0]).namespace_, "team-a");
  EXPECT_EQ(MetaOf(r.objects[1]).namespace_, "other");
}

}  // namespace
}  // namespace netpol::api
