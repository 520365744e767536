// End-to-end tests on real packets (root; CI runs them as root). Each test
// builds its own network namespaces with a unique prefix and removes them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "api/load.h"
#include "base/netns.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/routes.h"
#include "e2e/lab.h"
#include "e2e/packet_scenario.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"
#include "testutil/golden.h"
#include "testutil/scenario.h"

namespace netpol::testing {
namespace {

class PacketScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PacketScenarioTest, PacketsAgreeWithEngine) {
  NETPOL_REQUIRE_E2E();
  const std::string text = ReadFileOrDie(SourceDir() + "/tests/scenarios/" + GetParam());
  const PacketRunResult r = RunScenarioOnPackets(text, "tests/scenarios/" + GetParam());
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
  // A file whose checks all went unchecked would pass on nothing.
  EXPECT_GT(r.checked, 0) << "no check of " << GetParam() << " could be expressed on packets";
  RecordProperty("checked_on_packets", r.checked);
  RecordProperty("skipped", r.skipped);
  std::printf("%s: %d checks on packets, %d not expressible on packets\n", GetParam().c_str(), r.checked,
              r.skipped);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, PacketScenarioTest, ::testing::ValuesIn(ListScenarioFiles()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.substr(0, param_info.param.find('.'));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Tcp InSegs of a namespace (/proc/net/snmp), read from a thread inside it.
uint64_t TcpSegmentsIn(const std::string& netns) {
  uint64_t value = 0;
  std::thread reader([&] {
    auto guard = NetnsGuard::Enter(netns);
    if (!guard) return;
    std::ifstream in("/proc/thread-self/net/snmp");
    std::string header;
    std::string values;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with("Tcp:")) continue;
      if (header.empty()) {
        header = line;
      } else {
        values = line;
      }
    }
    std::istringstream names(header);
    std::istringstream numbers(values);
    std::string name;
    std::string number;
    while (names >> name && numbers >> number) {
      if (name == "InSegs") value = std::stoull(number);
    }
  });
  reader.join();
  return value;
}

// Every set's elements, with each NetworkPolicy group's id replaced by
// the pod addresses it dispatches (ids are numbers a backend gives out: a
// table rebuilt from scratch numbers its groups anew, with equal contents).
std::map<std::string, std::set<std::string>> CanonicalElements(dataplane::nft::NftBackend& backend) {
  std::map<std::string, std::set<std::string>> out;
  const auto table = backend.Observe();
  EXPECT_TRUE(table.ok());
  if (!table.ok()) return out;
  std::map<std::string, std::string> pods_of;  // group chain -> "group[addresses]"
  for (const char* map : {"in_np_v4", "in_np_v6", "eg_np_v4", "eg_np_v6"}) {
    for (const auto& [e, c] : table->sets.at(map).elements) {
      if (e.verdict() == dataplane::nft::Verdict::kGoto) pods_of[std::string(e.chain())] += e.KeyText() + ",";
    }
  }
  const auto canonical = [&](std::string text) {
    for (const auto& [chain, pods] : pods_of) {
      if (!dataplane::nft::GroupIdOf(chain)) continue;
      for (size_t at = text.find(chain); at != std::string::npos; at = text.find(chain, at + 1)) {
        const size_t end = at + chain.size();
        if (end < text.size() && text[end] != '_') continue;  // g1 is not g12
        text.replace(at, chain.size(), "group[" + pods + "]");
      }
    }
    return text;
  };
  for (const auto& [name, set] : table->sets) {
    std::set<std::string>& elements = out[canonical(name)];
    for (const auto& [e, c] : set.elements) elements.insert(canonical(e.Text()));
  }
  return out;
}

// A small fixture: three pods of the guide, enforced by netpol.
class EnforcedLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPOL_REQUIRE_E2E();
    ASSERT_TRUE(lab_.Up({{"198.18.7.10", "2001:2::7:10"}, {"198.18.7.11", ""}, {"198.18.7.12", ""}}).ok());
    ASSERT_TRUE(lab_.Serve({{api::Protocol::kTCP, 3306}, {api::Protocol::kTCP, 80}}).ok());
    auto backend = dataplane::nft::NftBackend::Create({lab_.node(), {}});
    ASSERT_TRUE(backend.ok()) << backend.error().message();
    backend_ = std::move(*backend);
  }

  // `adjust`, when given, edits the compiled program before it is applied.
  // `pods`, when given, replaces Pods() (relabelled pods).
  void Enforce(const std::string& yaml, const std::function<void(policy::NodeProgram&)>& adjust = {},
               const std::string& pods = "") {
    const api::LoadResult loaded = api::LoadText((pods.empty() ? Pods() : pods) + yaml, "test.yaml", {});
    ASSERT_TRUE(loaded.ok());
    policy::Engine engine;
    for (const auto& o : loaded.objects) engine.Apply(o);
    const auto routes = dataplane::HostRoutes(lab_.node());
    ASSERT_TRUE(routes.ok());
    policy::NodeProgram program = policy::CompileNode(engine, policy::LocalPodsByAddress(engine, *routes));
    if (adjust) adjust(program);
    const auto applied = backend_->Apply(std::move(program));
    ASSERT_TRUE(applied.ok()) << applied.error().message();
    last_ = *applied;
  }
  dataplane::ApplyStats last_;

  static std::string Pods() {
    return R"(apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db}}
spec: {containers: [{name: c, ports: [{name: mysql, containerPort: 3306}]}]}
status: {podIP: 198.18.7.10, podIPs: [{ip: 198.18.7.10}, {ip: "2001:2::7:10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.7.11}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.7.12}
---
)";
  }

  static constexpr const char* kAllowWebToDb = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 3306}]}]
)";

  bool Reaches(const std::string& from, const std::string& to, uint16_t port = 3306) {
    const auto r = lab_.Reaches(from, to, api::Protocol::kTCP, port, std::chrono::milliseconds(250));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() && *r;
  }

  std::map<std::string, std::set<std::string>> Elements() { return CanonicalElements(*backend_); }

  std::set<std::string> Chains() {
    const auto table = backend_->Observe();
    EXPECT_TRUE(table.ok());
    if (!table.ok()) return {};
    return {table->chains.begin(), table->chains.end()};
  }

  PacketLab lab_;
  std::unique_ptr<dataplane::nft::NftBackend> backend_;
};

