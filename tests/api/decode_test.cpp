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

// Plain scalars mean what they mean to the API server: kubectl turns YAML into
// JSON with sigs.k8s.io/yaml, whose go-yaml v2 resolves them with YAML 1.1 rules
// (goyaml.v2/resolve.go; docs/SEMANTICS.md §18). Each row: the text of `port:`
// and what the server stores (a number, a named port, or a rejection).
TEST(DecodeTest, PlainScalarsResolveAsTheApiServerReadsThem) {
  struct Row {
    const char* text;
    std::optional<int32_t> number;  // stored as this number
    const char* name;               // else stored as this named port (nullptr: rejected)
  };
  const Row rows[] = {
      {"80", 80, nullptr},
      {"0120", 80, nullptr},       // a leading 0: octal
      {"0o120", 80, nullptr},      // Go's ParseInt(s, 0, 64) takes 0o too
      {"0O120", 80, nullptr},      //
      {"080", 80, nullptr},        // not octal, so a float: 80
      {"+80", 80, nullptr},        //
      {"0x50", 80, nullptr},       //
      {"0X50", 80, nullptr},       //
      {"0b1010000", 80, nullptr},  //
      {"8_0", 80, nullptr},        // '_' removed first
      {"0x_50", 80, nullptr},      //
      {"8e1", 80, nullptr},        // floats reach JSON as Go writes them: 80
      {"80.0", 80, nullptr},       //
      {".8e2", 80, nullptr},       //
      {"-0b1", -1, nullptr},       // (validation rejects it later)
      {"80.5", std::nullopt, nullptr},
      {"99999999999", std::nullopt, nullptr},
      {"0xFFFFFFFFFFFFFFFFFF", std::nullopt, nullptr},  // a big integer: still a number
      {"yes", std::nullopt, nullptr},                   // a boolean
      {".inf", std::nullopt, nullptr},                  //
      {"0x", std::nullopt, "0x"},                       // strings: named ports
      {"0b", std::nullopt, "0b"},
      {"_80", std::nullopt, "_80"},
      {"1e400", std::nullopt, "1e400"},  // ParseFloat's range error: a string
      {"2001-12-14", std::nullopt, "2001-12-14"},
      {"0o", std::nullopt, "0o"},
      {"http", std::nullopt, "http"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.text);
    const DecodeResult r = DecodeText(std::string("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                                  "metadata: {name: p}\nspec:\n  podSelector: {}\n"
                                                  "  ingress: [{ports: [{port: ") +
                                      row.text + "}]}]\n");
    if (!row.number && row.name == nullptr) {
      EXPECT_THAT(AllDiagnostics(r), HasSubstr("spec.ingress[0].ports[0].port: Invalid value: "));
      continue;
    }
    ASSERT_TRUE(r.diagnostics.empty()) << AllDiagnostics(r);
    const auto& port = *std::get<NetworkPolicy>(r.objects[0]).ingress[0].ports[0].port;
    if (row.number) {
      ASSERT_TRUE(std::holds_alternative<int32_t>(port));
      EXPECT_EQ(std::get<int32_t>(port), *row.number);
    } else {
      ASSERT_TRUE(std::holds_alternative<std::string>(port));
      EXPECT_EQ(std::get<std::string>(port), row.name);
    }
  }
  // The same numbers are not strings where a string is wanted, and YAML 1.1
  // booleans are booleans.
  const DecodeResult pod = DecodeText(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {a: 0o12, b: 0x, c: 1_0}}\n"
      "spec: {hostNetwork: yes, containers: [{name: c, ports: [{containerPort: 0120}]}]}\n");
  const std::string all = AllDiagnostics(pod);
  EXPECT_THAT(all, HasSubstr("metadata.labels.a: Invalid value: 0o12: expected a string"));
  EXPECT_THAT(all, HasSubstr("metadata.labels.c: Invalid value: 1_0: expected a string"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("metadata.labels.b")));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("hostNetwork")));
  ASSERT_EQ(pod.objects.size(), 1u);
  EXPECT_TRUE(std::get<Pod>(pod.objects[0]).spec.host_network);
  EXPECT_EQ(std::get<Pod>(pod.objects[0]).spec.containers[0].ports[0].container_port, 80);
}

