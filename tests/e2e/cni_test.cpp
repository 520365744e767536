// netpol-cni on real namespaces (root; CI runs these): invoked as a runtime
// invokes it (tests/e2e/cni_runner.h), in a node namespace of the test's own,
// with pods as namespaces. Wiring and reachability, CHECK, idempotent DEL,
// 100 concurrent ADD/DEL, a plugin killed mid-ADD, chaining with Debian's
// reference plugins both ways, and the dataplane enforcing CNI-wired pods.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "e2e/cni_runner.h"
#include "e2e/lab.h"

namespace netpol::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int Sh(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string Out(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0) out.append(buffer, n);
  ::pclose(p);
  return out;
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NETPOL_REQUIRE_E2E();
    std::random_device rd;
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "npc%05x", rd() & 0xfffff);
    prefix_ = buffer;
    node_ = prefix_ + "-node";
    state_ = "/tmp/" + prefix_ + "-state";
    ASSERT_EQ(Sh("ip netns add " + node_), 0);
    created_node_ = true;
    // The node: forwarding on, and a route to the pods' link-local gateway
    // through another interface, which proxy ARP needs to answer for it (a
    // veth: this kernel has no dummy interfaces).
    ASSERT_EQ(Sh("ip -n " + node_ + " link set lo up && ip netns exec " + node_ +
                 " sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 && ip -n " + node_ +
                 " link add up0 type veth peer name up1 && ip -n " + node_ + " link set up0 up && ip -n " +
                 node_ + " route add 169.254.1.1/32 dev up0"),
              0);
    runner_ = std::make_unique<CniRunner>(node_, std::vector<std::string>{NETPOL_CNI_DIR, "/usr/lib/cni"});
  }

  void TearDown() override {
    for (const std::string& ns : pods_) Sh("ip netns del " + ns + " 2>/dev/null");
    if (created_node_) Sh("ip netns del " + node_ + " 2>/dev/null");
    std::error_code ec;
    if (!state_.empty()) fs::remove_all(state_, ec);
  }

  // A new pod namespace; returns its path, as runtimes pass CNI_NETNS.
  std::string Pod(const std::string& name) {
    const std::string ns = prefix_ + "-" + name;
    EXPECT_EQ(Sh("ip netns add " + ns), 0);
    pods_.push_back(ns);
    return "/run/netns/" + ns;
  }

  json Conf(const std::string& version = "1.0.0") const {
    return {{"cniVersion", version},
            {"name", "netpol"},
            {"type", "netpol-cni"},
            {"stateDir", state_},
            {"ipam", {{"ranges", {"198.18.96.0/24", "2001:2:0:96::/64"}}}}};
  }

  CniReply Call(const std::string& command, const std::string& id, const std::string& netns, const json& conf,
                const std::string& args = "") {
    return runner_->Run({command, id, netns, "eth0", args, conf.dump(), {}});
  }

  std::vector<std::string> HostLinks() const {
    std::vector<std::string> out;
    for (const json& link : json::parse(Out("ip -j -n " + node_ + " link show"))) {
      const std::string name = link.value("ifname", "");
      if (name.rfind("np", 0) == 0) out.push_back(name);
    }
    return out;
  }

  std::vector<std::string> Allocated() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state_ + "/ipam/netpol", ec)) {
      // One file per allocated address, named by it (beside the lock, hints and owners' indexes).
      const std::string name = e.path().filename().string();
      if (IpAddress::Parse(name).ok()) out.push_back(name);
    }
    return out;
  }

  bool Reaches(const std::string& from_ns, const std::string& to_ns, const std::string& ip) {
    const std::string probe = NETPOL_PROBE_BIN;
    // A server for at most 5 s (stopped as soon as the probe is done: only the
    // pid this shell started), listening before the client tries (up to 3 s:
    // a fixed pause was too short under load, and a refused connection would
    // pass for a denied one); a connection within 1 s.
    const std::string server =
        "ip netns exec " + to_ns + " " + probe + " serve 5 8080/TCP >/dev/null & s=$!; ";
    const std::string listening = "for i in $(seq 30); do ip netns exec " + to_ns +
                                  " ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.1; done; ";
    const int rc = Sh(server + listening + "ip netns exec " + from_ns + " " + probe + " connect " + ip +
                      " 8080/TCP 1000; r=$?; kill $s 2>/dev/null; wait $s 2>/dev/null; exit $r");
    return rc == 0;
  }

  std::string prefix_;
  std::string node_;
  std::string state_;
  bool created_node_ = false;
  std::vector<std::string> pods_;
  std::unique_ptr<CniRunner> runner_;
};