TEST_F(EnforcedLabTest, SpoofedSourceAddressIsDropped) {
  Enforce(kAllowWebToDb);
  ASSERT_TRUE(Reaches("198.18.7.11", "198.18.7.10"));
  ASSERT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
  // The client borrows web's address, the one the policy allows.
  const std::string ns = lab_.PodNetns("198.18.7.12");
  ASSERT_EQ(std::system(("ip -n " + ns + " addr add 198.18.7.11/32 dev eth0").c_str()), 0);
  ASSERT_EQ(
      std::system(
          ("ip -n " + ns + " route replace 198.18.7.10/32 via 169.254.1.1 dev eth0 src 198.18.7.11").c_str()),
      0);
  // The reply would go to web, so the client never connects either way; what
  // matters is whether the spoofed SYN reached db at all: count db's TCP input.
  const uint64_t before = TcpSegmentsIn(lab_.PodNetns("198.18.7.10"));
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
  EXPECT_EQ(TcpSegmentsIn(lab_.PodNetns("198.18.7.10")), before) << "a spoofed SYN reached the server";
}

// A pod programmed ahead of its ADD (reserved: addresses known, not wired):
// its address is claimed, so nothing sends from it, even what its policy
// allows; once it is wired (the same program with its interface) it may.
TEST_F(EnforcedLabTest, AReservedPodsAddressSendsNothingUntilItIsWired) {
  const auto reserve_web = [](policy::NodeProgram& program) {
    policy::LocalPod& web = program.pods.at("default/web");
    web.interface.clear();
    web.reserved = true;
  };
  Enforce(kAllowWebToDb, reserve_web);
  const uint64_t before = TcpSegmentsIn(lab_.PodNetns("198.18.7.10"));
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10"));
  EXPECT_EQ(TcpSegmentsIn(lab_.PodNetns("198.18.7.10")), before)
      << "a SYN from a reserved address got through";
  Enforce(kAllowWebToDb);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10"));
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
}

TEST_F(EnforcedLabTest, FailedTransactionLeavesPreviousRulesInForce) {
  Enforce(kAllowWebToDb);
  const auto before = backend_->Observe();
  ASSERT_TRUE(before.ok());
  // A transaction whose first command is valid and whose second fails: the kernel
  // must apply neither.
  const auto failed = backend_->RunForTest(
      "delete element inet netpol in_np_g1_v4_exact { 198.18.7.11 . tcp . 3306 }\n"
      "add element inet netpol no_such_set { 198.18.7.1 }\n");
  ASSERT_FALSE(failed.ok());
  const auto after = backend_->Observe();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(before->sets.at("in_np_g1_v4_exact").elements.size(), 1u) << "db's group, the first";
  EXPECT_EQ(after->sets.at("in_np_g1_v4_exact").elements, before->sets.at("in_np_g1_v4_exact").elements);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10"));
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
}

