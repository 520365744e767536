// Validation, table-driven: each case is a manifest and the exact diagnostics the
// API server would give (apimachinery wording), with the file position.
#include "api/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/load.h"

namespace netpol::api {
namespace {

std::vector<std::string> Errors(const std::string& text) {
  const LoadResult r = LoadText(text, "t.yaml", {});
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.ToString());
  return out;
}

std::string Policy(const std::string& spec, const std::string& name = "p") {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: " + name + "\nspec:\n" +
         spec;
}

struct Case {
  const char* name;
  std::string text;
  std::vector<std::string> errors;
};

TEST(ValidateTest, NetworkPolicyFieldsTable) {
  const std::string prefix = "error: NetworkPolicy default/p: ";
  const Case cases[] = {
      {"valid",
       Policy("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 198.18.0.0/15, except: "
              "[198.18.1.0/24]}}]}]\n"),
       {}},
      {"endPort below port",
       Policy("  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n      endPort: 79\n"),
       {"t.yaml:10:16: " + prefix +
        "spec.ingress[0].ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`"}},
      {"endPort with named port",
       Policy("  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]\n"),
       {prefix + "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is "
                 "non-numeric"}},
      {"endPort without port",
       Policy("  podSelector: {}\n  egress: [{ports: [{endPort: 90}]}]\n"),
       {prefix + "spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is "
                 "not specified"}},
      {"port out of range",
       Policy("  podSelector: {}\n  ingress: [{ports: [{port: 0}, {port: 70000, endPort: 70001}]}]\n"),
       {prefix + "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        prefix +
            "spec.ingress[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        prefix + "spec.ingress[0].ports[1].endPort: Invalid value: 70001: must be between 1 and 65535, "
                 "inclusive"}},
      {"bad port names",
       Policy("  podSelector: {}\n  ingress: [{ports: [{port: \"8080\"}, {port: a-very-long-port-name}, "
              "{port: Http}, {port: a--b}]}]\n"),
       {prefix +
            "spec.ingress[0].ports[0].port: Invalid value: \"8080\": must contain at least one letter (a-z)",
        prefix + "spec.ingress[0].ports[1].port: Invalid value: \"a-very-long-port-name\": must be no more "
                 "than 15 characters",
        prefix + "spec.ingress[0].ports[2].port: Invalid value: \"Http\": must contain only alpha-numeric "
                 "characters (a-z, 0-9), and hyphens (-)",
        prefix + "spec.ingress[0].ports[3].port: Invalid value: \"a--b\": must not contain consecutive "
                 "hyphens (--)"}},
      {"peer with ipBlock and selector",
       Policy(
           "  podSelector: {}\n  ingress: [{from: [{podSelector: {}, ipBlock: {cidr: 198.18.0.0/16}}]}]\n"),
       {prefix + "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"}},
      {"empty peer",
       Policy("  podSelector: {}\n  egress: [{to: [{}]}]\n"),
       {prefix + "spec.egress[0].to[0]: Required value: must specify a peer"}},
      {"bad cidr and except",
       Policy("  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 198.18.0.0/33}}, {ipBlock: {cidr: "
              "198.18.0.0/16, except: [198.19.0.0/24, 198.18.0.0/16, nope]}}]}]\n"),
       {prefix + "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"198.18.0.0/33\": must be a valid "
                 "CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        prefix + "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"198.19.0.0/24\": must be a "
                 "strict subset of `cidr`",
        prefix + "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"198.18.0.0/16\": must be a "
                 "strict subset of `cidr`",
        prefix + "spec.ingress[0].from[1].ipBlock.except[2]: Invalid value: \"nope\": must be a valid CIDR "
                 "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"}},
      {"missing cidr",
       Policy("  podSelector: {}\n  ingress: [{from: [{ipBlock: {except: []}}]}]\n"),
       {prefix + "spec.ingress[0].from[0].ipBlock.cidr: Required value"}},
      {"selector operators",
       Policy("  podSelector:\n    matchExpressions:\n    - {key: a, operator: In}\n    - {key: b, operator: "
              "Exists, values: [x]}\n    - {key: c, operator: Equals}\n"),
       {prefix + "spec.podSelector.matchExpressions[0].values: Required value: must be specified when "
                 "`operator` is 'In' or 'NotIn'",
        prefix + "spec.podSelector.matchExpressions[1].values: Forbidden: may not be specified when "
                 "`operator` is 'Exists' or 'DoesNotExist'",
        prefix + "spec.podSelector.matchExpressions[2].operator: Invalid value: \"Equals\": not a valid "
                 "selector operator"}},
      {"label keys and values",
       Policy("  podSelector:\n    matchLabels: {\"-bad\": ok, good: \"-bad-\", \"a/b/c\": x}\n"),
       {prefix + "spec.podSelector.matchLabels: Invalid value: \"-bad\": name part must consist of "
                 "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        prefix + "spec.podSelector.matchLabels: Invalid value: \"a/b/c\": a qualified name must consist of "
                 "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
                 "(e.g. 'example.com/MyName')",
        prefix + "spec.podSelector.matchLabels: Invalid value: \"-bad-\": a valid label must be an empty "
                 "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                 "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"}},
      {"more than two policyTypes",
       Policy("  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]\n"),
       {prefix + "spec.policyTypes: Invalid value: [...]: may not specify more than two policyTypes"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // Positions are pinned by the first error case and by PositionsOfFields;
    // elsewhere the table compares the message only.
    auto got = Errors(c.text);
    if (c.errors.size() != 1 || !c.errors[0].starts_with("t.yaml:")) {
      for (std::string& e : got) e = e.substr(e.find(": ") + 2);
    }
    // Order of the label-map errors follows key order; compare as sets there.
    EXPECT_THAT(got, ::testing::UnorderedElementsAreArray(c.errors));
  }
}

TEST(ValidateTest, PositionsOfFields) {
  EXPECT_THAT(
      Errors(Policy("  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 198.18.0.0/16\n"
                    "        except:\n        - 198.18.0.0/8\n")),
      ::testing::ElementsAre(
          "t.yaml:12:11: error: NetworkPolicy default/p: spec.ingress[0].from[0].ipBlock."
          "except[0]: Invalid value: \"198.18.0.0/8\": must be a strict subset of `cidr`"));
  // A field that is missing is located at its nearest present parent.
  EXPECT_THAT(Errors(Policy("  podSelector: {}\n  egress:\n  - to:\n    - {}\n")),
              ::testing::ElementsAre(::testing::StartsWith(
                  "t.yaml:9:7: error: NetworkPolicy default/p: spec.egress[0].to[0]:")));
}

TEST(ValidateTest, NamesAndNamespaces) {
  EXPECT_THAT(
      Errors("apiVersion: v1\nkind: Namespace\nmetadata: {name: Team_A}\n"),
      ::testing::ElementsAre(
          "t.yaml:3:18: error: Namespace Team_A: metadata.name: Invalid value: \"Team_A\": a lowercase RFC "
          "1123 "
          "label must consist of lower case alphanumeric characters or '-', and must start and end with an "
          "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
  EXPECT_THAT(
      Errors(Policy("  podSelector: {}\n", "Bad.Name")),
      ::testing::ElementsAre(::testing::HasSubstr(
          "metadata.name: Invalid value: \"Bad.Name\": a lowercase RFC 1123 subdomain must consist of")));
  EXPECT_THAT(
      Errors("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: x}\nspec: {}\n"),
      ::testing::ElementsAre(
          ::testing::HasSubstr("metadata.name: Required value: name or generateName is required")));
}

TEST(ValidateTest, PodsAndWorkloads) {
  EXPECT_THAT(
      Errors(R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    ports: [{name: http, containerPort: 80}, {containerPort: 0}]
  - name: a
    ports: [{name: http, containerPort: 81, protocol: TCP}]
status: {podIP: 198.18.0.300}
)"),
      ::testing::UnorderedElementsAre(
          ::testing::HasSubstr("spec.containers[0].ports[1].containerPort: Required value"),
          ::testing::HasSubstr("spec.containers[1].name: Duplicate value: \"a\""),
          ::testing::HasSubstr("warning: Pod default/p: spec.containers[1].ports[0]: duplicate port name "
                               "\"http\" with spec.containers[0].ports[0], services and probes that select "
                               "ports by name will use spec.containers[0].ports[0]"),
          ::testing::HasSubstr(
              "status.podIPs[0].ip: Invalid value: \"198.18.0.300\": must be a valid IP address")));
  EXPECT_THAT(
      Errors(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c}]}
)"),
      ::testing::UnorderedElementsAre(
          ::testing::HasSubstr("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
          ::testing::HasSubstr("spec.template.metadata.labels: Invalid value: app=api: `selector` does not "
                               "match template `labels`")));
  EXPECT_THAT(Errors("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    "
                     "spec: {containers: [{name: c}]}\n"),
              ::testing::ElementsAre(::testing::HasSubstr("spec.selector: Required value")));
}

// An item in error keeps its index: the errors of the items after it name
// their own index and line (an invalid operator, or an item that is not an
// object, used to shift them onto the item before).
TEST(ValidateTest, ItemsAfterAnInvalidOneKeepTheirIndexAndLine) {
  const std::string p = "error: NetworkPolicy default/p: spec.";
  EXPECT_THAT(Errors(Policy("  podSelector:\n"
                            "    matchExpressions:\n"
                            "    - key: a\n"
                            "      operator: Bogus\n"
                            "    - key: b\n"
                            "      operator: In\n"
                            "    - key: c\n"
                            "      operator: Exists\n"
                            "      values: [x]\n"
                            "  ingress:\n"
                            "  - from:\n"
                            "    - namespaceSelector:\n"
                            "        matchExpressions:\n"
                            "        - 5\n"
                            "        - {key: \"bad key\", operator: Exists}\n")),
              ::testing::ElementsAre(
                  "t.yaml:9:17: " + p +
                      "podSelector.matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid "
                      "selector operator",
                  "t.yaml:10:7: " + p +
                      "podSelector.matchExpressions[1].values: Required value: must be specified when "
                      "`operator` is 'In' or 'NotIn'",
                  "t.yaml:14:15: " + p +
                      "podSelector.matchExpressions[2].values: Forbidden: may not be specified when "
                      "`operator` is 'Exists' or 'DoesNotExist'",
                  "t.yaml:19:11: " + p +
                      "ingress[0].from[0].namespaceSelector.matchExpressions[0]: Invalid value: expected an "
                      "object",
                  ::testing::StartsWith("t.yaml:20:17: " + p +
                                        "ingress[0].from[0].namespaceSelector.matchExpressions[1].key: "
                                        "Invalid value: \"bad key\": ")));
}

TEST(ValidateTest, ContainerPortsAfterOneThatIsNotAnObjectKeepTheirIndex) {
  EXPECT_THAT(
      Errors("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n"
             "    ports:\n    - 80\n    - containerPort: 0\n"),
      ::testing::ElementsAre(
          "t.yaml:8:7: error: Pod default/a: spec.containers[0].ports[0]: Invalid value: expected an object",
          "t.yaml:9:22: error: Pod default/a: spec.containers[0].ports[1].containerPort: Required value"));
}

TEST(ValidateTest, AllErrorsReportedAndInputRejectedWhole) {
  const LoadResult r = LoadText(Policy("  podSelector: {}\n") + "---\n" +
                                    Policy("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n", "bad") +
                                    "---\n" + Policy("  egress: [{to: [{}]}]\n", "worse"),
                                "t.yaml", {});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.objects.empty());
  EXPECT_EQ(CountErrors(r.diagnostics), 2u);
}

TEST(ValidateTest, IsChecksMatchApimachinery) {
  EXPECT_TRUE(IsDns1123Label("a-1").empty());
  EXPECT_FALSE(IsDns1123Label("-a").empty());
  EXPECT_FALSE(IsDns1123Label(std::string(64, 'a')).empty());
  EXPECT_TRUE(IsDns1123Subdomain("a.b-c.d").empty());
  EXPECT_FALSE(IsDns1123Subdomain("a..b").empty());
  EXPECT_TRUE(IsQualifiedName("example.com/My_Name.1").empty());
  EXPECT_THAT(IsQualifiedName("/a"), ::testing::ElementsAre("prefix part must be non-empty"));
  EXPECT_THAT(IsQualifiedName("a/"), ::testing::Contains("name part must be non-empty"));
  EXPECT_TRUE(IsValidLabelValue("").empty());
  EXPECT_THAT(IsValidLabelValue(std::string(64, 'a')),
              ::testing::Contains("must be no more than 63 characters"));
  EXPECT_TRUE(IsValidPortName("http-alt").empty());
  EXPECT_THAT(IsValidPortName("-http"), ::testing::Contains("must not begin or end with a hyphen (-)"));
  EXPECT_TRUE(IsValidPortNum(65535).empty());
  EXPECT_FALSE(IsValidPortNum(65536).empty());
}

}  // namespace
}  // namespace netpol::api