TEST_F(CniTest, AddWiresARoutedPodThatReachesOthers) {
  const std::string p1 = Pod("p1");
  const std::string p2 = Pod("p2");
  const CniReply a1 =
      Call("ADD", "c1", p1, Conf(), "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=u1");
  ASSERT_EQ(a1.exit_code, 0) << a1.out;
  const CniReply a2 = Call("ADD", "c2", p2, Conf(), "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0");
  ASSERT_EQ(a2.exit_code, 0) << a2.out;
  const json r1 = a1.json();
  EXPECT_EQ(r1["cniVersion"], "1.0.0");
  ASSERT_EQ(r1["ips"].size(), 2u);
  EXPECT_EQ(r1["ips"][0]["address"], "198.18.96.1/32");
  EXPECT_EQ(r1["ips"][0]["gateway"], "169.254.1.1");
  EXPECT_EQ(r1["ips"][1]["address"], "2001:2:0:96::1/128");
  EXPECT_FALSE(r1["ips"][0].contains("version"));  // 1.0.0 has no per-address version
  EXPECT_EQ(r1["interfaces"][1]["name"], "eth0");
  EXPECT_EQ(r1["interfaces"][1]["sandbox"], p1);
  EXPECT_EQ(r1["ips"][0]["interface"], 1);
  EXPECT_EQ(a2.json()["ips"][0]["address"], "198.18.96.2/32");
  // The pod's identity is registered for policy, with its host interface.
  std::ifstream reg(state_ + "/pods/c1_eth0.json");
  const json registration = json::parse(reg);
  EXPECT_EQ(registration["namespace"], "shop");
  EXPECT_EQ(registration["name"], "web-0");
  EXPECT_EQ(registration["uid"], "u1");
  EXPECT_EQ(registration["hostInterface"], r1["interfaces"][0]["name"]);
  // Real packets, both families.
  EXPECT_TRUE(Reaches(prefix_ + "-p1", prefix_ + "-p2", "198.18.96.2"));
  EXPECT_TRUE(Reaches(prefix_ + "-p2", prefix_ + "-p1", "2001:2:0:96::1"));
  // CHECK agrees; then breaks when the pod loses its address.
  json check = Conf();
  check["prevResult"] = r1;
  const CniReply c1 = Call("CHECK", "c1", p1, check);
  EXPECT_EQ(c1.exit_code, 0) << c1.out;
  ASSERT_EQ(Sh("ip -n " + prefix_ + "-p1 addr del 198.18.96.1/32 dev eth0"), 0);
  const CniReply c2 = Call("CHECK", "c1", p1, check);
  EXPECT_NE(c2.exit_code, 0);
  EXPECT_EQ(c2.json()["code"], 100) << c2.out;
  // DEL releases everything, and again is fine; so is DEL without a netns.
  for (int i = 0; i < 2; ++i) {
    const CniReply d = Call("DEL", "c1", i == 0 ? p1 : "", Conf());
    EXPECT_EQ(d.exit_code, 0) << d.out;
  }
  EXPECT_FALSE(fs::exists(state_ + "/pods/c1_eth0.json"));
  EXPECT_EQ(HostLinks().size(), 1u);  // c2's
  const std::vector<std::string> left = Allocated();
  EXPECT_EQ(std::set<std::string>(left.begin(), left.end()),
            (std::set<std::string>{"198.18.96.2", "2001:2:0:96::2"}));
}

TEST_F(CniTest, SpeaksZeroFourAndRejectsWhatItCannotDo) {
  const std::string p1 = Pod("p1");
  const CniReply add = Call("ADD", "c1", p1, Conf("0.4.0"));
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_EQ(add.json()["cniVersion"], "0.4.0");
  EXPECT_EQ(add.json()["ips"][0]["version"], "4");
  EXPECT_EQ(add.json()["ips"][1]["version"], "6");
  // A namespace that does not exist: "container unknown".
  const CniReply gone = Call("ADD", "c9", "/run/netns/" + prefix_ + "-missing", Conf());
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.json()["code"], 3) << gone.out;
  EXPECT_TRUE(Allocated().size() == 2u) << "a failed ADD released its addresses";
  // STATUS and GC are 1.1.0 verbs.
  const CniReply status = Call("STATUS", "", "", Conf("1.1.0"));
  EXPECT_EQ(status.exit_code, 0) << status.out;
  const CniReply old_status = Call("STATUS", "", "", Conf("1.0.0"));
  EXPECT_EQ(old_status.json()["code"], 1);
}