TEST_F(EnforcedLabTest, RestartAdoptsTheTableWithoutChanges) {
  Enforce(kAllowWebToDb);
  // Another inet table beside netpol's, with a set and a chain of netpol's
  // names: the read-back lists the family's ruleset and keeps netpol's.
  ASSERT_EQ(
      std::system(
          ("ip netns exec " + lab_.node() +
           " nft 'table inet np_neighbour { set in_np_v4 { type ipv4_addr; elements = { 198.18.9.9 } }; "
           "chain forward { ip saddr 198.18.9.9 drop; }; }'")
              .c_str()),
      0);
  // A new backend (a restarted agent) finds the table and has nothing to do.
  auto again = dataplane::nft::NftBackend::Create({lab_.node(), {}});
  ASSERT_TRUE(again.ok());
  backend_ = std::move(*again);
  const auto before = backend_->Observe();
  Enforce(kAllowWebToDb);
  const auto after = backend_->Observe();
  ASSERT_TRUE(before.ok() && after.ok());
  // Adopted, not rebuilt: a restart that deleted and recreated the table (or
  // re-added what was there) would leave the same counts but not these.
  EXPECT_FALSE(last_.created);
  EXPECT_EQ(last_.added, 0u);
  EXPECT_EQ(last_.removed, 0u);
  for (const auto& [name, set] : before->sets) {
    std::set<std::string> a;
    std::set<std::string> b;
    for (const auto& [e, c] : set.elements) a.insert(e.Text());
    for (const auto& [e, c] : after->sets.at(name).elements) b.insert(e.Text());
    EXPECT_EQ(a, b) << name;
  }
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10"));
  // The neighbour's set and chain are not netpol's: what was read is what
  // nft lists of netpol's table alone.
  const auto alone = backend_->ObserveThroughJson();
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(after->chains, alone->chains);
  EXPECT_EQ(after->rule_forms, alone->rule_forms);
  EXPECT_EQ(after->sets.at("in_np_v4").elements, alone->sets.at("in_np_v4").elements);
  for (const auto& [e, c] : after->sets.at("in_np_v4").elements) EXPECT_NE(e.KeyText(), "198.18.9.9");
  EXPECT_EQ(std::system(("ip netns exec " + lab_.node() + " nft delete table inet np_neighbour").c_str()), 0);
}

// db allows web; then client as well (the rule's peers gain client).
constexpr const char* kAllowWebAndClientToDb = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: In, values: [web, client]}]}}],
             ports: [{port: 3306}]}]
)";

TEST_F(EnforcedLabTest, IncrementalUpdateEqualsRebuild) {
  Enforce(kAllowWebToDb);
  Enforce("");  // no policies: elements removed incrementally, db's groups with them
  EXPECT_TRUE(Reaches("198.18.7.12", "198.18.7.10"));
  Enforce(kAllowWebToDb);
  EXPECT_GT(last_.added, 0u);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10")) << "the new group's elements are in force";
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
  Enforce(kAllowWebAndClientToDb);
  EXPECT_TRUE(last_.batched) << "a group's hash-set edits go as a netlink batch";
  EXPECT_TRUE(Reaches("198.18.7.12", "198.18.7.10")) << "the batch's allow elements are in force";
  // The batch's elements carry their comments as nft writes them (db's
  // group is the third: the first two went with the policy).
  const auto listed = backend_->Show();
  ASSERT_TRUE(listed.ok());
  EXPECT_NE(listed->find("198.18.7.12 . tcp . 3306 comment \"default/db ingress[0]\""), std::string::npos)
      << *listed;
  const auto incremental = Elements();
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(kAllowWebAndClientToDb);  // from scratch
  EXPECT_EQ(Elements(), incremental);
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(kAllowWebToDb);
  Enforce(kAllowWebAndClientToDb);
  EXPECT_EQ(Elements(), incremental);
}

// db allows a block of addresses on a range of ports: an interval element of
// its group's `_ranges` set (its key and its key end).
std::string AllowBlockToDb(const std::string& cidr) {
  return R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{ipBlock: {cidr: )" +
         cidr + R"(}}], ports: [{port: 3300, endPort: 3310}]}]
)";
}

// A block narrowed and widened again: the group's interval element is
// replaced in place, deleted (by its key and key end) and added in one
// netlink batch, and traffic follows.
TEST_F(EnforcedLabTest, ARangeEditedInPlaceGoesAsABatch) {
  Enforce(AllowBlockToDb("198.18.7.0/28"));
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306)) << "web is in the block";
  const std::set<std::string> chains = Chains();
  Enforce(AllowBlockToDb("198.18.7.0/30"));
  EXPECT_TRUE(last_.batched) << "interval elements go as a netlink batch";
  EXPECT_FALSE(last_.created);
  EXPECT_GE(last_.removed, 1u);
  EXPECT_GE(last_.added, 1u);
  EXPECT_EQ(Chains(), chains) << "edited in place";
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10", 3306)) << "the old range is gone";
  EXPECT_TRUE(backend_->Verify().value_or(std::vector<std::string>{"unreadable"}).empty());
  Enforce(AllowBlockToDb("198.18.7.0/28"));
  EXPECT_TRUE(last_.batched);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306)) << "the wide range is back";
  const auto incremental = Elements();
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(AllowBlockToDb("198.18.7.0/28"));
  EXPECT_EQ(Elements(), incremental);
}

