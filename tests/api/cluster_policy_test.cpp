// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, network-policy-api
// v0.3.0) and Node: decoding, every limit and CEL rule of the CRD as a table of
// manifests and the exact diagnostics the API server's CRD validation gives, and
// decode(encode(x)) == x.
//
//   {"priority above 1000", Cnp("  tier: Admin\n  priority: 1001\n..."),
//    {prefix + "spec.priority: Invalid value: 1001: spec.priority in body should be ..."}}
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/decode.h"
#include "api/encode.h"
#include "api/load.h"
#include "api/validate.h"

namespace netpol::api {
namespace {

std::vector<std::string> Diagnosed(const std::string& text) {
  const LoadResult r = LoadText(text, "t.yaml", {});
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.ToString());
  return out;
}

std::string Cnp(const std::string& spec) {
  return "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  name: "
         "c\nspec:\n" +
         spec;
}

// A valid head: tier, priority, subject.
std::string Head(const std::string& rest) {
  return Cnp("  tier: Admin\n  priority: 10\n  subject: {namespaces: {}}\n" + rest);
}

std::string Egress(const std::string& rule) {
  return Head("  egress:\n  - " + rule + "\n");
}

std::string Repeat(const std::string& item, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i > 0 ? ", " : "") + item;
  return out;
}

// "10.0.0.0/16, 10.1.0.0/16, ..."
std::string DistinctNetworks(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i > 0 ? ", 10." : "10.") + std::to_string(i) + ".0.0/16";
  return out;
}

struct Case {
  const char* name;
  std::string text;
  std::vector<std::string> diagnostics;
};

