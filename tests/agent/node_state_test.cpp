// The agent's state on its own: watch events, CNI attachments, reservations
// ahead of ADD and the generations of the program, driven with a fake
// allocator and a fake dataplane backend (no threads, no kernel, no sleeps).
#include "agent/node_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace netpol::agent {
namespace {

using kube::Json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

IpAddress Ip(const std::string& text) {
  return *IpAddress::Parse(text);
}

// The plugin's allocator, in memory: one IPv4 address per pod from
// 198.18.97.0/24, in order; a pod keeps the addresses it holds.
class FakeAllocator final : public AddressAllocator {
 public:
  Result<std::vector<IpAddress>> Reserve(const std::string& pod) override {
    reserve_calls.push_back(pod);
    if (during_reserve) during_reserve(pod);
    if (fail_reserve) return Unavailable("range exhausted");
    if (const auto it = held.find(pod); it != held.end()) return it->second;
    std::vector<IpAddress> ips = {Ip("198.18.97." + std::to_string(next++))};
    held[pod] = ips;
    return ips;
  }
  Status Release(const std::string& pod) override {
    if (fail_release) return Unavailable("the state directory is read-only");
    released.push_back(pod);
    held.erase(pod);
    return Ok();
  }
  std::map<std::string, std::vector<IpAddress>> held;  // pod -> addresses
  std::vector<std::string> reserve_calls;
  std::vector<std::string> released;
  std::function<void(const std::string& pod)> during_reserve;  // runs with the "lock" released
  bool fail_reserve = false;
  bool fail_release = false;
  int next = 1;
};

// A dataplane that keeps the last program it was given.
class FakeBackend final : public dataplane::Backend {
 public:
  using dataplane::Backend::Apply;
  Result<dataplane::ApplyStats> Apply(const policy::NodeProgram& program) override {
    if (fail_next) {
      fail_next = false;
      return Unavailable("the kernel said no");
    }
    if (on_apply) on_apply();
    in_force = program;
    ++applied;
    return dataplane::ApplyStats{};
  }
  Result<std::string> Plan(const policy::NodeProgram&) override { return std::string(); }
  Result<std::string> Show() override { return std::string(); }
  Status Remove() override { return Ok(); }
  size_t InstalledElements() const override { return in_force.pods.size(); }

  policy::NodeProgram in_force;
  int applied = 0;
  bool fail_next = false;
  std::function<void()> on_apply;
};

Json Namespace(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

// A pod of namespace shop labelled app=<name>; `ip` "" when it has not
// started (no address in the API yet).
Json Pod(const std::string& name, const std::string& ip = "", const std::string& node = "node-1",
         const std::string& phase = "") {
  Json status = {{"phase", phase.empty() ? (ip.empty() ? "Pending" : "Running") : phase}};
  if (!ip.empty()) status["podIP"] = ip;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"labels", {{"app", name}}}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}}}}}},
          {"status", status}};
}

// A policy of namespace shop denying all ingress to app=<app>.
Json DenyIngress(const std::string& name, const std::string& app, int rv) {
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"resourceVersion", std::to_string(rv)}}},
          {"spec", {{"podSelector", {{"matchLabels", {{"app", app}}}}}, {"ingress", Json::array()}}}};
}

cni::PodRegistration Registration(const std::string& pod, const std::string& container, const std::string& ip,
                                  const std::string& interface = "") {
  return {{container, "eth0"},
          "shop",
          pod,
          "",
          {Ip(ip)},
          interface.empty() ? "np" + container : interface,
          "",
          false};
}

// A node: its state, its allocator and its dataplane.
struct Node {
  explicit Node(bool reserve_ahead = false) {
    if (reserve_ahead) state.AdoptReservations({});
  }

  // Lists every kind: namespace shop, `objects` (pods and policies).
  void Sync(const std::vector<Json>& objects) {
    const auto list = [&](const kube::PolicyResource& resource) {
      std::vector<Json> items;
      if (std::string(resource.kind) == "Namespace") items.push_back(Namespace("shop"));
      for (const Json& object : objects) {
        if (object["kind"] == resource.kind) items.push_back(object);
      }
      state.OnListBegin(resource.kind);
      state.OnListPage(resource, items);
      state.OnListEnd(resource.kind);
    };
    for (const kube::PolicyResource& resource : kube::kPolicyResources) list(resource);
    for (const kube::PolicyResource& resource : kube::kOptionalPolicyResources) list(resource);
  }