// The agent's /metrics counts connections while its programming loop
// applies and reads back: the two must not share a netlink socket (one's
// answers would be taken for the other's). Bounded: 40 updates.
TEST_F(EnforcedLabTest, CountingRunsBesideApplyAndVerify) {
  Enforce(kAllowWebToDb);
  std::atomic<bool> done{false};
  std::atomic<int> counted{0};
  std::atomic<int> count_failures{0};
  std::thread scraper([&] {
    while (!done.load()) {
      const auto counts = backend_->CountConnections();
      (counts.ok() ? counted : count_failures)++;
    }
  });
  for (int i = 0; i < 40; ++i) {
    Enforce(i % 2 == 0 ? kAllowWebAndClientToDb : kAllowWebToDb);
    if (i % 10 == 9) {
      EXPECT_TRUE(backend_->Verify().value_or(std::vector<std::string>{"unreadable"}).empty())
          << "update " << i;
    }
  }
  done = true;
  scraper.join();
  EXPECT_GT(counted.load(), 5);
  EXPECT_EQ(count_failures.load(), 0);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306));
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10", 3306));
}

// A peer joining a rule's peers edits the group of the pods that have the
// rule in place: the peer's elements, in the group's sets, and nothing else
// (no chain created, none deleted, no pod's element); leaving, the same.
TEST_F(EnforcedLabTest, APeerJoiningEditsTheGroupInPlace) {
  Enforce(kAllowWebToDb);
  const std::set<std::string> chains = Chains();
  ASSERT_TRUE(chains.contains("in_np_g1_v4") && chains.contains("in_np_g2_v6")) << "db's groups";
  ASSERT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
  const api::LoadResult loaded = api::LoadText(Pods() + kAllowWebAndClientToDb, "test.yaml", {});
  ASSERT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const auto& o : loaded.objects) engine.Apply(o);
  const auto routes = dataplane::HostRoutes(lab_.node());
  ASSERT_TRUE(routes.ok());
  const auto plan = backend_->Plan(policy::CompileNode(engine, policy::LocalPodsByAddress(engine, *routes)));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(*plan,
            "add element inet netpol in_np_g1_v4_exact { 198.18.7.12 . tcp . 3306 comment "
            "\"default/db ingress[0]\" }\n");
  Enforce(kAllowWebAndClientToDb);
  EXPECT_EQ(last_.added, 1u) << "client . tcp . 3306 in db's IPv4 group (client has no IPv6 address)";
  EXPECT_EQ(last_.removed, 0u);
  EXPECT_FALSE(last_.created);
  EXPECT_TRUE(last_.batched);
  EXPECT_EQ(Chains(), chains);
  EXPECT_TRUE(Reaches("198.18.7.12", "198.18.7.10"));
  Enforce(kAllowWebToDb);
  EXPECT_EQ(last_.added, 0u);
  EXPECT_EQ(last_.removed, 1u);
  EXPECT_EQ(Chains(), chains);
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10"));
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10"));
  EXPECT_TRUE(backend_->Verify().value_or(std::vector<std::string>{"unreadable"}).empty());
}

// A local pod relabelled into a group that exists changes its dispatch
// element, and nothing else: no chain created or deleted, no group edited.
TEST_F(EnforcedLabTest, APodRelabelledIntoAGroupChangesOneElement) {
  const std::string deny_all_ingress = std::string(kAllowWebToDb) + R"(---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress]}
)";
  std::string relabelled = Pods();
  const std::string client_label = "name: client, labels: {app: client}";
  relabelled.replace(relabelled.find(client_label), client_label.size(), "name: client, labels: {app: db}");
  // The table as it is, group ids and all (they must not change).
  const auto raw = [&] {
    std::map<std::string, std::set<std::string>> out;
    const auto table = backend_->Observe();
    EXPECT_TRUE(table.ok());
    if (!table.ok()) return out;
    for (const auto& [name, set] : table->sets) {
      for (const auto& [e, c] : set.elements) out[name].insert(e.Text());
      out[name];
    }
    return out;
  };
  Enforce(deny_all_ingress);
  const std::set<std::string> chains = Chains();
  const auto before = raw();
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.12"));
  Enforce(deny_all_ingress, {}, relabelled);
  EXPECT_EQ(last_.added, 1u) << "client's dispatch element, to db's group";
  EXPECT_EQ(last_.removed, 1u) << "client's dispatch element, to the deny-all group web keeps";
  EXPECT_FALSE(last_.created);
  EXPECT_TRUE(last_.batched) << "a dispatch element's goto goes as a netlink batch";
  EXPECT_EQ(Chains(), chains);
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.12"));
  auto after = raw();
  EXPECT_NE(after, before);
  std::vector<std::string> differ;
  for (const auto& [set, elements] : after) {
    if (before.at(set) != elements) differ.push_back(set);
  }
  EXPECT_EQ(differ, std::vector<std::string>{"in_np_v4"});
  Enforce(deny_all_ingress);  // and back
  EXPECT_EQ(last_.added + last_.removed, 2u);
  EXPECT_EQ(raw(), before);
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.12"));
}