TEST(ClusterPolicyTest, ValidationTable) {
  const std::string e = "error: ClusterNetworkPolicy c: ";
  const std::string w = "warning: ClusterNetworkPolicy c: ";
  const std::string tcp80 = "protocols: [{tcp: {destinationPort: {number: 80}}}]";
  const Case cases[] = {
      {"valid, every field",
       Cnp("  tier: Baseline\n  priority: 0\n  subject: {pods: {namespaceSelector: {matchLabels: {a: b}}, "
           "podSelector: {}}}\n  ingress:\n  - {name: r, action: Pass, from: [{namespaces: {}}, {pods: "
           "{podSelector: {matchLabels: {app: x}}}}], protocols: [{udp: {destinationPort: {range: {start: 1, "
           "end: 2}}}}, {destinationNamedPort: http}]}\n  egress:\n  - {action: Accept, to: [{nodes: {}}, "
           "{networks: [10.0.0.0/8, 'fd00::/8']}, {domainNames: [example.com, '*.example.com.']}]}\n"),
       {}},
      {"required fields",
       Cnp("  ingress: [{}]\n"),
       {e + "spec.tier: Required value", e + "spec.priority: Required value",
        e + "spec.subject: Required value", e + "spec.ingress[0].action: Required value",
        e + "spec.ingress[0].from: Required value"}},
      {"priority below 0",
       Cnp("  tier: Admin\n  priority: -1\n  subject: {namespaces: {}}\n"),
       {"t.yaml:7:13: " + e +
        "spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0"}},
      {"priority above 1000",
       Cnp("  tier: Admin\n  priority: 1001\n  subject: {namespaces: {}}\n"),
       {e +
        "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"}},
      {"unsupported tier and action",
       Cnp("  tier: admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress: [{action: Allow, from: "
           "[{namespaces: {}}]}]\n"),
       {e + "spec.tier: Unsupported value: \"admin\": supported values: \"Admin\", \"Baseline\"",
        e + "spec.ingress[0].action: Unsupported value: \"Allow\": supported values: \"Accept\", \"Deny\", "
            "\"Pass\""}},
      {"subject with no field and with two",
       Cnp("  tier: Admin\n  priority: 1\n  subject: {}\n"),
       {e + "spec.subject: Invalid value: 0: spec.subject in body should have at least 1 properties"}},
      {"subject with two fields, pods without podSelector",
       Cnp("  tier: Admin\n  priority: 1\n  subject: {namespaces: {}, pods: {namespaceSelector: {}}}\n"),
       {e + "spec.subject: Too many: 2: must have at most 1 item",
        e + "spec.subject.pods.podSelector: Required value"}},
      {"too many rules",
       Head("  ingress: [" + Repeat("{action: Deny, from: [{namespaces: {}}]}", 26) + "]\n"),
       {e + "spec.ingress: Too many: 26: must have at most 25 items"}},
      {"rule name too long",
       Head("  ingress: [{name: " + std::string(101, 'n') + ", action: Deny, from: [{namespaces: {}}]}]\n"),
       {e + "spec.ingress[0].name: Too long: may not be more than 100 bytes"}},
      {"no peers and too many",
       Head("  ingress: [{action: Deny, from: []}, {action: Deny, from: [" + Repeat("{namespaces: {}}", 26) +
            "]}]\n"),
       {e + "spec.ingress[0].from: Invalid value: 0: spec.ingress[0].from in body should have at least 1 "
            "items",
        e + "spec.ingress[1].from: Too many: 26: must have at most 25 items"}},
      {"peer with no field and with two",
       Egress("{action: Deny, to: [{}, {namespaces: {}, networks: [10.0.0.0/8]}]}"),
       {e + "spec.egress[0].to[0]: Invalid value: 0: spec.egress[0].to[0] in body should have at least 1 "
            "properties",
        e + "spec.egress[0].to[1]: Too many: 2: must have at most 1 item"}},
      {"egress-only peers in ingress are unknown fields",
       Head("  ingress: [{action: Deny, from: [{networks: [10.0.0.0/8]}]}]\n"),
       {w + "unknown field \"spec.ingress[0].from[0].networks\"",
        e + "spec.ingress[0].from[0]: Invalid value: 0: spec.ingress[0].from[0] in body should have at least "
            "1 properties"}},
      {"networks: invalid, host bits, duplicate, too long, empty",
       Egress("{action: Deny, to: [{networks: [10.0.0.1/8, nope, 10.0.0.0/8, 10.0.0.0/8, "
              "'2001:0db8:0000:0000:0000:0000:0000:0000/1280']}, {networks: []}]}"),
       {e + "spec.egress[0].to[0].networks[0]: Invalid value: \"string\": Invalid CIDR format provided",
        e + "spec.egress[0].to[0].networks[1]: Invalid value: \"string\": Invalid CIDR format provided",
        e + "spec.egress[0].to[0].networks[3]: Duplicate value: \"10.0.0.0/8\"",
        e + "spec.egress[0].to[0].networks[4]: Too long: may not be more than 43 bytes",
        e + "spec.egress[0].to[0].networks[4]: Invalid value: \"string\": Invalid CIDR format provided",
        e + "spec.egress[0].to[1].networks: Invalid value: 0: spec.egress[0].to[1].networks in body should "
            "have at least 1 items"}},
      {"too many networks",
       Egress("{action: Deny, to: [{networks: [" + DistinctNetworks(26) + "]}]}"),
       {e + "spec.egress[0].to[0].networks: Too many: 26: must have at most 25 items"}},
      {"domain names: pattern, duplicate",
       Egress("{action: Accept, to: [{domainNames: [com, 'a.*.com', '*.b.com', '*.b.com', a_b.c-d.e]}]}"),
       {e + "spec.egress[0].to[0].domainNames[0]: Invalid value: \"com\": "
            "spec.egress[0].to[0].domainNames[0] "
            "in body should match '^(\\*\\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-zA-Z0-9]([-a-zA-"
            "Z0-9_]*[a-zA-Z0-9])?\\.?$'",
        e + "spec.egress[0].to[0].domainNames[1]: Invalid value: \"a.*.com\": spec.egress[0].to[0]."
            "domainNames[1] in body should match '^(\\*\\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-"
            "zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.?$'",
        e + "spec.egress[0].to[0].domainNames[3]: Duplicate value: \"*.b.com\""}},
      {"domain names with Deny: the CRD accepts it, its documentation does not",
       Egress("{action: Deny, to: [{domainNames: [example.com]}]}"),
       {w + "spec.egress[0].to[0].domainNames: DomainNames is only supported for Accept rules"}},
      {"named port with networks, nodes or domainNames",
       Egress(
           "{action: Deny, to: [{pods: {podSelector: {}}}, {nodes: {}}], protocols: [{destinationNamedPort: "
           "http}]}"),
       {e + "spec.egress[0]: Invalid value: \"object\": networks/nodes/domainNames peer cannot be set with "
            "namedPorts since there are no namedPorts for networks/nodes/domainNames"}},
      {"named port with pods only is fine",
       Egress("{action: Deny, to: [{pods: {podSelector: {}}}], protocols: [{destinationNamedPort: http}]}"),
       {}},
      {"protocols: empty, too many, no field, two fields",
       Head("  ingress:\n  - {action: Deny, from: [{namespaces: {}}], protocols: []}\n  - {action: Deny, "
            "from: "
            "[{namespaces: {}}], protocols: [" +
            Repeat("{tcp: {destinationPort: {number: 1}}}", 26) +
            "]}\n  - {action: Deny, from: [{namespaces: {}}], protocols: [{}, {tcp: {destinationPort: "
            "{number: "
            "1}}, destinationNamedPort: x}]}\n"),
       {e + "spec.ingress[0].protocols: Invalid value: 0: spec.ingress[0].protocols in body should have at "
            "least 1 items",
        e + "spec.ingress[1].protocols: Too many: 26: must have at most 25 items",
        e + "spec.ingress[2].protocols[0]: Invalid value: 0: spec.ingress[2].protocols[0] in body should "
            "have "
            "at least 1 properties",
        e + "spec.ingress[2].protocols[1]: Too many: 2: must have at most 1 item"}},
      {"ports: missing, both, out of range, range order",
       Head(
           "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - tcp: {}\n    - "
           "udp: {destinationPort: {}}\n    - sctp: {destinationPort: {number: 1, range: {start: 1, end: "
           "2}}}\n"
           "    - tcp: {destinationPort: {number: 0}}\n    - tcp: {destinationPort: {number: 65536}}\n    - "
           "udp: {destinationPort: {range: {start: 80, end: 80}}}\n    - udp: {destinationPort: {range: "
           "{end: "
           "70000}}}\n"),
       {e + "spec.ingress[0].protocols[0].tcp: Invalid value: 0: spec.ingress[0].protocols[0].tcp in body "
            "should have at least 1 properties",
        e + "spec.ingress[0].protocols[1].udp.destinationPort: Invalid value: 0: "
            "spec.ingress[0].protocols[1]."
            "udp.destinationPort in body should have at least 1 properties",
        e + "spec.ingress[0].protocols[2].sctp.destinationPort: Too many: 2: must have at most 1 item",
        e + "spec.ingress[0].protocols[3].tcp.destinationPort.number: Invalid value: 0: spec.ingress[0]."
            "protocols[3].tcp.destinationPort.number in body should be greater than or equal to 1",
        e + "spec.ingress[0].protocols[4].tcp.destinationPort.number: Invalid value: 65536: spec.ingress[0]."
            "protocols[4].tcp.destinationPort.number in body should be less than or equal to 65535",
        e + "spec.ingress[0].protocols[5].udp.destinationPort.range: Invalid value: \"object\": Start port "
            "must be less than End port",
        e + "spec.ingress[0].protocols[6].udp.destinationPort.range.start: Required value",
        e + "spec.ingress[0].protocols[6].udp.destinationPort.range.end: Invalid value: 70000: "
            "spec.ingress[0].protocols[6].udp.destinationPort.range.end in body should be less than or equal "
            "to 65535"}},
      {"name and selectors as the API server checks them",
       "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: "
       "C_}\nspec:\n"
       "  tier: Admin\n  priority: 1\n  subject: {namespaces: {matchExpressions: [{key: a, operator: "
       "In}]}}\n",
       {"error: ClusterNetworkPolicy C_: metadata.name: Invalid value: \"C_\": a lowercase RFC 1123 "
        "subdomain "
        "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        "error: ClusterNetworkPolicy C_: spec.subject.namespaces.matchExpressions[0].values: Required value: "
        "must be specified when `operator` is 'In' or 'NotIn'"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = Diagnosed(c.text);
    if (c.diagnostics.size() != 1 || !c.diagnostics[0].starts_with("t.yaml:")) {
      for (std::string& d : got) d = d.substr(d.find(": ") + 2);
    }
    EXPECT_THAT(got, ::testing::UnorderedElementsAreArray(c.diagnostics));
  }
}

TEST(ClusterPolicyTest, DecodesEveryField) {
  const LoadResult r = LoadText(Cnp(R"(  tier: Admin
  priority: 7
  subject:
    pods: {namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: db}}}
  ingress:
  - name: from-monitoring
    action: Accept
    from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
    protocols: [{tcp: {destinationPort: {number: 9090}}}, {sctp: {destinationPort: {range: {start: 5, end: 9}}}}]
  egress:
  - action: Deny
    to: [{networks: [192.0.2.0/24]}, {nodes: {matchLabels: {role: infra}}}]
)"),
                                "t.yaml", {});
  ASSERT_TRUE(r.ok()) << r.diagnostics.front().ToString();
  ASSERT_EQ(r.objects.size(), 1U);
  const auto& p = std::get<ClusterNetworkPolicy>(r.objects[0]);
  EXPECT_EQ(ObjectRef(r.objects[0]), "ClusterNetworkPolicy c");
  EXPECT_EQ(p.metadata.namespace_, "");
  EXPECT_EQ(p.tier, Tier::kAdmin);
  EXPECT_EQ(p.priority, 7);
  ASSERT_TRUE(p.subject && p.subject->pods);
  EXPECT_EQ(p.subject->pods->namespace_selector.match_labels.at("team"), "a");
  ASSERT_EQ(p.ingress.size(), 1U);
  EXPECT_EQ(p.ingress[0].name, "from-monitoring");
  EXPECT_EQ(p.ingress[0].action, RuleAction::kAccept);
  ASSERT_EQ(p.ingress[0].protocols->size(), 2U);
  EXPECT_EQ((*p.ingress[0].protocols)[0].tcp->destination_port->number, 9090);
  EXPECT_EQ((*p.ingress[0].protocols)[1].sctp->destination_port->range, (PortRange{5, 9}));
  ASSERT_EQ(p.egress[0].peers->size(), 2U);
  EXPECT_EQ((*p.egress[0].peers)[0].networks, std::vector<std::string>{"192.0.2.0/24"});
  EXPECT_EQ((*p.egress[0].peers)[1].nodes->match_labels.at("role"), "infra");
  // Positions of nested fields, for diagnostics.
  EXPECT_EQ(p.metadata.source.Locate("spec.egress[0].to[1].nodes").ToString(), "t.yaml:17:46");
}