  void Event(const std::string& type, const Json& object) {
    state.OnObject(object["kind"].get<std::string>(), type, object);
  }

  // One turn of the programming loop, as the agent makes it; false when the
  // backend failed.
  bool Program() {
    const NodeState::Turn turn = state.Program(backend, &allocator, unlocked);
    if (!turn.done) return false;
    state.Committed(turn.generation);
    state.ReleaseEnded(turn.generation, allocator, unlocked);
    return true;
  }

  const policy::LocalPod* InForce(const std::string& pod) const {
    const auto it = backend.in_force.pods.find(pod);
    return it == backend.in_force.pods.end() ? nullptr : &it->second;
  }

  std::vector<std::string> log_lines;
  NodeState state{
      {.node_name = "node-1"},
      Logger(LogLevel::kDebug, "node-1", [this](const std::string& line) { log_lines.push_back(line); })};
  FakeAllocator allocator;
  FakeBackend backend;
  Unlocked unlocked = [](const std::function<void()>& work) { work(); };
};

TEST(NodeStateTest, NothingIsDueBeforeEveryKindIsListed) {
  Node node;
  node.state.OnListBegin("Namespace");
  std::vector<Json> items = {Namespace("shop")};
  node.state.OnListPage(kube::kPolicyResources[0], items);
  node.state.OnListEnd("Namespace");
  EXPECT_FALSE(node.state.Synced());
  EXPECT_FALSE(node.state.Due()) << "a program before every kind is listed would drop what the old table had";
  node.Sync({});
  EXPECT_TRUE(node.state.Synced());
  EXPECT_TRUE(node.state.Due());
  ASSERT_TRUE(node.Program());
  EXPECT_FALSE(node.state.Due());
  EXPECT_EQ(node.state.applied(), node.state.wanted());
}

TEST(NodeStateTest, ARegisteredPodTheApiHasNotShownIsIsolatedBothWays) {
  Node node;
  node.state.AdoptRegistrations({Registration("unknown", "c1", "198.18.7.9")});
  node.Sync({});
  ASSERT_TRUE(node.Program());
  const policy::LocalPod* pod = node.InForce("shop/unknown");
  ASSERT_NE(pod, nullptr);
  EXPECT_TRUE(pod->ingress.isolated);
  EXPECT_TRUE(pod->egress.isolated);
  EXPECT_EQ(pod->interface, "npc1");
}

TEST(NodeStateTest, ARelistDeletesWhatTheListNoLongerHas) {
  Node node;
  node.Sync({Pod("web", "198.18.7.10"), DenyIngress("deny-web", "web", 5)});
  node.state.Attach(Registration("web", "c1", "198.18.7.10"));
  ASSERT_TRUE(node.Program());
  ASSERT_TRUE(node.InForce("shop/web")->ingress.isolated);
  node.Sync({Pod("web", "198.18.7.10")});  // the policy was deleted while the watch was down
  ASSERT_TRUE(node.Program());
  EXPECT_FALSE(node.InForce("shop/web")->ingress.isolated);
  EXPECT_EQ(node.state.engine().stats().policies, 0u);
}

// Replaces AgentE2eTest.ALateDelOfAnEarlierSandboxLeavesThePodIsolated.
TEST(NodeStateTest, ALateDelOfAnEarlierSandboxLeavesThePodIsolated) {
  Node node;
  node.Sync({Pod("sandboxed", "198.18.7.61"), DenyIngress("deny-sandboxed", "sandboxed", 3)});
  node.state.Attach(Registration("sandboxed", "c-new", "198.18.7.61"));
  ASSERT_TRUE(node.Program());
  ASSERT_NE(node.InForce("shop/sandboxed"), nullptr);
  EXPECT_FALSE(node.state.Detach(Registration("sandboxed", "c-old", "198.18.7.61")));
  ASSERT_TRUE(node.Program());
  ASSERT_NE(node.InForce("shop/sandboxed"), nullptr)
      << "a DEL of the pod's earlier sandbox detached its current one";
  EXPECT_TRUE(node.InForce("shop/sandboxed")->ingress.isolated);
  EXPECT_EQ(node.InForce("shop/sandboxed")->interface, "npc-new");
  EXPECT_TRUE(node.state.Detach(Registration("sandboxed", "c-new", "198.18.7.61")));
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.InForce("shop/sandboxed"), nullptr) << "the DEL of the pod's own sandbox left it attached";
}