// A policy that only adds to (then takes from) what an isolated pod allows is
// edited in place (RenderGroupAllowanceChange): packets follow, and the table
// ends as a rebuild from scratch would make it.
TEST_F(EnforcedLabTest, AllowanceGainedAndLostInPlaceEqualsRebuild) {
  const std::string client_to_db_http = std::string(kAllowWebToDb) + R"(---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-http}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 80}]}]
)";
  Enforce(kAllowWebToDb);
  ASSERT_FALSE(Reaches("198.18.7.12", "198.18.7.10", 80));
  Enforce(client_to_db_http);
  EXPECT_EQ(last_.added, 1u) << "client . tcp . 80 in db's IPv4 group, nothing else";
  EXPECT_EQ(last_.removed, 0u);
  EXPECT_TRUE(Reaches("198.18.7.12", "198.18.7.10", 80));
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10", 3306));
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306));
  const auto gained = Elements();
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(client_to_db_http);
  EXPECT_EQ(Elements(), gained);
  Enforce(kAllowWebToDb);  // lost again
  EXPECT_EQ(last_.removed, 1u);
  EXPECT_EQ(last_.added, 0u);
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.10", 80));
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306));
  const auto lost = Elements();
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(kAllowWebToDb);
  EXPECT_EQ(Elements(), lost);
}

// docs/SEMANTICS.md §5: an established connection keeps flowing after a policy
// change that would deny it (conntrack accepts it first); new ones are denied.
TEST_F(EnforcedLabTest, OpenConnectionSurvivesAPolicyChange) {
  Enforce(kAllowWebToDb);
  std::atomic<int> stage{0};  // 1: connected; 2: policy changed; 3/-1: echo received / failed
  std::thread client([&] {
    auto guard = NetnsGuard::Enter(lab_.PodNetns("198.18.7.11"));
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in db{};
    db.sin_family = AF_INET;
    db.sin_port = htons(3306);
    db.sin_addr.s_addr = htonl(IpAddress::Parse("198.18.7.10")->v4());
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!guard || ::connect(fd, reinterpret_cast<sockaddr*>(&db), sizeof(db)) != 0) {
      stage = -1;
      ::close(fd);
      return;
    }
    stage = 1;
    while (stage == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    char buffer[16];
    const bool echoed =
        ::send(fd, "after\n", 6, MSG_NOSIGNAL) == 6 && ::recv(fd, buffer, sizeof(buffer), 0) > 0;
    stage = echoed ? 3 : -1;
    ::close(fd);
  });
  while (stage == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(stage.load(), 1) << "could not connect before the change";
  Enforce(
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec: {podSelector: "
      "{}}\n");
  stage = 2;
  client.join();
  EXPECT_EQ(stage.load(), 3) << "the established connection was cut by the policy change";
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10")) << "a new connection passed the new default-deny";
}

// ClusterNetworkPolicy tiers on packets (docs/SEMANTICS.md §21): an Admin
// Deny over a NetworkPolicy's allow, a Pass to it, a Baseline Deny for pods
// NetworkPolicies leave alone, by `networks` for ICMP too; adopted as they
// are on a restart, and edited to what a rebuild makes.
constexpr const char* kTiers = R"(apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard-db}
spec:
  tier: Admin
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}}
  ingress:
  - {name: web-to-np, action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}], protocols: [{tcp: {destinationPort: {number: 3306}}}]}
  - {name: no-web, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: client-default}
spec:
  tier: Baseline
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}
  egress:
  - {name: not-web, action: Deny, to: [{networks: [198.18.7.11/32]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 3306}, {port: 80}]}]
)";