// Size is not a limit: `kubectl get pods -A -o json` of a large cluster is
// millions of nodes (here 10,000 pods, 2.2 million). Alias expansion is, over
// the whole input, and its error names the limit and what to do.
TEST(DecodeTest, LargeListsAreReadAliasBombsAreNot) {
  std::string list = R"({"apiVersion": "v1", "kind": "List", "items": [)";
  std::string annotations;
  for (int i = 0; i < 105; ++i) annotations += (i ? ",\"a" : "\"a") + std::to_string(i) + "\":\"\"";
  constexpr int kPods = 10'000;
  for (int i = 0; i < kPods; ++i) {
    list += (i ? "," : "") + std::string(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p)") +
            std::to_string(i) + R"(","namespace":"n","labels":{"app":"a"},"annotations":{)" + annotations +
            R"(}},"spec":{"containers":[{"name":"c"}]},"status":{"podIP":"10.0.)" + std::to_string(i / 250) +
            "." + std::to_string(i % 250) + "\"}}";
  }
  list += "]}";
  const DecodeResult big = DecodeText(list);
  ASSERT_TRUE(big.diagnostics.empty()) << AllDiagnostics(big).substr(0, 500);
  EXPECT_EQ(big.objects.size(), static_cast<size_t>(kPods));

  // Aliases within the limit read as their anchors.
  const DecodeResult aliased = DecodeText(
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, labels: &l {app: web}}\n"
      "spec: {podSelector: {matchLabels: *l}}\n");
  ASSERT_TRUE(aliased.diagnostics.empty()) << AllDiagnostics(aliased);
  EXPECT_EQ(std::get<NetworkPolicy>(aliased.objects[0]).pod_selector.match_labels.at("app"), "web");
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + static_cast<char>(level - 1);
    bomb += "]\n";
  }
  EXPECT_THAT(
      AllDiagnostics(DecodeText(bomb)),
      HasSubstr(
          "in.yaml:7:8: error: invalid YAML or JSON: aliases expand to more than 2000000 nodes (netpol's "
          "limit against alias bombs); write the aliased parts out in full"));
  // Over the whole input, not per document: three documents of a million each.
  std::string per_doc = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'e'; ++level) {
    per_doc += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) per_doc += std::string(i ? ", *" : "*") + static_cast<char>(level - 1);
    per_doc += "]\n";
  }
  per_doc += "f: [*e, *e, *e, *e, *e, *e, *e, *e]\n";
  EXPECT_THAT(AllDiagnostics(DecodeText(per_doc)), ::testing::Not(HasSubstr("aliases expand")));
  EXPECT_THAT(AllDiagnostics(DecodeText(per_doc + "---\n" + per_doc + "---\n" + per_doc)),
              HasSubstr("aliases expand to more than 2000000 nodes"));
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