// Replaces the sleeps of AgentE2eTest.AStagedPodIsAttachedBeforeItsAddAndWithdrawnWhenTheAddDies.
TEST(NodeStateTest, AWithdrawnStageLeavesThePodAsItWasBefore) {
  Node node;
  node.Sync({Pod("web")});
  const cni::PodRegistration first = Registration("web", "c-web", "198.18.7.30");
  std::optional<cni::PodRegistration> replaced;
  node.state.Attach(first, &replaced);
  EXPECT_FALSE(replaced.has_value());
  node.state.Withdraw(first, replaced, /*plugin_done=*/true);
  EXPECT_EQ(node.state.local_pods(), 0u) << "a staged pod whose ADD died stays attached";

  node.state.Attach(first);
  ASSERT_TRUE(node.Program());
  // A second sandbox of the attached pod staged, then its ADD dies: the first
  // is attached again (withdrawing must not leave the pod unpoliced).
  const cni::PodRegistration second = Registration("web", "c-web-2", "198.18.7.32");
  node.state.Attach(second, &replaced);
  ASSERT_EQ(replaced, first);
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.InForce("shop/web")->ips, std::vector<IpAddress>{Ip("198.18.7.32")});
  node.state.Withdraw(second, replaced, /*plugin_done=*/true);
  ASSERT_TRUE(node.Program());
  ASSERT_NE(node.InForce("shop/web"), nullptr);
  EXPECT_EQ(node.InForce("shop/web")->ips, std::vector<IpAddress>{Ip("198.18.7.30")});
  EXPECT_EQ(node.InForce("shop/web")->interface, "npc-web");

  // Withdrawing a stage that another ADD has replaced since changes nothing.
  const cni::PodRegistration third = Registration("web", "c-web-3", "198.18.7.33");
  node.state.Attach(second, &replaced);
  node.state.Attach(third);
  node.state.Withdraw(second, replaced, /*plugin_done=*/true);
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.InForce("shop/web")->interface, "npc-web-3");
}

TEST(NodeStateTest, TheStartRaceCheckWaitsForEveryPolicyTheApiListed) {
  Node node;
  node.Sync({DenyIngress("old", "web", 5)});
  const auto read = [](int list_rv, const std::vector<std::pair<std::string, int>>& policies) {
    Json items = Json::array();
    for (const auto& [name, rv] : policies) {
      items.push_back({{"metadata", {{"name", name}, {"resourceVersion", std::to_string(rv)}}}});
    }
    return Json{{"metadata", {{"resourceVersion", std::to_string(list_rv)}}}, {"items", items}};
  };
  EXPECT_TRUE(node.state.CaughtUp("shop", read(5, {{"old", 5}})));
  EXPECT_FALSE(node.state.CaughtUp("shop", read(7, {{"old", 5}, {"new", 7}})))
      << "a policy the API listed has not reached the watch";
  EXPECT_FALSE(node.state.CaughtUp("shop", read(8, {{"old", 8}}))) << "the watch has an older version";
  node.Event("ADDED", DenyIngress("new", "web", 7));
  EXPECT_TRUE(node.state.CaughtUp("shop", read(7, {{"old", 5}, {"new", 7}})));
  EXPECT_FALSE(node.state.CaughtUp("shop", read(9, {{"new", 7}})))
      << "a policy the API no longer has, unchanged since, is deleted and the watch has not seen it";
  EXPECT_TRUE(node.state.CaughtUp("shop", read(4, {{"new", 7}})))
      << "a policy newer than the read is not waited for";
  EXPECT_TRUE(node.state.CaughtUp("other", read(9, {}))) << "other namespaces' policies do not count";
}

// --- reservations ahead of ADD (replace the logic of AgentE2eTest.APodScheduledHereIsProgrammedBeforeItsAdd)