TEST(ClusterPolicyTest, DecodesFromJsonAsFromText) {
  const std::string text =
      R"({"apiVersion":"policy.networking.k8s.io/v1alpha2","kind":"ClusterNetworkPolicy","metadata":{"name":"c"},)"
      R"("spec":{"tier":"Baseline","priority":1000,"subject":{"namespaces":{}},"egress":[{"action":"Pass",)"
      R"("to":[{"domainNames":["example.com"]}],"protocols":[{"udp":{"destinationPort":{"number":53}}}]}]}})";
  const LoadResult from_text = LoadText(text, "t.json", {});
  const LoadResult from_json = LoadJson(nlohmann::json::parse(text), "t.json", {});
  ASSERT_EQ(from_text.objects.size(), 1U);
  EXPECT_TRUE(from_text.objects == from_json.objects);
  // Pass with domainNames: a warning, not an error.
  EXPECT_TRUE(from_text.ok());
  EXPECT_EQ(from_text.diagnostics.size(), 1U);
}

TEST(ClusterPolicyTest, Nodes) {
  const LoadResult r = LoadText(R"(apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {role: infra}}
spec: {podCIDR: 198.18.1.0/24}
status:
  addresses: [{type: InternalIP, address: 10.0.0.11}, {type: Hostname, address: node-1}]
---
apiVersion: v1
kind: Node
metadata: {name: Bad_Name}
)",
                                "n.yaml", {});
  ASSERT_EQ(r.diagnostics.size(), 1U);
  EXPECT_THAT(r.diagnostics[0].ToString(),
              ::testing::StartsWith("n.yaml:10:18: error: Node Bad_Name: "
                                    "metadata.name: Invalid value: \"Bad_Name\""));
  const DecodeResult d = Decode(R"(apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {role: infra}}
status:
  addresses: [{type: InternalIP, address: 10.0.0.11}, {type: Hostname, address: node-1}]
)",
                                "n.yaml", {});
  ASSERT_EQ(d.objects.size(), 1U);
  const auto& node = std::get<Node>(d.objects[0]);
  EXPECT_EQ(ObjectRef(d.objects[0]), "Node node-1");
  ASSERT_EQ(node.addresses.size(), 2U);
  EXPECT_EQ(node.addresses[0], (NodeAddress{"InternalIP", "10.0.0.11"}));
}