// A key given twice is an error at every level, in JSON (a YAML flow mapping
// to the parser) as in YAML: the object's own keys were not checked, so the
// second `spec` of a JSON manifest went unreported (and the first was used).
TEST(DecodeTest, AKeyGivenTwiceIsAnErrorAtEveryLevel) {
  const std::string pod = R"("apiVersion":"v1","kind":"Pod","metadata":{"name":"a"})";
  EXPECT_THAT(AllDiagnostics(DecodeText("{" + pod + R"(,"spec":{},"spec":{"containers":[{"name":"c"}]}})")),
              HasSubstr("in.yaml:1:67: error: Pod default/a: spec: key \"spec\" already set in map"));
  EXPECT_THAT(
      AllDiagnostics(DecodeText("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {}\nspec: {}\n")),
      HasSubstr("in.yaml:5:1: error: Pod default/a: spec: key \"spec\" already set in map"));
  EXPECT_THAT(
      AllDiagnostics(DecodeText(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"}})")),
      HasSubstr("in.yaml:1:56: error: Pod default/a: metadata.name: key \"name\" already set in map"));
  // Each item of a List is an object of its own; the List's own keys too.
  EXPECT_THAT(AllDiagnostics(DecodeText(R"({"apiVersion":"v1","kind":"List","items":[{)" + pod +
                                        R"(,"metadata":{"name":"b"}}]})")),
              HasSubstr("in.yaml:1:99: error: Pod default/a: metadata: key \"metadata\" already set in map"));
  EXPECT_THAT(
      AllDiagnostics(DecodeText(R"({"apiVersion":"v1","kind":"List","items":[],"items":[{)" + pod + "}]}")),
      HasSubstr("in.yaml:1:45: error: items: key \"items\" already set in map"));
  const DecodeResult once = DecodeText("{" + pod + R"(,"spec":{"containers":[{"name":"c"}]}})");
  EXPECT_TRUE(once.diagnostics.empty()) << AllDiagnostics(once);
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

namespace netpol::api {
namespace {

// Field positions are kept in the order they were recorded (sorting half a
// million paths per 10k pods bought nothing: they are read only when
// validation finds a problem): the first position of a path stands, a path
// is found wherever it was added, and two sets are equal in any order.
TEST(FieldPositionsTest, FirstPositionStandsInAnyOrder) {
  FieldPositions a;
  a.Add("spec.podSelector", 3, 5);
  a.Add("metadata.name", 2, 9);
  a.Add("spec", 3, 1);
  a.Add("metadata.name", 7, 7);  // again: the first stands
  a.Seal();
  EXPECT_EQ(a.Find("metadata.name"), (std::pair<int, int>{2, 9}));
  EXPECT_EQ(a.Find("spec"), (std::pair<int, int>{3, 1}));
  EXPECT_EQ(a.Find("spec.podSelector"), (std::pair<int, int>{3, 5}));
  EXPECT_EQ(a.Find("spec.pod"), std::nullopt);
  FieldPositions b;
  b.Add("spec", 3, 1);
  b.Add("metadata.name", 2, 9);
  b.Add("spec.podSelector", 3, 5);
  b.Seal();
  EXPECT_TRUE(a == b);
  FieldPositions c;
  c.Add("spec", 3, 1);
  c.Add("metadata.name", 7, 7);
  c.Add("spec.podSelector", 3, 5);
  c.Seal();
  EXPECT_FALSE(a == c);
  const Provenance p{{"f.yaml", 1, 1}, std::make_shared<const FieldPositions>(a)};
  EXPECT_EQ(p.Locate("spec.podSelector.matchLabels").ToString(), "f.yaml:3:5");  // its nearest ancestor
}

// Many paths (a large policy) are indexed when sealed: the same answers.
TEST(FieldPositionsTest, ManyPathsAnswerAlike) {
  FieldPositions many;
  FieldPositions reversed;
  for (int i = 0; i < 500; ++i) many.Add("spec.ingress[" + std::to_string(i) + "]", i + 1, 3);
  many.Add("spec.ingress[7]", 999, 9);  // again: the first stands
  for (int i = 499; i >= 0; --i) reversed.Add("spec.ingress[" + std::to_string(i) + "]", i + 1, 3);
  many.Seal();
  reversed.Seal();
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(many.Find("spec.ingress[" + std::to_string(i) + "]"), (std::pair<int, int>{i + 1, 3}));
  }
  EXPECT_EQ(many.Find("spec.ingress[500]"), std::nullopt);
  EXPECT_EQ(many.Find("spec"), std::nullopt);
  EXPECT_TRUE(many == reversed);
}

}  // namespace
}  // namespace netpol::api