TEST(NodeStateTest, APodScheduledHereIsReservedAndProgrammedBeforeItsAdd) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({DenyIngress("deny-early", "early", 2)});
  node.Event("ADDED", Pod("early"));
  node.Event("ADDED", Pod("elsewhere", "", "node-2"));
  node.Event("ADDED", Pod("running", "198.18.7.5"));
  ASSERT_TRUE(node.Program());
  EXPECT_THAT(node.allocator.reserve_calls, ElementsAre("shop/early"))
      << "only pods scheduled here and not started are reserved";
  const policy::LocalPod* early = node.InForce("shop/early");
  ASSERT_NE(early, nullptr);
  EXPECT_TRUE(early->reserved) << "its addresses claimed, no interface may send from them";
  EXPECT_EQ(early->ips, node.allocator.held["shop/early"]);
  EXPECT_TRUE(early->ingress.isolated) << "its policy is in force before its ADD";
  EXPECT_EQ(node.state.reservations_in_force(), 1u);
  EXPECT_EQ(node.state.reserved_pods(), 1u);

  // The ADD takes the reservation over: the same addresses, its interface added.
  node.state.Attach(Registration("early", "c-early", "198.18.97.1"));
  ASSERT_TRUE(node.Program());
  EXPECT_FALSE(node.state.reservation("shop/early").has_value());
  EXPECT_THAT(node.allocator.released, IsEmpty())
      << "the ADD's addresses are not the reservation's to release";
  EXPECT_FALSE(node.InForce("shop/early")->reserved);
  EXPECT_EQ(node.InForce("shop/early")->interface, "npc-early");
}

TEST(NodeStateTest, AReservationEndsOnlyOnceAProgramWithoutItIsInForce) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  node.Event("ADDED", Pod("gone"));
  ASSERT_TRUE(node.Program());
  ASSERT_TRUE(node.allocator.held.contains("shop/gone"));
  node.Event("DELETED", Pod("gone"));
  EXPECT_THAT(node.allocator.released, IsEmpty()) << "released while its rules may still be in force";
  node.backend.fail_next = true;
  EXPECT_FALSE(node.Program());
  EXPECT_THAT(node.allocator.released, IsEmpty()) << "released though the program without it failed";
  ASSERT_TRUE(node.Program());
  EXPECT_THAT(node.allocator.released, ElementsAre("shop/gone"));
  EXPECT_EQ(node.InForce("shop/gone"), nullptr);

  // Finished (Failed) before any ADD here: the same.
  node.Event("ADDED", Pod("done"));
  ASSERT_TRUE(node.Program());
  node.Event("MODIFIED", Pod("done", "", "node-1", "Failed"));
  ASSERT_TRUE(node.Program());
  EXPECT_THAT(node.allocator.released, ElementsAre("shop/gone", "shop/done"));

  // A release that fails is tried again after the next program.
  node.Event("ADDED", Pod("stuck"));
  ASSERT_TRUE(node.Program());
  node.Event("DELETED", Pod("stuck"));
  node.allocator.fail_release = true;
  ASSERT_TRUE(node.Program());
  node.allocator.fail_release = false;
  node.state.Want();
  ASSERT_TRUE(node.Program());
  EXPECT_THAT(node.allocator.released, ElementsAre("shop/gone", "shop/done", "shop/stuck"));
}

TEST(NodeStateTest, AnAttachedPodsClaimWinsOverAStaleReservationOfItsAddress) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  node.Event("ADDED", Pod("lost"));
  node.Event("ADDED", Pod("thief"));
  ASSERT_TRUE(node.Program());
  const IpAddress lost = node.allocator.held["shop/lost"].front();
  // The allocator gave lost's address to thief (lost's ADD took it over and
  // was killed before staging; the runtime's DEL freed it).
  node.state.Attach(Registration("thief", "c-thief", lost.ToString(), "npthief"));
  ASSERT_TRUE(node.Program());
  EXPECT_FALSE(node.state.reservation("shop/lost").has_value());
  EXPECT_FALSE(node.state.reservation("shop/thief").has_value()) << "its own, unused";
  EXPECT_THAT(node.allocator.released, UnorderedElementsAre("shop/lost", "shop/thief"));
  EXPECT_EQ(node.InForce("shop/thief")->interface, "npthief");
  EXPECT_EQ(node.InForce("shop/thief")->ips, std::vector<IpAddress>{lost});
  EXPECT_EQ(node.InForce("shop/lost"), nullptr)
      << "the stale reservation still programs rules for the address";
}