TEST_F(EnforcedLabTest, TiersOnPacketsIcmpIncluded) {
  Enforce(kTiers);
  const auto ping = [&](const char* from, const char* to) {
    const auto r = lab_.Pings(from, to, std::chrono::milliseconds(300));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() && *r;
  };
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 3306)) << "passed to the NetworkPolicy, which allows it";
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10", 80))
      << "the Admin Deny before the NetworkPolicy's allow";
  EXPECT_FALSE(ping("198.18.7.11", "198.18.7.10")) << "the Admin Deny has no protocols: ICMP too";
  EXPECT_FALSE(Reaches("198.18.7.12", "198.18.7.11", 80)) << "the Baseline Deny by networks";
  EXPECT_FALSE(ping("198.18.7.12", "198.18.7.11")) << "networks match ICMP";
  EXPECT_TRUE(ping("198.18.7.11", "198.18.7.12")) << "no tier, no policy: allowed";
  EXPECT_TRUE(ping("198.18.7.10", "198.18.7.12"));
  // The deciding rule's map element counts it and names it.
  const auto listed = backend_->Show();
  ASSERT_TRUE(listed.ok());
  EXPECT_NE(listed->find("comment \"admin/guard-db ingress[1] no-web\" : goto ingress_admin_deny_v4"),
            std::string::npos)
      << *listed;
  // And the verdict chains count it on the deciding pod's element.
  const auto denied = backend_->ObserveSet("in_admin_denied_v4");
  ASSERT_TRUE(denied.ok()) << denied.error().message();
  EXPECT_GE(denied->elements.at(dataplane::nft::Element::Of(
                {dataplane::nft::Field::Address(*IpAddress::Parse("198.18.7.10"))})),
            2u)
      << "TCP 80 and the ping, denied at db";
}

// A pod's connection to its own node is its egress (docs/SEMANTICS.md §10), also
// in chained mode, where the pod's host-side interface is another plugin's
// bridge and the program has none for it. The Admin tier's `nodes` peers need
// it: the network-policy-api suite's CNPAdminTierEgressNodePeers failed in the
// chained cluster for the client pod on the server's node (the input chain
// judged only packets from netpol's own pod interfaces).
TEST_F(EnforcedLabTest, APodsConnectionToItsOwnNodeIsItsEgressChainedToo) {
  // An address of the node itself, answered by the node's kernel (INPUT).
  ASSERT_EQ(std::system(("ip -n " + lab_.node() + " addr add 198.18.7.1/32 dev lo").c_str()), 0);
  const auto ping = [&](const char* from) {
    const auto r = lab_.Pings(from, "198.18.7.1", std::chrono::milliseconds(300));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() && *r;
  };
  constexpr const char* kWebNoEgress = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-no-egress}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress]}
)";
  for (const bool chained : {false, true}) {
    SCOPED_TRACE(chained ? "chained: no pod interfaces in the program" : "standalone");
    Enforce(kWebNoEgress, [&](policy::NodeProgram& program) {
      if (!chained) return;
      for (auto& [name, pod] : program.pods) pod.interface.clear();
    });
    EXPECT_FALSE(ping("198.18.7.11")) << "web is isolated for egress and nothing allows its node";
    EXPECT_TRUE(ping("198.18.7.12")) << "client is not isolated";
  }
}

// The class chains of the tiers in the table (ruleset.h).
std::set<std::string> ClassChains(dataplane::nft::NftBackend& backend) {
  std::set<std::string> out;
  const auto table = backend.Observe();
  EXPECT_TRUE(table.ok());
  if (!table.ok()) return out;
  for (const std::string& chain : table->chains) {
    if (dataplane::nft::TierClassOf(chain) && !dataplane::nft::GroupIdOf(chain)) out.insert(chain);
  }
  return out;
}