TEST_F(CniTest, HundredConcurrentAddsAndDelsNeverShareOrLeakAnAddress) {
  constexpr size_t kPods = 100;
  std::vector<std::string> netns;
  for (size_t i = 0; i < kPods; ++i) netns.push_back(Pod("q" + std::to_string(i)));
  json conf = Conf();
  conf["ipam"]["ranges"] = {"198.18.96.0/24"};
  std::vector<pid_t> running;
  for (size_t i = 0; i < kPods; ++i) {
    running.push_back(
        runner_->Start({"ADD", "c" + std::to_string(i), netns[i], "eth0", "", conf.dump(), {}}));
  }
  std::set<std::string> addresses;
  for (size_t i = 0; i < kPods; ++i) {
    const CniReply r = runner_->Wait(running[i]);
    ASSERT_EQ(r.exit_code, 0) << "pod " << i << ": " << r.out;
    addresses.insert(r.json()["ips"][0]["address"].get<std::string>());
  }
  EXPECT_EQ(addresses.size(), kPods) << "an address was handed out twice";
  EXPECT_EQ(Allocated().size(), kPods);
  EXPECT_EQ(HostLinks().size(), kPods);
  running.clear();
  for (size_t i = 0; i < kPods; ++i) {
    running.push_back(
        runner_->Start({"DEL", "c" + std::to_string(i), netns[i], "eth0", "", conf.dump(), {}}));
  }
  for (size_t i = 0; i < kPods; ++i) EXPECT_EQ(runner_->Wait(running[i]).exit_code, 0);
  EXPECT_TRUE(Allocated().empty());
  EXPECT_TRUE(HostLinks().empty());
  EXPECT_TRUE(fs::is_empty(state_ + "/pods"));
}

