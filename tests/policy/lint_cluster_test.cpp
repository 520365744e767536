// The ClusterNetworkPolicy lints (docs/SEMANTICS.md §22): each fires on its
// case and stays quiet on a near miss that differs in the one thing it proves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "api/load.h"
#include "policy/flow_text.h"
#include "policy/lint.h"
#include "testutil/generator.h"

namespace netpol::policy {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Namespaces prod (env=prod) and dev (env=dev); prod/db (app=db, 5432 "pg"),
// prod/web (app=web, 80 "http"), dev/client (app=client).
const std::string kCluster = R"(apiVersion: v1
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
spec: {containers: [{name: c, ports: [{name: pg, containerPort: 5432}]}]}
status: {podIP: 198.18.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 198.18.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dev, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.2.1}
---
)";

// A ClusterNetworkPolicy with the given name, tier, priority, subject and rules (YAML flow text).
std::string Cnp(const std::string& name, const std::string& tier, int priority, const std::string& subject,
                const std::string& rules) {
  return "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: " +
         name + "}\nspec:\n  tier: " + tier + "\n  priority: " + std::to_string(priority) +
         "\n  subject: " + subject + "\n" + rules + "---\n";
}

const std::string kProd = "{namespaces: {matchLabels: {env: prod}}}";
const std::string kDev = "{namespaces: {matchLabels: {env: dev}}}";
const std::string kEverywhere = "{namespaces: {}}";

// The cluster DNS: kube-system/coredns (k8s-app=kube-dns) on 53/UDP and 53/TCP.
const std::string kDns = R"(apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c, ports: [{name: dns, containerPort: 53, protocol: UDP}, {name: dns-tcp, containerPort: 53}]}]}
status: {podIP: 198.18.3.53}
---
)";

// A NetworkPolicy isolating dev/client for egress and allowing all of it.
const std::string kClientEgressOpen = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-out, namespace: dev}
spec: {podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{}]}
---
)";

std::vector<Finding> Findings(const std::string& yaml) {
  const api::LoadResult r = api::LoadText(yaml, "t.yaml", {});
  for (const auto& d : r.diagnostics) {
    if (d.severity == api::Severity::kError) ADD_FAILURE() << d.ToString();
  }
  Engine engine;
  for (const auto& o : r.objects) engine.Apply(o);
  std::vector<Finding> out;
  for (Finding& f : Lint(engine)) {
    if (f.cluster) out.push_back(std::move(f));
  }
  return out;
}

// "check policy field" per ClusterNetworkPolicy finding.
std::vector<std::string> LintOf(const std::string& yaml) {
  std::vector<std::string> out;
  for (const Finding& f : Findings(yaml)) out.push_back(f.check + " " + f.policy + " " + f.field);
  return out;
}

