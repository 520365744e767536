// The per-namespace selector index (internal::SelectorIndex) that new classes
// are matched through: it must follow policy edits and deletions and namespace
// relabels. After every step, each step making new classes in namespaces whose
// index was built before it, the engine's verdicts on every pod pair must equal
// the reference evaluator's on the objects applied so far.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/load.h"
#include "policy/engine.h"
#include "testutil/reference.h"

namespace netpol::policy {
namespace {

class SelectorIndexTest : public ::testing::Test {
 protected:
  // Applies the objects of `yaml` and keeps the current set (by kind,
  // namespace and name) for the comparison.
  void Apply(const std::string& yaml) {
    const api::LoadResult r = api::LoadText(yaml, "test.yaml", {});
    for (const auto& d : r.diagnostics) ADD_FAILURE() << d.ToString();
    for (const api::Object& o : r.objects) {
      engine_.Apply(o);
      std::erase_if(objects_,
                    [&](const api::Object& old) { return api::ObjectRef(old) == api::ObjectRef(o); });
      objects_.push_back(o);
    }
  }

  void Delete(const std::string& kind, const std::string& ns, const std::string& name) {
    ASSERT_TRUE(engine_.Delete(kind, ns, name));
    std::erase_if(objects_, [&](const api::Object& old) {
      return api::KindOf(old) == kind && api::MetaOf(old).namespace_ == ns && api::MetaOf(old).name == name;
    });
  }

  static std::string Pod(const std::string& name, const std::string& ns, const std::string& labels,
                         const std::string& ip) {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: " + ns + ", labels: {" +
           labels + "}}\nspec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: " +
           "8080}]}]}\nstatus: {podIP: " + ip + "}\n---\n";
  }

  static std::string Namespace(const std::string& name, const std::string& labels) {
    return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + ", labels: {" + labels + "}}\n---\n";
  }

  // A policy in namespace two selecting app=b, admitting the peers in `from`.
  static std::string Policy(const std::string& name, const std::string& from) {
    return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name +
           ", namespace: two}\nspec:\n  podSelector: {matchLabels: {app: b}}\n  ingress:\n  - from: " + from +
           "\n---\n";
  }

  void ExpectAgreesWithReference(const std::string& step) {
    EXPECT_EQ(testing::CompareEngineWithReference(engine_, objects_), "") << step;
  }

  Engine engine_;
  std::vector<api::Object> objects_;
};

TEST_F(SelectorIndexTest, FollowsPolicyEditsDeletionsAndNamespaceRelabels) {
  Apply(Namespace("one", "team: red") + Namespace("two", "team: blue") +
        Policy("p",
               "[{namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: a}}},"
               " {podSelector: {matchLabels: {tier: web}}}]"));
  // Classes in both namespaces: their indexes are built now.
  Apply(Pod("b", "two", "app: b", "198.18.0.1") + Pod("a", "one", "app: a", "198.18.0.2") +
        Pod("w", "two", "tier: web", "198.18.0.3"));
  ExpectAgreesWithReference("start");
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));

  // Edited: other labels, other namespaces. New classes meet the new peers only.
  Apply(Policy("p",
               "[{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {app: a2}}},"
               " {podSelector: {matchExpressions: [{key: tier, operator: In, values: [api]}]}}]"));
  Apply(Pod("a2", "one", "app: a2", "198.18.0.4") + Pod("a2", "two", "app: a2", "198.18.0.5") +
        Pod("w2", "two", "tier: web, x: z", "198.18.0.6") + Pod("api", "two", "tier: api", "198.18.0.7"));
  ExpectAgreesWithReference("after the edit");

  // Relabelled: namespace one is now selected; three appears selected from the start.
  Apply(Namespace("one", "team: blue") + Namespace("three", "team: blue"));
  Apply(Pod("a3", "one", "app: a2, v: '3'", "198.18.0.8") + Pod("a4", "three", "app: a2", "198.18.0.9") +
        Pod("r", "one", "app: a", "198.18.0.10"));
  ExpectAgreesWithReference("after the relabel");
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a3")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));

  // A second policy with an empty and an absent pod selector, then the first deleted.
  Apply(Policy("q", "[{namespaceSelector: {}}, {podSelector: {}}]"));
  Apply(Pod("nw", "three", "app: new", "198.18.0.11"));
  ExpectAgreesWithReference("with a second policy");
  Delete("NetworkPolicy", "two", "p");
  Delete("NetworkPolicy", "two", "q");
  Apply(Policy("p", "[{podSelector: {matchLabels: {app: a}}}]"));
  Apply(Pod("a5", "one", "app: a2, v: '5'", "198.18.0.12") +
        Pod("b2", "two", "app: b, v: '2'", "198.18.0.13") + Pod("a6", "two", "app: a", "198.18.0.14"));
  ExpectAgreesWithReference("after the deletion");
  EXPECT_FALSE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a5")),
                                Endpoint::OfPod(*engine_.FindPod("two", "b2")), api::Protocol::kTCP, 80}));
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("two", "a6")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b2")), api::Protocol::kTCP, 80}));
}

// The other way round: policies added after the classes, which they find
// through NamespaceRec::classes_by_label, kept as classes come and go.
TEST_F(SelectorIndexTest, NewPoliciesFindExistingClassesByLabel) {
  Apply(Namespace("one", "team: red") + Pod("a", "one", "app: a, tier: web", "198.18.0.1") +
        Pod("b", "two", "app: b", "198.18.0.2") + Pod("c", "one", "app: c", "198.18.0.3"));
  // a moves to another class (its old one is retired), c's class goes.
  Apply(Pod("a", "one", "app: a, tier: api", "198.18.0.1"));
  Delete("Pod", "one", "c");
  Apply(Pod("c2", "one", "app: c", "198.18.0.4"));
  Apply(Policy("p",
               "[{namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {tier: api}}},"
               " {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}]"));
  ExpectAgreesWithReference("policy after the classes");
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "c2")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));
  Apply(Pod("a", "one", "app: a, tier: web", "198.18.0.1"));
  Apply(Policy("p", "[{namespaceSelector: {}, podSelector: {matchLabels: {tier: api}}}]"));
  ExpectAgreesWithReference("after the class went");
  EXPECT_FALSE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a")),
                                Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));
  // By the name label: only that namespace is looked at; one not known yet is
  // found when it comes.
  Apply(Policy("p",
               "[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: one}}},"
               " {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: four, team: red}}}]"));
  ExpectAgreesWithReference("by name");
  Apply(Namespace("four", "team: red") + Pod("d", "four", "app: d", "198.18.0.5"));
  ExpectAgreesWithReference("by name, a namespace later");
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("four", "d")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));
  EXPECT_TRUE(engine_.Allowed({Endpoint::OfPod(*engine_.FindPod("one", "a")),
                               Endpoint::OfPod(*engine_.FindPod("two", "b")), api::Protocol::kTCP, 80}));
}

}  // namespace
}  // namespace netpol::policy