// Kills the plugin paused at `point` of ADD, once `reached` says it got there.
void KillMidAdd(CniRunner& runner, const CniCall& call, const std::string& point,
                const std::function<bool()>& reached) {
  CniCall paused = call;
  paused.extra_env["NETPOL_CNI_TEST_PAUSE_AT"] = point;
  const pid_t pid = runner.Start(paused);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (!reached() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(reached()) << "the plugin never reached " << point;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // well inside the pause
  // `ip netns exec` execs the plugin in place, so this pid is the plugin.
  ::kill(pid, SIGKILL);
  EXPECT_EQ(runner.Wait(pid).exit_code, -1);
}

TEST_F(CniTest, APluginKilledMidAddLeavesWhatDelAndGcReclaim) {
  const std::string p1 = Pod("p1");
  const std::string p2 = Pod("p2");
  const json conf = Conf();
  const auto allocated = [&] { return Allocated().size() == 2; };
  const auto wired = [&] { return HostLinks().size() == 1; };
  for (const char* point : {"allocated", "wired"}) {
    SCOPED_TRACE(point);
    KillMidAdd(*runner_, {"ADD", "c1", p1, "eth0", "", conf.dump(), {}}, point,
               std::string(point) == "allocated" ? std::function<bool()>(allocated) : wired);
    EXPECT_EQ(Call("DEL", "c1", p1, conf).exit_code, 0);
    EXPECT_TRUE(Allocated().empty()) << "DEL reclaims a half-done ADD";
    EXPECT_TRUE(HostLinks().empty());
    // The pod namespace lost its end of the veth with the host end.
    ASSERT_EQ(Sh("ip -n " + prefix_ + "-p1 link show eth0 >/dev/null 2>&1"), 1);
  }
  // The same through GC (1.1.0): only c3 is still valid.
  json gc_conf = Conf("1.1.0");
  ASSERT_EQ(Call("ADD", "c3", p2, gc_conf).exit_code, 0);
  KillMidAdd(*runner_, {"ADD", "c2", p1, "eth0", "", gc_conf.dump(), {}}, "wired",
             [&] { return HostLinks().size() == 2; });
  EXPECT_EQ(Allocated().size(), 4u);
  gc_conf["cni.dev/valid-attachments"] = {{{"containerID", "c3"}, {"ifname", "eth0"}}};
  const CniReply gc = Call("GC", "", "", gc_conf);
  EXPECT_EQ(gc.exit_code, 0) << gc.out;
  const std::vector<std::string> left = Allocated();
  EXPECT_EQ(left.size(), 2u);
  EXPECT_EQ(HostLinks().size(), 1u);
  const CniReply c3 = Call("CHECK", "c3", p2, [&] {
    json check = gc_conf;
    check.erase("cni.dev/valid-attachments");
    check["prevResult"] = {
        {"cniVersion", "1.1.0"},
        {"ips", {{{"address", left[0] + (left[0].find(':') == std::string::npos ? "/32" : "/128")}}}}};
    return check;
  }());
  EXPECT_EQ(c3.exit_code, 0) << "GC left the valid pod alone: " << c3.out;
}

TEST_F(CniTest, ChainedAfterBridgeItEnforcesTheAddressesBridgeGave) {
  const std::string p1 = Pod("p1");
  const json conflist = {
      {"cniVersion", "1.0.0"},
      {"name", "chain"},
      {"plugins",
       {{{"type", "bridge"},
         {"bridge", "npbr0"},
         {"isGateway", true},
         {"ipam",
          {{"type", "host-local"}, {"dataDir", state_ + "/host-local"}, {"subnet", "198.18.97.0/24"}}}},
        {{"type", "netpol-cni"}, {"stateDir", state_}}}}};
  // As kubelet passes them: plugins that do not know K8S_* ignore them.
  CniCall call{"ADD", "c1", p1, "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web", "", {}};
  const CniReply add = runner_->RunList(conflist, call);
  ASSERT_EQ(add.exit_code, 0) << add.out;
  const json result = add.json();
  const std::string address = result["ips"][0]["address"];
  EXPECT_EQ(address.rfind("198.18.97.", 0), 0u) << address;
  std::ifstream reg(state_ + "/pods/c1_eth0.json");
  const json registration = json::parse(reg);
  EXPECT_TRUE(registration["chained"].get<bool>());
  EXPECT_EQ(registration["ips"][0], address.substr(0, address.find('/')));
  EXPECT_EQ(registration["hostInterface"], "");
  call.command = "CHECK";
  EXPECT_EQ(runner_->RunList(conflist, call, result).exit_code, 0);
  call.command = "DEL";
  EXPECT_EQ(runner_->RunList(conflist, call, result).exit_code, 0);
  EXPECT_FALSE(fs::exists(state_ + "/pods/c1_eth0.json"));
}

TEST_F(CniTest, TuningAfterUsConsumesOurResult) {
  const std::string p1 = Pod("p1");
  json ours = Conf();
  ours.erase("cniVersion");
  ours.erase("name");
  const json conflist = {
      {"cniVersion", "1.0.0"},
      {"name", "netpol"},
      {"plugins", {ours, {{"type", "tuning"}, {"sysctl", {{"net.ipv4.conf.eth0.accept_redirects", "0"}}}}}}};
  CniCall call{"ADD", "c1", p1, "eth0", "", "", {}};
  const CniReply add = runner_->RunList(conflist, call);
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_EQ(add.json()["ips"][0]["address"], "198.18.96.1/32");
  EXPECT_EQ(Out("ip netns exec " + prefix_ + "-p1 sysctl -n net.ipv4.conf.eth0.accept_redirects"), "0\n");
  call.command = "DEL";
  EXPECT_EQ(runner_->RunList(conflist, call, add.json()).exit_code, 0);
  EXPECT_TRUE(Allocated().empty());
}

TEST_F(CniTest, TheDataplaneEnforcesPodsTheCniWired) {
  const std::string p1 = Pod("p1");
  const std::string p2 = Pod("p2");
  ASSERT_EQ(Call("ADD", "c1", p1, Conf()).exit_code, 0);
  ASSERT_EQ(Call("ADD", "c2", p2, Conf()).exit_code, 0);
  const std::string manifest = state_ + "/cluster.yaml";
  std::ofstream(manifest) << R"(apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.96.1}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec: {containers: [{name: s}]}
status: {podIP: 198.18.96.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-server, namespace: default}
spec: {podSelector: {matchLabels: {app: server}}}
)";
  const std::string netpol = NETPOL_CLI_BIN;
  ASSERT_EQ(Sh(netpol + " enforce --netns " + node_ + " -f " + manifest + " >/dev/null"), 0);
  EXPECT_FALSE(Reaches(prefix_ + "-p1", prefix_ + "-p2", "198.18.96.2"));
  // The CNI's host interface is the pod's for anti-spoofing: the client still
  // reaches the world it is allowed to (the server may answer the client).
  EXPECT_TRUE(Reaches(prefix_ + "-p2", prefix_ + "-p1", "198.18.96.1"));
  ASSERT_EQ(Sh(netpol + " enforce --remove --netns " + node_ + " >/dev/null"), 0);
  EXPECT_TRUE(Reaches(prefix_ + "-p1", prefix_ + "-p2", "198.18.96.2"));
}

}  // namespace
}  // namespace netpol::testing