struct Case {
  const char* name;
  std::string policies;  // on top of kCluster
  std::vector<std::string> expected;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ClusterLintTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClusterLintTest, Findings) {
  EXPECT_EQ(LintOf(kCluster + GetParam().policies), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ClusterLintTest,
    ::testing::Values(
        // ---- cluster-rule-shadowed ----
        Case{"ShadowedByAnEarlierRuleOfItsPolicy",
             Cnp("guard", "Admin", 10, kProd,
                 "  ingress:\n  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}\n"
                 "  - {name: dev, action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {"cluster-rule-shadowed admin/guard spec.ingress[1]"}},
        Case{"NotShadowedWhenTheEarlierRuleHasFewerPorts",
             Cnp("guard", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Deny, from: [{namespaces: {}}], protocols: [{tcp: "
                 "{destinationPort: "
                 "{number: 80}}}]}\n"
                 "  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {}},
        Case{"ShadowedByALowerPriorityNumberWithAWiderSubject",
             Cnp("wide", "Admin", 10, kEverywhere,
                 "  ingress:\n  - {action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}\n") +
                 Cnp("narrow", "Admin", 20, kProd,
                     "  ingress:\n  - {action: Accept, from: [{pods: {namespaceSelector: {matchLabels: {env: "
                     "dev}}, "
                     "podSelector: {matchLabels: {app: client}}}}], protocols: [{tcp: {destinationPort: "
                     "{number: "
                     "80}}}]}\n"),
             {"cluster-rule-shadowed admin/narrow spec.ingress[0]"}},
        Case{"NotShadowedWhenTheEarlierSubjectIsNarrower",
             Cnp("wide", "Admin", 10,
                 "{pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: "
                 "{matchLabels: {app: db}}}}",
                 "  ingress:\n  - {action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}\n") +
                 Cnp("narrow", "Admin", 20, kProd,
                     "  ingress:\n  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {}},
        Case{"NotShadowedAcrossTiers",
             Cnp("admin", "Admin", 10, kEverywhere,
                 "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                 Cnp("base", "Baseline", 20, kProd,
                     "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n"),
             {}},
        // Equal priorities: not shadowing (the order is the implementation's), a tie instead.
        Case{
            "EqualPrioritiesTieInsteadOfShadowing",
            Cnp("a", "Admin", 10, kEverywhere, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                Cnp("b", "Admin", 10, kProd, "  ingress:\n  - {action: Accept, from: [{namespaces: {}}]}\n"),
            {"cluster-priority-tie admin/b spec.priority"}},
        Case{"PortRangesOfOneRuleJoin",
             Cnp("p", "Admin", 10, kProd,
                 "  egress:\n  - {action: Deny, to: [{networks: [198.51.100.0/24]}], protocols: [{tcp: "
                 "{destinationPort: {range: {start: 1, end: 100}}}}, {tcp: {destinationPort: {range: {start: "
                 "101, end: 200}}}}]}\n"
                 "  - {action: Accept, to: [{networks: [198.51.100.128/25]}], protocols: [{tcp: "
                 "{destinationPort: {range: {start: 50, end: 150}}}}]}\n"
                 "  - {action: Accept, to: [{networks: [198.51.100.128/25]}], protocols: [{tcp: "
                 "{destinationPort: {range: {start: 50, end: 250}}}}]}\n"),
             {"cluster-rule-shadowed admin/p spec.egress[1]"}},
        Case{"NetworksOfSeveralRulesJoin",
             Cnp("p", "Admin", 10, kProd,
                 "  egress:\n  - {action: Deny, to: [{networks: [198.51.100.0/25]}]}\n"
                 "  - {action: Pass, to: [{networks: [198.51.100.128/25, \"2001:2::/48\"]}]}\n"
                 "  - {action: Accept, to: [{networks: [198.51.100.0/24]}]}\n"
                 "  - {action: Accept, to: [{networks: [198.51.100.0/23]}]}\n"),
             // (The Pass has nothing below it either.)
             {"cluster-pass-to-default admin/p spec.egress[1]",
              "cluster-rule-shadowed admin/p spec.egress[2]"}},
        Case{
            "NamedPortsBySameName",
            Cnp("p", "Admin", 10, kProd,
                "  ingress:\n  - {action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: "
                "pg}]}\n"
                "  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}], protocols: "
                "[{destinationNamedPort: pg}]}\n"),
            {"cluster-rule-shadowed admin/p spec.ingress[1]"}},
        // A named port may be UDP or SCTP on some pod: TCP 5432 alone does not cover it.
        Case{"NamedPortNotCoveredByANumber",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Deny, from: [{namespaces: {}}], protocols: [{tcp: "
                 "{destinationPort: "
                 "{number: 5432}}}]}\n"
                 "  - {action: Accept, from: [{namespaces: {}}], protocols: [{destinationNamedPort: pg}]}\n"),
             {}},
        Case{"NodesBySelector",
             Cnp("p", "Admin", 10, kProd,
                 "  egress:\n  - {action: Deny, to: [{nodes: {matchExpressions: [{key: role, operator: In, "
                 "values: [infra, worker]}]}}]}\n"
                 "  - {action: Accept, to: [{nodes: {matchLabels: {role: infra}}}]}\n"
                 "  - {action: Accept, to: [{nodes: {matchLabels: {zone: a}}}]}\n"),
             {"cluster-rule-shadowed admin/p spec.egress[1]"}},
        // By the pods given: dev holds only the client, so "app=client anywhere" covers namespace dev.
        Case{"ShadowedForThePodsGiven",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: "
                 "{matchLabels: {app: client}}}}]}\n"
                 "  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {"cluster-rule-shadowed admin/p spec.ingress[1]"}},
        Case{"NotShadowedWhenAnotherPodIsInThePeer",
             R"(apiVersion: v1
kind: Pod
metadata: {name: other, namespace: dev, labels: {app: other}}
spec: {containers: [{name: c}]}
---
)" + Cnp("p", "Admin", 10, kProd,
         "  ingress:\n  - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: "
         "{matchLabels: {app: client}}}}]}\n"
         "  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {}},
        // ---- cluster-priority-tie ----
        Case{"TieOnOverlappingSubjects",
             Cnp("a", "Admin", 10, kProd, "  ingress:\n  - {action: Accept, from: [{namespaces: {}}]}\n") +
                 Cnp("b", "Admin", 10, "{pods: {podSelector: {matchLabels: {app: db}}}}",
                     "  ingress:\n  - {action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"),
             {"cluster-priority-tie admin/b spec.priority"}},
        Case{
            "NoTieAcrossTiers",
            Cnp("a", "Admin", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                Cnp("b", "Baseline", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n"),
            {}},
        Case{"NoTieBetweenIngressAndEgress",
             Cnp("a", "Admin", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                 Cnp("b", "Admin", 10, kProd, "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n"),
             {}},
        Case{"NoTieOnDisjointSubjects",
             Cnp("a", "Admin", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                 Cnp("b", "Admin", 10, "{namespaces: {matchLabels: {env: dev}}}",
                     "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n"),
             {}},
        // ---- cluster-pass-to-default ----
        Case{"PassWithNothingBelow",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {name: to-teams, action: Pass, from: [{namespaces: {matchLabels: {env: "
                 "dev}}}]}\n"),
             {"cluster-pass-to-default admin/p spec.ingress[0]"}},
        Case{"PassToNetworkPoliciesOfEveryPod",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Pass, from: [{namespaces: {matchLabels: {env: dev}}}]}\n") +
                 R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, namespace: prod}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
)",
             {}},
        Case{"PassToABaselineRule",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Pass, from: [{namespaces: {matchLabels: {env: dev}}}]}\n") +
                 Cnp("base", "Baseline", 10, kProd,
                     "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n"),
             {}},
        Case{"PassBesideABaselineRuleOnOtherPorts",
             Cnp("p", "Admin", 10, kProd,
                 "  ingress:\n  - {action: Pass, from: [{namespaces: {}}], protocols: [{tcp: "
                 "{destinationPort: {number: 80}}}]}\n") +
                 Cnp("base", "Baseline", 10, kProd,
                     "  ingress:\n  - {action: Deny, from: [{namespaces: {}}], protocols: [{tcp: "
                     "{destinationPort: {number: 443}}}]}\n"),
             {"cluster-pass-to-default admin/p spec.ingress[0]"}},
        Case{"PassInTheBaselineTier",
             Cnp("base", "Baseline", 10, kProd, "  egress:\n  - {action: Pass, to: [{namespaces: {}}]}\n"),
             {"cluster-pass-to-default baseline/base spec.egress[0]"}},
        // ---- baseline-unreachable ----
        Case{
            "BaselineBehindNetworkPolicies",
            Cnp("base", "Baseline", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
---
)",
            {"baseline-unreachable baseline/base spec.ingress[0]"}},
        Case{
            "BaselineReachesPodsNoNetworkPolicySelects",
            Cnp("base", "Baseline", 10, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
                R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec: {podSelector: {matchLabels: {app: db}}, ingress: [{}]}
---
)",
            {}},
        Case{"BaselineEgressNotBehindIngressPolicies",
             Cnp("base", "Baseline", 10, kProd, "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n") +
                 R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
---
)",
             {}},
        // ---- domain-names-unenforced, domain-wildcard-apex ----
        Case{
            "DomainNamesAcceptAndWildcard",
            Cnp("names", "Admin", 10, kProd,
                "  egress:\n  - {action: Accept, to: [{domainNames: [\"*.example.com\", api.example.org]}]}\n"
                "  - {action: Deny, to: [{networks: [0.0.0.0/0]}]}\n"),
            {"domain-wildcard-apex admin/names spec.egress[0].to[0].domainNames",
             "domain-names-unenforced admin/names spec.egress[0].to[0].domainNames"}},
        Case{"WildcardWithItsApex",
             Cnp("names", "Admin", 10, kProd,
                 "  egress:\n  - {action: Accept, to: [{domainNames: [\"*.example.com\"]}, {domainNames: "
                 "[example.com]}]}\n"),
             {"domain-names-unenforced admin/names spec.egress[0].to[0].domainNames",
              "domain-names-unenforced admin/names spec.egress[0].to[1].domainNames"}},
        Case{"NoDomainNames",
             Cnp("names", "Admin", 10, kProd,
                 "  egress:\n  - {action: Accept, to: [{networks: [0.0.0.0/0]}]}\n"),
             {}},
        // ---- egress-blocks-dns ----
        Case{"AdminDenyOfDns",
             kDns + Cnp("lockdown", "Admin", 10, kDev,
                        "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n"),
             {"egress-blocks-dns admin/lockdown spec.egress[0]"}},
        Case{"AdminDenyOfOtherPortsOnly",
             kDns + Cnp("lockdown", "Admin", 10, kDev,
                        "  egress:\n  - {action: Deny, to: [{namespaces: {}}], protocols: [{tcp: "
                        "{destinationPort: {number: 80}}}]}\n"),
             {}},
        Case{"AdminAcceptOfDnsBeforeTheDeny",
             kDns + Cnp("lockdown", "Admin", 10, kDev,
                        "  egress:\n  - {action: Accept, to: [{namespaces: {}}], protocols: [{udp: "
                        "{destinationPort: {number: 53}}}, {tcp: {destinationPort: {number: 53}}}]}\n"
                        "  - {action: Deny, to: [{namespaces: {}}]}\n"),
             {}},
        Case{"DenyOfDnsWithoutDnsPodsInTheInput",
             Cnp("lockdown", "Admin", 10, kDev, "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n"),
             {}},
        // A NetworkPolicy isolating dev/client for egress makes it final there:
        // the Baseline Deny never decides for it.
        Case{"BaselineDenyOfDnsBehindANetworkPolicy",
             kDns + kClientEgressOpen +
                 Cnp("default-deny", "Baseline", 10, kDev,
                     "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n"),
             {"baseline-unreachable baseline/default-deny spec.egress[0]"}}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// Each message names what it is about: the tier, policy, priority, rule index and name.
// (kube-system/coredns to itself is allowed: it never leaves its namespace.)
TEST(ClusterLintMessageTest, DnsDeniedNamesTheRuleThePodsAndTheTier) {
  const std::vector<Finding> admin =
      Findings(kCluster + kDns +
               Cnp("lockdown", "Admin", 10, kEverywhere,
                   "  egress:\n  - {name: no-dns, action: Deny, to: [{namespaces: {}}], protocols: [{udp: "
                   "{destinationPort: {number: 53}}}]}\n"));
  ASSERT_EQ(admin.size(), 1U);
  EXPECT_EQ(admin[0].rule, "no-dns");
  EXPECT_THAT(admin[0].message, HasSubstr("denies DNS: from dev/client (+2 more), the cluster DNS "
                                          "(kube-system/coredns) on 53/UDP; an Admin Deny is final"));
  const std::vector<Finding> baseline =
      Findings(kCluster + kDns +
               Cnp("quiet", "Baseline", 10, kDev, "  egress:\n  - {action: Deny, to: [{namespaces: {}}]}\n"));
  ASSERT_EQ(baseline.size(), 1U);
  EXPECT_THAT(baseline[0].message,
              HasSubstr("on 53/UDP and 53/TCP; no NetworkPolicy isolates these pods for egress, so the "
                        "Baseline tier decides"));
}

TEST(ClusterLintMessageTest, ShadowedNamesBothRules) {
  const std::vector<Finding> f = Findings(
      kCluster +
      Cnp("wide", "Admin", 10, kEverywhere,
          "  ingress:\n  - {name: no-dev, action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}\n") +
      Cnp("narrow", "Admin", 20, kProd,
          "  ingress:\n  - {name: dev-web, action: Accept, from: [{namespaces: {matchLabels: {env: "
          "dev}}}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(
      f[0].ToString(),
      "t.yaml:45:5: warning: [cluster-rule-shadowed] ClusterNetworkPolicy admin/narrow (Admin tier, "
      "priority 20): spec.ingress[0] (rule \"dev-web\"): its Accept never applies: every flow it could "
      "match is decided or passed before it by admin/wide ingress[0] no-dev (Deny, priority 10); remove "
      "it, or move it before that rule");
}

TEST(ClusterLintMessageTest, ShadowedForThePodsGivenSaysSo) {
  const std::vector<Finding> f = Findings(
      kCluster + Cnp("p", "Admin", 10, kProd,
                     "  ingress:\n  - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: "
                     "{matchLabels: {app: client}}}}]}\n"
                     "  - {action: Accept, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_THAT(f[0].message, HasSubstr("for the pods in the input"));
}

TEST(ClusterLintMessageTest, TieSaysNetpolsOrder) {
  const std::vector<Finding> f = Findings(
      kCluster + Cnp("b", "Admin", 7, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
      Cnp("a", "Admin", 7, kProd, "  ingress:\n  - {action: Accept, from: [{namespaces: {}}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0].policy, "admin/b");
  EXPECT_THAT(f[0].message,
              AllOf(HasSubstr("has the priority of admin/a (7)"), HasSubstr("prod/db, prod/web"),
                    HasSubstr("netpol evaluates admin/a first")));
}

TEST(ClusterLintMessageTest, TieBySelectorsWithoutPods) {
  // No pods: the subjects overlap because one's selectors contain the other's.
  const std::vector<Finding> f = Findings(
      Cnp("a", "Admin", 7, kProd, "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n") +
      Cnp("b", "Admin", 7,
          "{pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {matchLabels: {app: db}}}}",
          "  ingress:\n  - {action: Accept, from: [{namespaces: {}}]}\n") +
      Cnp("c", "Admin", 7, "{namespaces: {matchLabels: {env: dev}}}",
          "  ingress:\n  - {action: Accept, from: [{namespaces: {}}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0].policy, "admin/b");
  EXPECT_THAT(f[0].message, HasSubstr("the selectors of one subject contain the other's"));
}

TEST(ClusterLintMessageTest, PassCountsThePodsLeftToTheDefault) {
  const std::vector<Finding> f =
      Findings(kCluster +
               Cnp("p", "Admin", 10, kProd,
                   "  ingress:\n  - {name: to-teams, action: Pass, from: [{namespaces: {}}]}\n") +
               R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec: {podSelector: {matchLabels: {app: db}}, ingress: [{}]}
)");
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0].rule, "to-teams");
  EXPECT_THAT(f[0].message, AllOf(HasSubstr("for 1 of its 2 pods (prod/web)"), HasSubstr("as Accept would")));
}

TEST(ClusterLintMessageTest, BaselineUnreachableNamesRulesAndPolicies) {
  const std::vector<Finding> f = Findings(
      kCluster +
      Cnp("base", "Baseline", 10, kProd,
          "  ingress:\n  - {name: deny-dev, action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}\n"
          "  - {action: Accept, from: [{namespaces: {}}]}\n") +
      R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, namespace: prod}
spec: {podSelector: {}, ingress: [{}]}
)");
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0].field, "spec.ingress");
  EXPECT_THAT(f[0].message,
              AllOf(HasSubstr("its 2 ingress rules (ingress[0] deny-dev, ingress[1]) never apply"),
                    HasSubstr("by prod/all")));
}

TEST(ClusterLintMessageTest, DomainNamesSayWhatDecidesInstead) {
  const std::string accept =
      "  egress:\n  - {name: ex, action: Accept, to: [{domainNames: [example.com]}]}\n";
  // Something after it denies: the node may deny what check accepts by name.
  std::vector<Finding> f =
      Findings(kCluster + Cnp("names", "Admin", 10, kProd,
                              accept + "  - {name: rest, action: Deny, to: [{networks: [0.0.0.0/0]}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_THAT(f[0].message,
              HasSubstr("such as admin/names egress[1] rest (Deny, priority 10), which may deny it"));
  // A NetworkPolicy isolating the pods for egress decides instead.
  f = Findings(kCluster + Cnp("names", "Admin", 10, kProd, accept) + R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: prod}
spec: {podSelector: {}, policyTypes: [Egress]}
)");
  ASSERT_EQ(f.size(), 1U);
  EXPECT_THAT(f[0].message, HasSubstr("the NetworkPolicies isolating prod/db for egress (prod/out)"));
  // Nothing after it denies: it has no effect at all.
  f = Findings(kCluster + Cnp("names", "Admin", 10, kProd, accept));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_THAT(f[0].message, HasSubstr("has no effect: nothing after it can deny egress for its 2 pods"));
  // A Deny for names is refused by netpol enforce.
  f = Findings(kCluster + Cnp("names", "Admin", 10, kProd,
                              "  egress:\n  - {action: Deny, to: [{domainNames: [example.com]}]}\n"));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_THAT(f[0].message, AllOf(HasSubstr("a Deny for domain names cannot be enforced"),
                                  HasSubstr("`netpol enforce` refuses such input")));
}

// On random tiered clusters (both tiers, ties, every action and peer kind),
// what the lints claim holds for every flow the engine judges: a shadowed rule
// and an unreachable Baseline rule never decide or pass anything; a Pass said
// to fall through to the default for all its pods is always followed by the
// default allow. And the lints do fire there, or this would prove nothing.
TEST(ClusterLintSoundnessTest, ClaimsHoldForEveryFlow) {
  std::map<std::string, int> fired;
  size_t flows = 0;
  for (uint64_t seed = 0; seed < 150; ++seed) {
    testing::SeededChoices choices(seed);
    Engine engine;
    for (const api::Object& o : testing::GenerateTieredCluster(choices)) engine.Apply(o);
    // (policy, direction, rule) of every rule that decided or passed some flow,
    // and of every Pass followed by anything but the default allow.
    using Key = std::tuple<ClusterPolicyId, Direction, int>;
    std::set<Key> acted;
    std::set<Key> passed_to_more;
    std::vector<Endpoint> ends;
    for (const PodId id : engine.Pods()) ends.push_back(Endpoint::OfPod(id));
    for (const char* ip :
         {"198.18.0.3", "198.18.200.1", "2001:2::3", "198.19.0.1", "198.19.0.2", "203.0.113.9"}) {
      ends.push_back(Endpoint::OfIp(IpAddress::Parse(ip).value()));
    }
    Endpoint named = Endpoint::OfIp(IpAddress::Parse("203.0.113.10").value());
    named.domain = "example.com";
    ends.push_back(named);
    for (const PodId id : engine.Pods()) {
      if (!engine.pod(id).node.empty()) ends.push_back(Endpoint::OfNode(engine.pod(id).node));
    }
    const auto note = [&](const DirectionVerdict& d, Direction dir) {
      if (d.cluster_rule) acted.insert({d.cluster_rule->policy, dir, d.cluster_rule->rule});
      for (const ClusterRuleRef& p : d.passed) {
        acted.insert({p.policy, dir, p.rule});
        if (d.reason != Reason::kNotIsolated) passed_to_more.insert({p.policy, dir, p.rule});
      }
    };
    for (const Endpoint& src : ends) {
      for (const Endpoint& dst : ends) {
        if (src.kind != Endpoint::Kind::kPod && dst.kind != Endpoint::Kind::kPod) continue;
        for (const uint16_t port :
             {uint16_t{9}, uint16_t{53}, uint16_t{80}, uint16_t{8080}, uint16_t{8081}}) {
          for (const auto proto : {api::Protocol::kTCP, api::Protocol::kUDP, api::Protocol::kSCTP}) {
            for (const FamilyFlow& f : FamilyFlows(engine, src, dst, proto, port)) {
              const Verdict v = engine.Evaluate(f.flow);
              ++flows;
              note(v.egress, Direction::kEgress);
              note(v.ingress, Direction::kIngress);
            }
          }
        }
      }
    }
    for (const Finding& f : Lint(engine)) {
      if (!f.cluster) continue;
      const ClusterPolicyId id = engine.FindClusterPolicy(f.policy.substr(f.policy.find('/') + 1)).value();
      const Direction dir = f.field.starts_with("spec.ingress") ? Direction::kIngress : Direction::kEgress;
      const size_t open = f.field.find('[');
      const int rule = open == std::string::npos ? -1 : std::stoi(f.field.substr(open + 1));
      const std::string where = "seed " + std::to_string(seed) + ": " + f.ToString();
      if (f.check == "cluster-rule-shadowed") {
        EXPECT_EQ(acted.count({id, dir, rule}), 0U) << where;
      } else if (f.check == "baseline-unreachable") {
        const auto& rules =
            dir == Direction::kIngress ? engine.cluster_policy(id).ingress : engine.cluster_policy(id).egress;
        for (int r = 0; r < static_cast<int>(rules.size()); ++r)
          EXPECT_EQ(acted.count({id, dir, r}), 0U) << where;
      } else if (f.check == "cluster-pass-to-default" &&
                 (f.cluster->tier == api::Tier::kBaseline ||
                  f.message.find("decides for its ") != std::string::npos)) {
        EXPECT_EQ(passed_to_more.count({id, dir, rule}), 0U) << where;
      }
      ++fired[f.check];
    }
  }
  EXPECT_GT(flows, 100000U);
  for (const char* check : {"cluster-rule-shadowed", "cluster-priority-tie", "cluster-pass-to-default",
                            "baseline-unreachable", "domain-names-unenforced"}) {
    EXPECT_GT(fired[check], 5) << check;
  }
}

}  // namespace
}  // namespace netpol::policy