TEST_F(EnforcedLabTest, TiersAdoptedOnRestartAndEditedAsARebuild) {
  Enforce(kTiers);
  // db's Admin ingress and client's Baseline egress, IPv4; db's IPv6 address has no boxes.
  const std::set<std::string> classes = ClassChains(*backend_);
  EXPECT_EQ(classes.size(), 2u);
  auto again = dataplane::nft::NftBackend::Create({lab_.node(), {}});
  ASSERT_TRUE(again.ok());
  backend_ = std::move(*again);
  Enforce(kTiers);
  EXPECT_FALSE(last_.created) << "a restarted backend adopts the table";
  EXPECT_EQ(last_.added, 0u);
  EXPECT_EQ(last_.removed, 0u);
  EXPECT_EQ(ClassChains(*backend_), classes);
  // The Admin rules swapped: web is denied 3306 too, then nothing else changes.
  std::string swapped = kTiers;
  const std::string pass = "  - {name: web-to-np";
  const size_t a = swapped.find(pass);
  const size_t b = swapped.find("  - {name: no-web");
  const size_t end = swapped.find('\n', b) + 1;
  swapped =
      swapped.substr(0, a) + swapped.substr(b, end - b) + swapped.substr(a, b - a) + swapped.substr(end);
  Enforce(swapped);
  EXPECT_GT(last_.added + last_.removed, 0u);
  EXPECT_FALSE(last_.created) << "a new class chain, not a new table";
  EXPECT_TRUE(last_.batched);
  EXPECT_EQ(last_.commands.find("elements"), std::string::npos)
      << "the new class maps are created empty; their elements go in the batch that points pods at them:\n"
      << last_.commands;
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10", 3306));
  const std::set<std::string> swapped_classes = ClassChains(*backend_);
  EXPECT_EQ(swapped_classes.size(), 2u) << "db's old Admin chain went with its last pod";
  std::vector<std::string> kept;
  std::set_intersection(classes.begin(), classes.end(), swapped_classes.begin(), swapped_classes.end(),
                        std::back_inserter(kept));
  EXPECT_EQ(kept.size(), 1u) << "client's Baseline chain did not change";
  EXPECT_TRUE(backend_->Verify().value_or(std::vector<std::string>{"unreadable"}).empty());
  // A restarted backend that finds the old rules adopts them too: new chains
  // for the swapped rules, the old ones deleted, in one transaction.
  Enforce(kTiers);
  again = dataplane::nft::NftBackend::Create({lab_.node(), {}});
  ASSERT_TRUE(again.ok());
  backend_ = std::move(*again);
  Enforce(swapped);
  EXPECT_FALSE(last_.created);
  EXPECT_EQ(ClassChains(*backend_), swapped_classes);
  EXPECT_FALSE(Reaches("198.18.7.11", "198.18.7.10", 3306));
  const auto incremental = Elements();
  ASSERT_TRUE(backend_->Remove().ok());
  Enforce(swapped);
  EXPECT_EQ(Elements(), incremental);
  Enforce("");  // every tier element goes, and every class chain
  EXPECT_TRUE(ClassChains(*backend_).empty());
  EXPECT_TRUE(Reaches("198.18.7.11", "198.18.7.10", 80));
  for (const auto& [name, set] : Elements()) {
    if (name.find("admin") != std::string::npos || name.find("base") != std::string::npos) {
      EXPECT_TRUE(set.empty()) << name;
    }
  }
}