TEST(ClusterPolicyTest, RoundTrip) {
  const LoadResult r = LoadText(Cnp(R"(  tier: Baseline
  priority: 0
  subject: {pods: {podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [x]}]}}}
  ingress:
  - {name: a, action: Pass, from: [{namespaces: {}}, {pods: {namespaceSelector: {matchLabels: {a: b}}, podSelector: {}}}]}
  - {action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: http}, {udp: {destinationPort: {range: {start: 1, end: 1024}}}}]}
  egress:
  - {action: Accept, to: [{networks: ['10.0.0.0/8', 'fd00::/8']}, {nodes: {}}, {domainNames: ['*.example.com']}], protocols: [{sctp: {destinationPort: {number: 9}}}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {zone: a}}
status: {addresses: [{type: InternalIP, address: 10.0.0.1}, {type: InternalIP, address: 'fd00::1'}]}
)"),
                                "t.yaml", {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.objects.size(), 2U);
  const std::string text = Encode(r.objects);
  const DecodeResult back = Decode(text, "encoded.yaml", {});
  EXPECT_TRUE(back.diagnostics.empty()) << text;
  ASSERT_EQ(back.objects.size(), 2U) << text;
  EXPECT_TRUE(back.objects[0] == r.objects[0]) << text;
  EXPECT_TRUE(back.objects[1] == r.objects[1]) << text;
}

}  // namespace
}  // namespace netpol::api