TEST(NodeStateTest, PodsScheduledWhileReservingAreCarriedByTheSameProgram) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  // Watch events arrive while the allocator works (the lock is released):
  // each asked for a program, and may ask for no other.
  int burst = 0;
  node.allocator.during_reserve = [&](const std::string&) {
    if (burst < 5) node.Event("ADDED", Pod("burst-" + std::to_string(++burst)));
  };
  node.Event("ADDED", Pod("burst-0"));
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.backend.applied, 1);
  for (int i = 0; i <= 5; ++i) {
    const policy::LocalPod* pod = node.InForce("shop/burst-" + std::to_string(i));
    ASSERT_NE(pod, nullptr) << "burst-" << i;
    EXPECT_TRUE(pod->reserved);
  }
}

TEST(NodeStateTest, AReservationMadeForAPodThatWentMeanwhileIsReleasedAtOnce) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  node.allocator.during_reserve = [&](const std::string&) { node.Event("DELETED", Pod("brief")); };
  node.Event("ADDED", Pod("brief"));
  // Released before the program is applied (and once more after it, as any
  // pod that left: a release of nothing is no error).
  bool held_while_applying = true;
  node.backend.on_apply = [&] { held_while_applying = node.allocator.held.contains("shop/brief"); };
  ASSERT_TRUE(node.Program());
  EXPECT_FALSE(held_while_applying);
  EXPECT_THAT(node.allocator.released, Contains("shop/brief"));
  EXPECT_EQ(node.InForce("shop/brief"), nullptr);
  EXPECT_EQ(node.state.reserved_pods(), 0u);
}

TEST(NodeStateTest, AnAddThatFailsAfterTakingTheReservationOverGetsItBack) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  node.Event("ADDED", Pod("retry"));
  ASSERT_TRUE(node.Program());
  const std::vector<IpAddress> reserved = node.allocator.held["shop/retry"];
  const cni::PodRegistration reg = Registration("retry", "c-retry", reserved.front().ToString());
  std::optional<cni::PodRegistration> replaced;
  node.state.Attach(reg, &replaced);                         // staged
  node.state.Withdraw(reg, replaced, /*plugin_done=*/true);  // its ADD died: reserved again
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.state.reservation("shop/retry"), reserved)
      << "the pod stays programmed ahead of its next ADD";
  EXPECT_TRUE(node.InForce("shop/retry")->reserved);
}

TEST(NodeStateTest, ARestartKeepsTheReservationsOfPodsStillScheduledHere) {
  Node node;
  node.state.AdoptReservations({{Ip("198.18.97.7"), cni::ReservationOwner("shop", "kept")},
                                {Ip("198.18.97.8"), cni::ReservationOwner("shop", "dropped")},
                                {Ip("198.18.97.9"), {"c-attached", "eth0"}}});
  node.Sync({Pod("kept")});
  ASSERT_TRUE(node.Program());
  EXPECT_THAT(node.allocator.released, ElementsAre("shop/dropped"));
  EXPECT_THAT(node.allocator.reserve_calls, IsEmpty()) << "a kept reservation is not made again";
  const policy::LocalPod* kept = node.InForce("shop/kept");
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->reserved);
  EXPECT_EQ(kept->ips, std::vector<IpAddress>{Ip("198.18.97.7")});
}

TEST(NodeStateTest, AFailedReservationLeavesThePodToItsAdd) {
  Node node(/*reserve_ahead=*/true);
  node.Sync({});
  node.allocator.fail_reserve = true;
  node.Event("ADDED", Pod("full"));
  ASSERT_TRUE(node.Program());
  EXPECT_EQ(node.InForce("shop/full"), nullptr);
  EXPECT_EQ(node.state.reserved_pods(), 0u);
  ASSERT_FALSE(node.log_lines.empty());
  EXPECT_NE(node.log_lines.back().find("cannot reserve a pod's addresses"), std::string::npos)
      << node.log_lines.back();
}

}  // namespace
}  // namespace netpol::agent