// Random changes (pods come, go and take others' labels; policies go, come
// and take others' rules) applied one after another by one backend end where
// a backend that renders each program from scratch does, group ids aside:
// the groups kept, edited in place, created and deleted add up.
TEST(IncrementalGroupsTest, RandomChangesEqualAFreshTable) {
  NETPOL_REQUIRE_E2E();
  const std::string a = "np-grp-a-" + std::to_string(::getpid());
  const std::string b = "np-grp-b-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("ip netns add " + a + " && ip netns add " + b).c_str()), 0);
  struct Cleanup {
    std::string a, b;
    ~Cleanup() { (void)std::system(("ip netns del " + a + "; ip netns del " + b).c_str()); }
  } cleanup{a, b};
  int steps = 0;
  int in_place = 0;    // steps that edited some group's sets without creating or deleting chains
  int in_steps = 0;    // steps that created or deleted chains in three transactions (the elements batched)
  int ranged = 0;      // interval elements read back both ways
  int dispatched = 0;  // map elements read back both ways
  int ranges_batched = 0;  // steps that edited a group's interval set in a netlink batch
  for (uint64_t seed = 0; seed < 30; ++seed) {
    auto incremental = dataplane::nft::NftBackend::Create({a, {}});
    auto fresh = dataplane::nft::NftBackend::Create({b, {}});
    ASSERT_TRUE(incremental.ok() && fresh.ok());
    SeededChoices choices(seed);
    std::vector<api::Object> objects = GenerateSmallCluster(choices);
    policy::Engine engine;
    for (const auto& o : objects) engine.Apply(o);
    std::map<std::string, std::string> local;
    for (const policy::PodId id : engine.Pods())
      local[engine.pod(id).FullName()] = "veth" + std::to_string(local.size());
    for (int step = 0; step < 8; ++step) {
      const policy::NodeProgram program = policy::CompileNode(engine, local);
      const auto before = (*incremental)->Observe();
      ASSERT_TRUE(before.ok());
      const auto applied = (*incremental)->Apply(program);
      ASSERT_TRUE(applied.ok()) << applied.error().message();
      ASSERT_TRUE((*fresh)->Remove().ok());
      ASSERT_TRUE((*fresh)->Apply(program).ok());
      ASSERT_EQ(CanonicalElements(**incremental), CanonicalElements(**fresh))
          << "seed " << seed << " step " << step;
      EXPECT_TRUE((*incremental)->Verify().value_or(std::vector<std::string>{"unreadable"}).empty());
      const auto after = (*incremental)->Observe();
      ASSERT_TRUE(after.ok());
      // The netlink dumps read what nft's own JSON listing reads.
      const auto through_json = (*incremental)->ObserveThroughJson();
      ASSERT_TRUE(through_json.ok()) << through_json.error().message();
      ASSERT_EQ(after->sets.size(), through_json->sets.size());
      ASSERT_EQ(after->chains, through_json->chains);
      ASSERT_EQ(after->rules, through_json->rules);
      ASSERT_EQ(after->rule_forms, through_json->rule_forms);
      for (const auto& [name, set] : after->sets) {
        ASSERT_EQ(set.elements, through_json->sets.at(name).elements) << "seed " << seed << " set " << name;
        for (const auto& [element, packets] : set.elements) {
          ranged += element.ranged() ? 1 : 0;
          dispatched += element.verdict() == dataplane::nft::Verdict::kGoto ? 1 : 0;
        }
      }
      if (step > 0 && before->chains != after->chains && applied->batched) ++in_steps;
      if (step > 0 && applied->batched) {
        for (const auto& [name, set] : after->sets) {
          const auto was = before->sets.find(name);
          if (name.ends_with("_ranges") && was != before->sets.end() &&
              was->second.elements != set.elements) {
            ++ranges_batched;
            break;
          }
        }
      }
      if (step > 0 && before->chains == after->chains) {
        for (const auto& [name, set] : after->sets) {
          const auto owner = dataplane::nft::TierClassOf(name);
          if (owner && dataplane::nft::GroupIdOf(*owner) && before->sets.at(name).elements != set.elements) {
            ++in_place;
            break;
          }
        }
      }
      ++steps;
      // The next change.
      std::vector<const api::Pod*> pods;
      std::vector<const api::NetworkPolicy*> policies;
      for (const auto& o : objects) {
        if (const auto* pod = std::get_if<api::Pod>(&o); pod != nullptr && !pod->pod_ips.empty())
          pods.push_back(pod);
        if (const auto* p = std::get_if<api::NetworkPolicy>(&o)) policies.push_back(p);
      }
      if (pods.size() < 2 || policies.size() < 2) break;
      const uint32_t kind = choices.Next(5);
      if (kind < 3) {
        api::Pod changed = *pods[choices.Next(static_cast<uint32_t>(pods.size()))];
        if (kind == 0) {
          changed.metadata.name += "-n" + std::to_string(step);
          changed.pod_ips = {"198.18.250." + std::to_string(step + 1)};
        } else if (kind == 1) {
          changed.metadata.labels = pods[choices.Next(static_cast<uint32_t>(pods.size()))]->metadata.labels;
        } else {
          changed.metadata.labels["np-extra"] = "x";
        }
        engine.Apply(changed);
        objects.push_back(changed);
        if (kind == 0 && choices.Next(2) == 0)
          local[changed.metadata.namespace_ + "/" + changed.metadata.name] = "vethn" + std::to_string(step);
      } else {
        api::NetworkPolicy changed = *policies[choices.Next(static_cast<uint32_t>(policies.size()))];
        const api::NetworkPolicy& other = *policies[choices.Next(static_cast<uint32_t>(policies.size()))];
        if (kind == 3) {
          engine.Delete("NetworkPolicy", changed.metadata.namespace_, changed.metadata.name);
          std::erase_if(objects, [&](const api::Object& o) {
            const auto* p = std::get_if<api::NetworkPolicy>(&o);
            return p != nullptr && p->metadata.namespace_ == changed.metadata.namespace_ &&
                   p->metadata.name == changed.metadata.name;
          });
        } else {
          changed.ingress = other.ingress;
          changed.egress = other.egress;
          changed.policy_types = other.policy_types;
          engine.Apply(changed);
          objects.push_back(changed);
        }
      }
    }
    ASSERT_TRUE((*incremental)->Remove().ok());
    ASSERT_TRUE((*fresh)->Remove().ok());
  }
  EXPECT_GT(steps, 80);
  EXPECT_GT(in_place, 5) << "groups edited in place, so the equality above covers them";
  EXPECT_GT(in_steps, 5) << "groups created and deleted around a batch, so the equality covers that too";
  EXPECT_GT(ranged, 10) << "interval elements compared between dumps and JSON";
  EXPECT_GT(dispatched, 10) << "verdict map elements compared between dumps and JSON";
  EXPECT_GE(ranges_batched, 2) << "interval elements added and deleted by netlink batches";
}

}  // namespace
}  // namespace netpol::testing
