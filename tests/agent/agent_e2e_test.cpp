// netpold's health, readiness and metrics, on a node with real pods and real
// denied packets (root: network namespaces and nftables).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/nftables_backend.h"
#include "cli/app.h"
#include "cni/agent_client.h"
#include "cni/ipam.h"
#include "cni/plugin.h"
#include "cni/registry.h"
#include "e2e/cni_runner.h"
#include "e2e/lab.h"
#include "kube/client.h"
#include "lab/apiserver.h"

namespace netpol {
namespace {

using Clock = std::chrono::steady_clock;
using kube::Json;
using testing::FreeLoopbackPort;

// A loopback port nobody listens on now.
// The node's set of ingress-isolated IPv4 pod addresses, as nft lists it.
std::string IsolatedV4(const std::string& netns) {
  std::string out;
  const std::string command = "ip netns exec " + netns + " nft list set inet netpol in_isolated_v4";
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
    ::pclose(f);
  }
  return out;
}

// Status code and body of GET http://127.0.0.1:port/path (0 when unreachable).
std::pair<int, std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(2));
  const httplib::Result r = client.Get(path);
  if (!r) return {0, httplib::to_string(r.error())};
  return {r->status, r->body};
}

double Value(const std::string& metrics, const std::string& series) {
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(metrics.c_str() + at + series.size() + 2, nullptr);
}

// The options of an agent for `node`, talking to `server`, keeping its
// files in `dir`, serving metrics on `port`.
agent::AgentOptions OptionsFor(const testing::PacketLab& node, const std::string& server,
                               const std::string& dir, int port) {
  agent::AgentOptions options;
  options.api = kube::Api(server);
  options.node_name = "node-1";
  options.netns = node.node();
  options.state_dir = dir + "/cni";
  options.socket_path = dir + "/agent.sock";
  options.metrics_address = "127.0.0.1:" + std::to_string(port);
  options.log_level = agent::LogLevel::kWarn;
  return options;
}

// The plugin's network configuration for an agent with OptionsFor(..., dir, ...)
// (its state and the agent's socket in `dir`, addresses from `range`), and the
// configuration list holding it written to dir/conf.json, which the agent reads
// as the DaemonSet's does (AgentOptions::cni_conf).
Json WriteCniConf(const std::string& dir, const std::string& range) {
  const Json conf = {{"cniVersion", "1.0.0"},
                     {"name", "netpol"},
                     {"type", "netpol-cni"},
                     {"stateDir", dir + "/cni"},
                     {"agentSocket", dir + "/agent.sock"},
                     {"ipam", {{"ranges", {range}}}}};
  std::ofstream(dir + "/conf.json") << Json{{"cniVersion", "1.0.0"}, {"name", "netpol"}, {"plugins", {conf}}};
  return conf;
}

// A directory for a test's files (its "cni" state directory within),
// removed with everything in it when the test ends, however it ends.
struct ScratchDir {
  explicit ScratchDir(const std::string& name) : path(::testing::TempDir() + "/" + name) {
    std::filesystem::create_directories(path + "/cni");
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string path;
};

// The dataplane netpold programs (its main.cpp makes the same).
// An agent running on its own thread for the scope of a test.
class RunningAgent {
 public:
  explicit RunningAgent(const agent::AgentOptions& options,
                        agent::BackendFactory backend = agent::NftablesBackend)
      : agent_(options, std::move(backend)), running_([this] {
          result_ = agent_.Run(stop_);
          returned_ = true;
        }) {}
  ~RunningAgent() {
    stop_ = true;
    running_.join();
  }
  agent::Agent& operator*() { return agent_; }
  agent::Agent* operator->() { return &agent_; }
  // What Run returned, once it has (before the test stopped it: a loop ended).
  std::optional<Status> ReturnedWithin(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!returned_.load() && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!returned_.load()) return std::nullopt;
    return result_;
  }

 private:
  agent::Agent agent_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> returned_{false};
  Status result_ = Ok();
  std::thread running_;
};

// What `netpol flows --agent http://127.0.0.1:PORT ARGS...` prints; its exit code in *rc.
std::string NetpolFlows(int port, std::vector<std::string> args, int* rc) {
  const std::string agent_url = "http://127.0.0.1:" + std::to_string(port);
  args.insert(args.begin(), {"netpol", "flows", "--agent", agent_url});
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  *rc = cli::Run(static_cast<int>(argv.size()), argv.data(), in, out, err);
  return out.str() + err.str();
}

// A running pod of namespace shop on node-1, as the API has it.
Status PostPod(kube::Client& api, const std::string& name, const std::string& ip) {
  const Json pod = {{"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
                    {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}}}}}},
                    {"status", {{"phase", "Running"}, {"podIP", ip}}}};
  Result<Json> created = api.Request("POST", "/api/v1/namespaces/shop/pods", pod.dump());
  if (!created) return std::move(created).error();
  return Ok();
}

// The lab API server with a namespace "shop", and a client of it.
struct ShopApi {
  std::unique_ptr<lab::ApiServer> server;
  std::unique_ptr<kube::Client> client;
};
Result<ShopApi> StartShopApi(const lab::ApiServerOptions& options = {.nodes = {"node-1"}}) {
  Result<std::unique_ptr<lab::ApiServer>> server = lab::ApiServer::Start(options);
  if (!server) return std::move(server).error();
  Result<std::unique_ptr<kube::Client>> client = kube::Client::Create(kube::Api((*server)->url()));
  if (!client) return std::move(client).error();
  const Result<Json> shop =
      (*client)->Request("POST", "/api/v1/namespaces", Json{{"metadata", {{"name", "shop"}}}}.dump());
  if (!shop) return shop.error();
  return ShopApi{std::move(*server), std::move(*client)};
}

TEST(AgentE2eTest, ServesHealthReadinessAndMetricsCountingDeniedConnections) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.10", ""}, {"198.18.7.11", ""}}).ok());
  ASSERT_TRUE(node.Serve({{api::Protocol::kTCP, 8080}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-agent");
  const std::string& dir = scratch.path;
  for (const auto& [name, ip] : {std::pair{"web", "198.18.7.10"}, std::pair{"db", "198.18.7.11"}}) {
    ASSERT_TRUE(PostPod(*api->client, name, ip).ok());
    // Registered as netpol-cni registers a chained pod (its interface is not ours).
    cni::PodRegistration reg{
        {std::string("c-") + name, "eth0"}, "shop", name, "", {*IpAddress::Parse(ip)}, "", "", true};
    ASSERT_TRUE(cni::Register(dir + "/cni", reg).ok());
  }
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), dir, port);
  options.flow_logs_allowed = true;
  RunningAgent agent(options);

  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::pair<int, std::string> ready{0, ""};
  while (Clock::now() < deadline && (ready = HttpGet(port, "/readyz")).first != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ready.first, 200) << ready.second;
  EXPECT_EQ(HttpGet(port, "/healthz").first, 200);
  EXPECT_EQ(HttpGet(port, "/nothing").first, 404);

  // Allowed until a default-deny policy isolates db; then denied and counted.
  ASSERT_TRUE(
      *node.Reaches("198.18.7.10", "198.18.7.11", api::Protocol::kTCP, 8080, std::chrono::seconds(2)));
  const uint64_t before = agent->stats().programs;
  const Json deny = {
      {"metadata", {{"name", "db-deny"}}},
      {"spec", {{"podSelector", {{"matchLabels", {{"app", "db"}}}}}, {"policyTypes", {"Ingress"}}}}};
  ASSERT_TRUE(
      api->client->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", deny.dump())
          .ok());
  while (Clock::now() < deadline + std::chrono::seconds(10) && agent->stats().programs == before) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(*node.Reaches("198.18.7.10", "198.18.7.11", api::Protocol::kTCP, 8080,
                               std::chrono::milliseconds(300)));
  }

  const auto [status, metrics] = HttpGet(port, "/metrics");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(Value(metrics, "netpol_agent_ready"), 1) << metrics;
  EXPECT_EQ(Value(metrics, "netpol_agent_known_pods"), 2);
  EXPECT_EQ(Value(metrics, "netpol_agent_known_policies"), 1);
  EXPECT_EQ(Value(metrics, "netpol_agent_local_pods"), 2);
  EXPECT_GT(Value(metrics, "netpol_agent_nft_set_elements"), 0);
  EXPECT_GE(Value(metrics, "netpol_agent_programs_total"), 2);
  EXPECT_GE(Value(metrics, "netpol_agent_update_latency_seconds_count"), 2);
  // Three refused connections: at least three SYNs dropped at db's ingress.
  EXPECT_GE(Value(metrics, "netpol_denied_connections_total{namespace=\"shop\",direction=\"ingress\"}"), 3)
      << metrics;
  // No pod is isolated for egress: no egress series at all.
  EXPECT_EQ(Value(metrics, "netpol_denied_connections_total{namespace=\"shop\",direction=\"egress\"}"), -1);

  // A rule allowing web to reach db: its connections are counted as allowed
  // at db's ingress (db is isolated there); web is not isolated, so nothing
  // is counted for its egress.
  const uint64_t programs = agent->stats().programs;
  const Json allow = {{"metadata", {{"name", "db-from-web"}}},
                      {"spec",
                       {{"podSelector", {{"matchLabels", {{"app", "db"}}}}},
                        {"ingress",
                         {{{"from", {{{"podSelector", {{"matchLabels", {{"app", "web"}}}}}}}},
                           {"ports", {{{"port", 8080}}}}}}}}}};
  ASSERT_TRUE(
      api->client->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", allow.dump())
          .ok());
  const auto programmed_by = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < programmed_by && agent->stats().programs == programs) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(
        *node.Reaches("198.18.7.10", "198.18.7.11", api::Protocol::kTCP, 8080, std::chrono::seconds(2)));
  }
  const std::string after = HttpGet(port, "/metrics").second;
  EXPECT_GE(Value(after, "netpol_allowed_connections_total{namespace=\"shop\",direction=\"ingress\"}"), 2)
      << after;
  EXPECT_EQ(Value(after, "netpol_allowed_connections_total{namespace=\"shop\",direction=\"egress\"}"), -1);

  // The flow log names both pods and the policy that isolates db.
  const auto [flows_status, flows] = HttpGet(port, "/flows?namespace=shop&verdict=denied");
  ASSERT_EQ(flows_status, 200);
  std::istringstream lines(flows);
  std::string line;
  int denied = 0;
  while (std::getline(lines, line)) {
    const Json flow = Json::parse(line);
    EXPECT_EQ(flow["direction"], "ingress") << line;
    EXPECT_EQ(flow["src"]["pod"], "web") << line;
    EXPECT_EQ(flow["dst"]["pod"], "db") << line;
    EXPECT_EQ(flow["dst"]["namespace"], "shop") << line;
    EXPECT_EQ(flow["protocol"], "TCP") << line;
    EXPECT_EQ(flow["port"], 8080) << line;
    EXPECT_EQ(flow["policies"], Json::array({"shop/db-deny"})) << line;
    ++denied;
  }
  EXPECT_GE(denied, 3) << flows;
  EXPECT_EQ(HttpGet(port, "/flows?namespace=elsewhere").second, "");
  // `netpol flows` prints them for people.
  {
    int rc = 0;
    const std::string printed = NetpolFlows(port, {"-n", "shop"}, &rc);
    EXPECT_EQ(rc, 0) << printed;
    EXPECT_NE(printed.find("ingress DENIED shop/web 198.18.7.10 -> shop/db 198.18.7.11 TCP/8080 (isolated by "
                           "shop/db-deny)"),
              std::string::npos)
        << printed;
    const std::string nowhere = NetpolFlows(1, {}, &rc);  // nothing listens on port 1
    EXPECT_EQ(rc, 2);
    EXPECT_NE(nowhere.find("cannot read flow logs"), std::string::npos) << nowhere;
  }
  // With --flow-logs-allowed, the allowed connections are logged too, each
  // with the policy and rule that allowed it.
  std::string allowed_flows;
  for (const auto until = Clock::now() + std::chrono::seconds(5);
       Clock::now() < until && (allowed_flows = HttpGet(port, "/flows?verdict=allowed").second).empty();) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::istringstream allowed_lines(allowed_flows);
  int allowed = 0;
  while (std::getline(allowed_lines, line)) {
    const Json flow = Json::parse(line);
    EXPECT_EQ(flow["verdict"], "allowed") << line;
    EXPECT_EQ(flow["direction"], "ingress") << line;
    EXPECT_EQ(flow["src"]["pod"], "web") << line;
    EXPECT_EQ(flow["dst"]["pod"], "db") << line;
    EXPECT_EQ(flow["policy"], "shop/db-from-web") << line;
    EXPECT_EQ(flow["rule"], "ingress[0]") << line;
    ++allowed;
  }
  EXPECT_GE(allowed, 2) << allowed_flows;
  {
    int rc = 0;
    const std::string printed = NetpolFlows(port, {"--verdict", "allowed"}, &rc);
    EXPECT_EQ(rc, 0) << printed;
    EXPECT_NE(printed.find("ingress allowed shop/web 198.18.7.10 -> shop/db 198.18.7.11 TCP/8080 (by "
                           "shop/db-from-web ingress[0])"),
              std::string::npos)
        << printed;
  }
  EXPECT_GE(Value(metrics, "netpol_flow_log_lines_total"), 0);

  const std::string path = dir + "/metrics.txt";
  std::ofstream(path) << metrics;
  const int rc = std::system(("promtool check metrics < " + path).c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0) << metrics;
  std::filesystem::remove_all(dir);
}

// netpol-cni stages a pod (its addresses and veth, before the rest of the
// wiring) so the agent programs it while the plugin wires; the ADD's
// confirmation then only waits for that program. A plugin that dies between
// the two leaves nothing attached. (What a withdrawn stage leaves, with an
// earlier sandbox attached: NodeStateTest.)
TEST(AgentE2eTest, AStagedPodIsAttachedBeforeItsAddAndWithdrawnWhenTheAddDies) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.30", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  ASSERT_TRUE(PostPod(*api->client, "web", "198.18.7.30").ok());
  const ScratchDir scratch(node.prefix() + "-stage");
  const std::string& dir = scratch.path;
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), dir, port);
  options.flow_logs = false;
  RunningAgent agent(options);
  const auto local_pods = [&] { return Value(HttpGet(port, "/metrics").second, "netpol_agent_local_pods"); };
  const auto wait_for = [&](double want) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && local_pods() != want) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return local_pods();
  };
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && HttpGet(port, "/readyz").first != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(wait_for(0), 0);

  const cni::PodRegistration reg{
      {"c-web", "eth0"}, "shop", "web", "", {*IpAddress::Parse("198.18.7.30")}, "", "", true};
  {  // Staged, then the plugin dies: attached meanwhile, withdrawn after.
    Result<cni::AgentConnection> connection = cni::AgentConnection::Open(options.socket_path);
    ASSERT_TRUE(connection.ok()) << connection.error().message();
    ASSERT_TRUE(connection->Announce("shop", "web").ok());
    ASSERT_TRUE(connection->Stage(reg).ok());
    EXPECT_EQ(wait_for(1), 1) << "staging attaches the pod before its ADD completes";
  }
  EXPECT_EQ(wait_for(0), 0) << "a connection closed without \"add\" withdraws the staged pod";

  {  // Staged, then confirmed: the confirmation answers once the program is in force.
    Result<cni::AgentConnection> connection = cni::AgentConnection::Open(options.socket_path);
    ASSERT_TRUE(connection.ok());
    ASSERT_TRUE(connection->Announce("shop", "web").ok());
    ASSERT_TRUE(connection->Stage(reg).ok());
    const Status confirmed = connection->Confirm(cni::AgentOp::kAdd, reg, std::chrono::milliseconds(10000));
    EXPECT_TRUE(confirmed.ok()) << confirmed.error().message();
  }
  EXPECT_EQ(local_pods(), 1) << "a confirmed pod stays when the connection closes";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(local_pods(), 1);

  {  // Staged with one address, confirmed with another: the confirmed one is attached.
    cni::PodRegistration moved = reg;
    moved.ips = {*IpAddress::Parse("198.18.7.31")};
    Result<cni::AgentConnection> connection = cni::AgentConnection::Open(options.socket_path);
    ASSERT_TRUE(connection.ok());
    ASSERT_TRUE(connection->Stage(reg).ok());
    EXPECT_TRUE(connection->Confirm(cni::AgentOp::kAdd, moved, std::chrono::milliseconds(10000)).ok());
  }
  const std::string metrics = HttpGet(port, "/metrics").second;
  EXPECT_EQ(Value(metrics, "netpol_agent_local_pods"), 1);
}

// The start race, as the plugin meets it: a policy is created, and at once a
// pod it selects is staged and added, while the agent's watch lags 300 ms
// behind the API. The agent attaches a staged pod before its start-race check
// (so programming starts early), yet "add" must not be answered before the
// policy is in force for the pod. Checked on the node's table the moment
// "add" is answered.
TEST(AgentE2eTest, AnAddIsAnsweredOnlyOnceAPolicyCreatedJustBeforeIsInForce) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.40", ""}}).ok());
  constexpr auto kLag = std::chrono::milliseconds(300);
  Result<ShopApi> api = StartShopApi({.nodes = {"node-1"}, .watch_delay = kLag});
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-race");
  const std::string& dir = scratch.path;
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), dir, port);
  options.flow_logs = false;
  RunningAgent agent(options);
  const auto ready_by = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < ready_by && HttpGet(port, "/readyz").first != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto isolated = [&] { return IsolatedV4(node.node()); };
  for (int i = 0; i < 3; ++i) {
    const std::string name = "race-" + std::to_string(i);
    const std::string ip = "198.18.7." + std::to_string(50 + i);
    ASSERT_TRUE(PostPod(*api->client, name, ip).ok());
    std::this_thread::sleep_for(kLag * 2);  // the agent knows the pod (not isolated: no policy yet)
    const Json policy = {
        {"metadata", {{"name", "deny-" + name}}},
        {"spec", {{"podSelector", {{"matchLabels", {{"app", name}}}}}, {"ingress", Json::array()}}}};
    // Before the POST: the server delays the watch event from when it stores
    // the policy, which is before its answer reaches us (stamped after the
    // answer, 296 ms were once measured against the 300 ms lag).
    const auto created = Clock::now();
    ASSERT_TRUE(
        api->client
            ->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", policy.dump())
            .ok());
    const cni::PodRegistration reg{{"c-" + name, "eth0"},   "shop", name, "",
                                   {*IpAddress::Parse(ip)}, "",     "",   true};
    Result<cni::AgentConnection> connection = cni::AgentConnection::Open(options.socket_path);
    ASSERT_TRUE(connection.ok()) << connection.error().message();
    ASSERT_TRUE(connection->Announce("shop", name).ok());
    ASSERT_TRUE(connection->Stage(reg).ok());
    const Status confirmed = connection->Confirm(cni::AgentOp::kAdd, reg, std::chrono::milliseconds(10000));
    ASSERT_TRUE(confirmed.ok()) << confirmed.error().message();
    const auto elapsed = Clock::now() - created;
    EXPECT_NE(isolated().find(ip), std::string::npos)
        << name << ": \"add\" was answered before the policy created just before it isolated the pod";
    EXPECT_GE(elapsed, kLag) << "answered before the lagging watch could have had the policy";
  }
}

// A pod seen scheduled to the node is programmed before its ADD: the agent
// reserves its addresses in the plugin's allocator and puts its rules in
// force, claiming the addresses; the real plugin's ADD then takes them over
// (the same address, its interface added); one that fails gives them back. A
// restarted agent keeps the reservations of pods still scheduled here. (When
// reservations end, stale ones, bursts: NodeStateTest, with fakes.)
TEST(AgentE2eTest, APodScheduledHereIsProgrammedBeforeItsAdd) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.60", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-reserve");
  const std::string& dir = scratch.path;
  const Json conf = WriteCniConf(dir, "198.18.97.0/24");
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), dir, port);
  options.flow_logs = false;
  options.cni_conf = dir + "/conf.json";
  std::optional<RunningAgent> agent;
  const auto start_agent = [&] {
    agent.emplace(options);
    const auto ready_by = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < ready_by && HttpGet(port, "/readyz").first != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  start_agent();
  Result<cni::Ipam> ipam = cni::OpenNetworkIpam(conf.dump());
  ASSERT_TRUE(ipam.ok()) << ipam.error().message();
  const auto reservation_of = [&](const std::string& pod) -> std::optional<IpAddress> {
    const Result<std::vector<cni::Allocation>> allocations = ipam->List();
    for (const cni::Allocation& a : *allocations) {
      if (cni::ReservedPod(a.owner) == pod) return a.address;
    }
    return std::nullopt;
  };
  const auto set_has = [&](const std::string& set, const std::string& element) {
    std::string out;
    const std::string command = "ip netns exec " + node.node() + " nft list set inet netpol " + set;
    if (FILE* f = ::popen(command.c_str(), "r")) {
      char buffer[4096];
      size_t n = 0;
      while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
      ::pclose(f);
    }
    // The element whole: 198.18.97.1 is not in a set holding 198.18.97.10.
    for (size_t at = out.find(element); at != std::string::npos; at = out.find(element, at + 1)) {
      const char next = at + element.size() < out.size() ? out[at + element.size()] : ' ';
      if (!std::isxdigit(static_cast<unsigned char>(next)) && next != '.' && next != ':') return true;
    }
    return false;
  };
  const auto wait_until = [](const std::function<bool()>& done) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && !done()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return done();
  };
  // The pod's reservation, once its rules are in force (its address claimed).
  const auto programmed_ahead = [&](const std::string& pod) {
    std::optional<IpAddress> ip;
    wait_until([&] {
      ip = reservation_of(pod);
      return ip.has_value() && set_has("pods_v4", ip->ToString());
    });
    return ip.has_value() && set_has("pods_v4", ip->ToString()) ? ip : std::nullopt;
  };
  // Scheduled here, not started: no address in the API.
  const auto post_pending = [&](const std::string& name) {
    const Json pod = {{"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
                      {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}}}}}},
                      {"status", {{"phase", "Pending"}}}};
    return api->client->Request("POST", "/api/v1/namespaces/shop/pods", pod.dump()).ok();
  };
  const Json deny = {
      {"metadata", {{"name", "deny-early"}}},
      {"spec", {{"podSelector", {{"matchLabels", {{"app", "early"}}}}}, {"ingress", Json::array()}}}};
  ASSERT_TRUE(
      api->client->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", deny.dump())
          .ok());
  ASSERT_TRUE(post_pending("early"));
  const std::optional<IpAddress> early = programmed_ahead("shop/early");
  ASSERT_TRUE(early.has_value());
  EXPECT_GE((*agent)->stats().reservations_in_force, 1u);
  EXPECT_TRUE(set_has("in_isolated_v4", early->ToString())) << "its policy is in force before its ADD";
  EXPECT_EQ(Value(HttpGet(port, "/metrics").second, "netpol_agent_reserved_pods"), 1);
  EXPECT_TRUE(set_has("pods_v4", early->ToString())) << "its address is claimed";

  // The runtime's ADD, as kubelet passes the pod's identity.
  const std::string pod_ns = node.prefix() + "-early";
  ASSERT_EQ(std::system(("ip netns add " + pod_ns).c_str()), 0);
  struct RemovedAtEnd {
    std::string netns;
    ~RemovedAtEnd() { (void)std::system(("ip netns del " + netns + " 2>/dev/null").c_str()); }
  };
  RemovedAtEnd remove_pod{pod_ns};
  testing::CniRunner runner(node.node(), {NETPOL_CNI_DIR});
  const testing::CniReply added = runner.Run({"ADD",
                                              "c-early",
                                              "/run/netns/" + pod_ns,
                                              "eth0",
                                              "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=early",
                                              conf.dump(),
                                              {}});
  EXPECT_EQ(added.exit_code, 0) << added.out;
  if (added.exit_code == 0) {
    EXPECT_EQ(added.json()["ips"][0]["address"], early->ToString() + "/32") << "the reserved address";
  }
  EXPECT_FALSE(reservation_of("shop/early").has_value()) << "the ADD took the reservation over";
  EXPECT_TRUE(set_has("pod_src_v4", early->ToString())) << "the pod sends from its interface once wired";
  EXPECT_TRUE(set_has("in_isolated_v4", early->ToString()));
  (void)runner.Run({"DEL",
                    "c-early",
                    "/run/netns/" + pod_ns,
                    "eth0",
                    "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=early",
                    conf.dump(),
                    {}});

  // An ADD that fails after taking the reservation over (its interface name
  // is taken in the pod's namespace) gives the addresses back: the next ADD
  // gets the same ones.
  ASSERT_TRUE(post_pending("retry"));
  const std::optional<IpAddress> retry = programmed_ahead("shop/retry");
  ASSERT_TRUE(retry.has_value());
  const std::string retry_ns = node.prefix() + "-retry";
  ASSERT_EQ(std::system(("ip netns add " + retry_ns).c_str()), 0);
  RemovedAtEnd remove_retry{retry_ns};
  ASSERT_EQ(std::system(("ip -n " + retry_ns + " link add eth0 type veth peer name taken").c_str()), 0);
  const testing::CniCall retry_add{
      "ADD",       "c-retry", "/run/netns/" + retry_ns, "eth0", "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=retry",
      conf.dump(), {}};
  EXPECT_NE(runner.Run(retry_add).exit_code, 0);
  EXPECT_EQ(reservation_of("shop/retry"), retry) << "given back to the reservation";
  ASSERT_EQ(std::system(("ip -n " + retry_ns + " link del eth0").c_str()), 0);
  const testing::CniReply retried = runner.Run(retry_add);
  ASSERT_EQ(retried.exit_code, 0) << retried.out;
  EXPECT_EQ(retried.json()["ips"][0]["address"], retry->ToString() + "/32");

  // A restart: reservations of pods still scheduled are kept (their rules stay
  // in force), those of pods deleted meanwhile are released.
  ASSERT_TRUE(post_pending("kept"));
  ASSERT_TRUE(post_pending("dropped"));
  ASSERT_TRUE(programmed_ahead("shop/dropped").has_value());
  const std::optional<IpAddress> kept = programmed_ahead("shop/kept");
  ASSERT_TRUE(kept.has_value());
  agent.reset();
  ASSERT_TRUE(api->client->Request("DELETE", "/api/v1/namespaces/shop/pods/dropped").ok());
  start_agent();
  EXPECT_TRUE(wait_until([&] { return !reservation_of("shop/dropped").has_value(); }));
  EXPECT_EQ(reservation_of("shop/kept"), kept);
  EXPECT_TRUE(set_has("pods_v4", kept->ToString()));
}

// --- issue 16: bounded CNI socket, fail fast, drift ----------------------------

// Entries of a /proc/self directory or lines of a /proc/self file: this
// process's threads (the agent runs in it) and memory mappings.
size_t ThreadCount() {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}
size_t MappingCount() {
  std::ifstream in("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// A client of the agent's socket that connects and says nothing.
int ConnectSilently(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Seconds until the agent closes `fd` (reads end of file), or -1 when it has
// not within `within`.
double SecondsUntilClosed(int fd, Clock::time_point since, std::chrono::milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  const auto deadline = since + within;
  while (Clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) > 0) {
      char c = 0;
      if (::recv(fd, &c, 1, MSG_DONTWAIT) == 0)
        return std::chrono::duration<double>(Clock::now() - since).count();
    }
  }
  return -1;
}

// Waits for the agent's /readyz to answer 200.
bool WaitReady(int port, std::chrono::seconds within = std::chrono::seconds(20)) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    if (HttpGet(port, "/readyz").first == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Thousands of CNI connections, one after another, leave no thread or mapping
// behind; clients that connect and say nothing are dropped after the read
// deadline, and a request that came while they held every worker is served
// once they are gone.
TEST(AgentE2eTest, TheCniSocketStaysBoundedAndDropsSilentClients) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.70", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-bounded");
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), scratch.path, port);
  options.flow_logs = false;
  options.cni_max_connections = 4;
  options.cni_timeout = std::chrono::milliseconds(1000);
  RunningAgent agent(options);
  ASSERT_TRUE(WaitReady(port));
  struct stat st {};
  ASSERT_EQ(::stat(options.socket_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << "the CNI socket is root's alone";

  const cni::PodRegistration reg{
      {"c-conn", "eth0"}, "shop", "conn", "", {*IpAddress::Parse("198.18.7.70")}, "", "", true};
  const auto request = [&] {
    return cni::ConfirmWithAgent(options.socket_path, cni::AgentOp::kCheck, reg,
                                 std::chrono::milliseconds(5000));
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(request().ok());  // the workers and programs warmed up
  const size_t threads_before = ThreadCount();
  const size_t mappings_before = MappingCount();
  constexpr int kConnections = 2000;
  for (int i = 0; i < kConnections; ++i) {
    const Status s = request();
    ASSERT_TRUE(s.ok()) << "connection " << i << ": " << s.error().message();
  }
  const size_t threads_after = ThreadCount();
  const size_t mappings_after = MappingCount();
  std::cout << "threads " << threads_before << " -> " << threads_after << ", mappings " << mappings_before
            << " -> " << mappings_after << " after " << kConnections << " connections\n";
  // Workers start as needed and are kept, up to the cap: under load a request can
  // arrive before the previous one's worker is free, so the pool may still grow
  // from what the warm-up left to the cap (seen: +3 at load average 7). A leak of
  // one per connection would be +2,000.
  EXPECT_LE(threads_after, threads_before + options.cni_max_connections);
  EXPECT_LE(mappings_after, mappings_before + 2 * options.cni_max_connections + 8);

  // Fewer silent clients than workers: requests are served at once.
  {
    const int silent = ConnectSilently(options.socket_path);
    ASSERT_GE(silent, 0);
    const auto start = Clock::now();
    ASSERT_TRUE(request().ok());
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
    EXPECT_GT(SecondsUntilClosed(silent, start, std::chrono::seconds(5)), 0) << "a silent client is dropped";
    ::close(silent);
  }
  // As many silent clients as workers: each is dropped after the deadline,
  // and the request waiting meanwhile is served then.
  std::vector<int> silent;
  for (size_t i = 0; i < options.cni_max_connections; ++i) {
    silent.push_back(ConnectSilently(options.socket_path));
    ASSERT_GE(silent.back(), 0);
  }
  const auto connected = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // every worker holds one
  const Status waited = request();
  EXPECT_TRUE(waited.ok()) << waited.error().message();
  for (const int fd : silent) {
    const double closed = SecondsUntilClosed(fd, connected, std::chrono::seconds(5));
    EXPECT_GT(closed, 0.8) << "dropped before the deadline";
    EXPECT_LT(closed, 3.0) << "not dropped after the deadline";
    ::close(fd);
  }
  EXPECT_LE(ThreadCount(), threads_before + options.cni_max_connections + 2);
}

// Runs the real netpold with `args`: its exit code (-1: still running after
// `within`, then killed) and what it wrote to stderr.
struct NetpoldExit {
  int code = -1;
  std::string stderr_text;
  double seconds = 0;
};
NetpoldExit RunNetpold(const std::vector<std::string>& args, std::chrono::seconds within) {
  NetpoldExit result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return result;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    std::vector<char*> argv;
    std::string bin = NETPOL_NETPOLD_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  int status = 0;
  bool exited = false;
  while (Clock::now() - start < within) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);  // the child started above, and only it
    ::waitpid(pid, &status, 0);
  } else {
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0)
    result.stderr_text.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  return result;
}

// netpold cannot serve what it was asked to: it says why and exits non-zero
// at once, instead of running on without its metrics or its CNI socket.
TEST(AgentE2eTest, NetpoldExitsAtOnceWhenItCannotBindItsPortOrSocket) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.90", ""}}).ok());
  const ScratchDir scratch(node.prefix() + "-bind");
  // A port somebody else listens on.
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t length = sizeof(address);
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string port = std::to_string(ntohs(address.sin_port));
  const std::vector<std::string> common = {
      "--server",  "http://127.0.0.1:1", "--node-name",         "node-1",      "--netns",
      node.node(), "--state-dir",        scratch.path + "/cni", "--flow-logs", "false"};
  {
    std::vector<std::string> args = common;
    args.insert(args.end(),
                {"--socket", scratch.path + "/agent.sock", "--metrics-address", "127.0.0.1:" + port});
    const NetpoldExit run = RunNetpold(args, std::chrono::seconds(5));
    EXPECT_NE(run.code, -1) << "still running after 5 s with its metrics port taken";
    EXPECT_NE(run.code, 0);
    EXPECT_NE(run.stderr_text.find("127.0.0.1:" + port), std::string::npos) << run.stderr_text;
    std::cout << "metrics port taken: exit " << run.code << " after " << run.seconds
              << " s: " << run.stderr_text;
  }
  {
    std::ofstream(scratch.path + "/file") << "not a directory";
    std::vector<std::string> args = common;
    const std::string socket = scratch.path + "/file/agent.sock";
    args.insert(args.end(),
                {"--socket", socket, "--metrics-address", "127.0.0.1:" + std::to_string(FreeLoopbackPort())});
    const NetpoldExit run = RunNetpold(args, std::chrono::seconds(5));
    EXPECT_NE(run.code, -1) << "still running after 5 s without its CNI socket";
    EXPECT_NE(run.code, 0);
    EXPECT_NE(run.stderr_text.find(socket), std::string::npos) << run.stderr_text;
  }
  ::close(taken);
}

// /readyz says what is true: not ready while the API cannot be watched, and
// ready again once it can (a watch stream open again, with nothing to deliver).
TEST(AgentE2eTest, ReadyzFailsWhileTheApiWatchesFail) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.95", ""}}).ok());
  const ScratchDir scratch(node.prefix() + "-readyz");
  const lab::ApiServerOptions api_options{
      .port = FreeLoopbackPort(), .database = scratch.path + "/api.db", .nodes = {"node-1"}};
  Result<ShopApi> api = StartShopApi(api_options);
  ASSERT_TRUE(api.ok()) << api.error().message();
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), scratch.path, port);
  options.flow_logs = false;
  RunningAgent agent(options);
  ASSERT_TRUE(WaitReady(port));
  api->server->Stop();
  api->server.reset();
  std::pair<int, std::string> ready{200, ""};
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline && (ready = HttpGet(port, "/readyz")).first == 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(ready.first, 503);
  EXPECT_NE(ready.second.find("watch is failing"), std::string::npos) << ready.second;
  EXPECT_EQ(HttpGet(port, "/healthz").first, 200) << "the agent itself is fine";
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(HttpGet(port, "/readyz").first, 503) << "still failing";
  // The API back (the same port and state): ready again, with no event.
  Result<std::unique_ptr<lab::ApiServer>> back = lab::ApiServer::Start(api_options);
  ASSERT_TRUE(back.ok()) << back.error().message();
  const auto restarted = Clock::now();
  EXPECT_TRUE(WaitReady(port, std::chrono::seconds(20))) << HttpGet(port, "/readyz").second;
  std::cout << "ready again " << std::chrono::duration<double>(Clock::now() - restarted).count()
            << " s after the API came back\n";
}

// Someone deletes the agent's table, a chain of it, a rule, an element: the
// agent notices (nftables' change notifications), restores it within a
// second and counts the repair; nothing is reported as a failed program.
void ExpectDriftRepaired(bool notifications) {
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.80", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-drift");
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), scratch.path, port);
  options.flow_logs = false;
  options.dataplane_notifications = notifications;
  if (!notifications) options.dataplane_check_interval = std::chrono::milliseconds(300);
  RunningAgent agent(options);
  ASSERT_TRUE(WaitReady(port));
  const std::string ip = "198.18.7.80";
  ASSERT_TRUE(PostPod(*api->client, "drift", ip).ok());
  const Json policy = {
      {"metadata", {{"name", "deny-drift"}}},
      {"spec", {{"podSelector", {{"matchLabels", {{"app", "drift"}}}}}, {"ingress", Json::array()}}}};
  ASSERT_TRUE(
      api->client
          ->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", policy.dump())
          .ok());
  const cni::PodRegistration reg{{"c-drift", "eth0"},     "shop", "drift", "",
                                 {*IpAddress::Parse(ip)}, "",     "",      true};
  ASSERT_TRUE(
      cni::ConfirmWithAgent(options.socket_path, cni::AgentOp::kAdd, reg, std::chrono::seconds(10)).ok());
  const auto isolated = [&] { return IsolatedV4(node.node()).find(ip) != std::string::npos; };
  ASSERT_TRUE(isolated());
  const auto nft = [&](const std::string& command) {
    return std::system(("ip netns exec " + node.node() + " nft " + command + " >/dev/null 2>&1").c_str()) ==
           0;
  };
  const auto listing = [&](const std::string& what) {
    std::string out;
    const std::string command = "ip netns exec " + node.node() + " nft list " + what + " 2>/dev/null";
    if (FILE* f = ::popen(command.c_str(), "r")) {
      char buffer[4096];
      size_t n = 0;
      while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
      ::pclose(f);
    }
    return out;
  };
  const auto metric = [&](const std::string& series) {
    return Value(HttpGet(port, "/metrics").second, series);
  };
  // Seconds until `restored` holds (-1: not within 5 s).
  const auto restored_after = [&](const std::function<bool()>& restored) {
    const auto start = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(5)) {
      if (restored()) return std::chrono::duration<double>(Clock::now() - start).count();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1.0;
  };
  const double limit = notifications ? 1.0 : 1.5;  // read back every 300 ms without notifications
  struct Case {
    std::string name, command;
    std::function<bool()> restored;
  };
  const std::vector<Case> cases = {
      {"table deleted", "delete table inet netpol", isolated},
      {"chain deleted", "delete chain inet netpol forward",
       [&] { return nft("list chain inet netpol forward"); }},
      {"rules flushed", "flush chain inet netpol input",
       [&] { return listing("chain inet netpol input").find("goto input_checked") != std::string::npos; }},
      {"element deleted", "delete element inet netpol in_isolated_v4 { " + ip + " }", isolated},
  };
  double repairs = 0;
  for (const Case& c : cases) {
    ASSERT_TRUE(nft(c.command)) << c.name;
    const double after = restored_after(c.restored);
    std::cout << c.name << ": restored after " << after << " s\n";
    EXPECT_GE(after, 0) << c.name << ": not restored within 5 s";
    EXPECT_LT(after, limit) << c.name;
    ++repairs;
    const auto counted_by = Clock::now() + std::chrono::seconds(2);
    while (Clock::now() < counted_by && metric("netpol_agent_dataplane_repairs_total") < repairs) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(metric("netpol_agent_dataplane_repairs_total"), repairs) << c.name;
  }
  EXPECT_EQ(metric("netpol_agent_program_failures_total"), 0) << "a repair is not a failed program";
}

TEST(AgentE2eTest, RulesChangedBehindTheAgentAreRestoredWithinASecond) {
  NETPOL_REQUIRE_E2E();
  ExpectDriftRepaired(/*notifications=*/true);
}

TEST(AgentE2eTest, RulesChangedBehindTheAgentAreRestoredByThePeriodicReadBack) {
  NETPOL_REQUIRE_E2E();
  ExpectDriftRepaired(/*notifications=*/false);
}

// A loop that is alive but stuck fails /healthz, naming it, and passes again
// once it moves: here the programming loop, blocked reserving a pod's
// addresses while someone (a hung plugin) holds the IPAM's lock.
TEST(AgentE2eTest, HealthzFailsWhileTheProgrammingLoopIsStuck) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.100", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-stuck");
  const std::string& dir = scratch.path;
  WriteCniConf(dir, "198.18.95.0/24");
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), dir, port);
  options.flow_logs = false;
  options.cni_conf = dir + "/conf.json";
  options.stuck_after = std::chrono::milliseconds(1000);
  RunningAgent agent(options);
  ASSERT_TRUE(WaitReady(port));
  ASSERT_EQ(HttpGet(port, "/healthz"), (std::pair<int, std::string>{200, "ok\n"}));
  // The allocator's lock (cni/ipam.cpp: <stateDir>/ipam/<network>/lock), held.
  const std::string lock_path = dir + "/cni/ipam/netpol/lock";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(lock, 0) << lock_path;
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);
  // A pod scheduled here: the programming loop reserves its addresses.
  const Json pod = {{"metadata", {{"name", "held"}, {"labels", {{"app", "held"}}}}},
                    {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}}}}}},
                    {"status", {{"phase", "Pending"}}}};
  ASSERT_TRUE(api->client->Request("POST", "/api/v1/namespaces/shop/pods", pod.dump()).ok());
  const auto held = Clock::now();
  std::pair<int, std::string> health{200, ""};
  while (Clock::now() - held < std::chrono::seconds(10) &&
         (health = HttpGet(port, "/healthz")).first == 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double noticed = std::chrono::duration<double>(Clock::now() - held).count();
  std::cout << "stuck programming loop: /healthz failed after " << noticed << " s: " << health.second;
  EXPECT_EQ(health.first, 503);
  EXPECT_NE(health.second.find("the programming loop made no progress for"), std::string::npos)
      << health.second;
  EXPECT_EQ(health.second.find("CNI socket"), std::string::npos) << "only the stuck loop: " << health.second;
  EXPECT_GE(noticed, 0.9) << "not before the bound";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(HttpGet(port, "/healthz").first, 503) << "still stuck";
  EXPECT_EQ(agent->stats().reservations_in_force, 0u);
  // The lock released: the loop moves on, reserves and programs the pod.
  ::close(lock);
  const auto freed = Clock::now();
  while (Clock::now() - freed < std::chrono::seconds(10) &&
         (health = HttpGet(port, "/healthz")).first != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(health, (std::pair<int, std::string>{200, "ok\n"}));
  while (Clock::now() - freed < std::chrono::seconds(10) && agent->stats().reservations_in_force == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(agent->stats().reservations_in_force, 1u);
}

// The real dataplane with one fault: its change feed throws once the test
// says so (a bug in a loop, as the agent would meet it).
class ThrowingFeedBackend final : public dataplane::Backend {
 public:
  ThrowingFeedBackend(std::unique_ptr<dataplane::Backend> real, const std::atomic<bool>& fail)
      : real_(std::move(real)), fail_(fail) {}
  Result<dataplane::ApplyStats> Apply(const policy::NodeProgram& program) override {
    return real_->Apply(program);
  }
  Result<dataplane::ApplyStats> Apply(policy::NodeProgram&& program) override {
    return real_->Apply(std::move(program));
  }
  Result<std::string> Plan(const policy::NodeProgram& program) override { return real_->Plan(program); }
  Result<std::string> Show() override { return real_->Show(); }
  Status Remove() override { return real_->Remove(); }
  Result<std::vector<std::string>> Verify() override { return real_->Verify(); }
  size_t InstalledElements() const override { return real_->InstalledElements(); }
  Result<std::vector<dataplane::ConnectionCount>> CountConnections() override {
    return real_->CountConnections();
  }
  Result<std::unique_ptr<dataplane::ChangeFeed>> WatchChanges() override {
    NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<dataplane::ChangeFeed> feed, real_->WatchChanges(), "");
    return std::unique_ptr<dataplane::ChangeFeed>(std::make_unique<Feed>(std::move(feed), fail_));
  }

 private:
  class Feed final : public dataplane::ChangeFeed {
   public:
    Feed(std::unique_ptr<dataplane::ChangeFeed> real, const std::atomic<bool>& fail)
        : real_(std::move(real)), fail_(fail) {}
    Result<std::vector<std::string>> Next(std::chrono::milliseconds timeout) override {
      if (fail_.load()) throw std::runtime_error("injected: the notification socket broke");
      return real_->Next(timeout);
    }

   private:
    std::unique_ptr<dataplane::ChangeFeed> real_;
    const std::atomic<bool>& fail_;
  };
  std::unique_ptr<dataplane::Backend> real_;
  const std::atomic<bool>& fail_;
};

// A loop that throws ends the run (every other loop stopped, the metrics
// port and the CNI socket closed) with an error naming the loop and the
// exception, which netpold prints before exiting 1.
TEST(AgentE2eTest, ALoopThatThrowsEndsTheRunNamingIt) {
  NETPOL_REQUIRE_E2E();
  testing::PacketLab node;
  ASSERT_TRUE(node.Up({{"198.18.7.105", ""}}).ok());
  Result<ShopApi> api = StartShopApi();
  ASSERT_TRUE(api.ok()) << api.error().message();
  const ScratchDir scratch(node.prefix() + "-throw");
  const int port = FreeLoopbackPort();
  agent::AgentOptions options = OptionsFor(node, api->server->url(), scratch.path, port);
  options.flow_logs = false;
  std::atomic<bool> fail{false};
  RunningAgent agent(
      options, [&fail](const agent::AgentOptions& o) -> Result<std::unique_ptr<dataplane::Backend>> {
        NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<dataplane::Backend> real, agent::NftablesBackend(o), "");
        return std::unique_ptr<dataplane::Backend>(
            std::make_unique<ThrowingFeedBackend>(std::move(real), fail));
      });
  ASSERT_TRUE(WaitReady(port));
  ASSERT_TRUE(std::filesystem::exists(options.socket_path));
  EXPECT_FALSE(agent.ReturnedWithin(std::chrono::milliseconds(500)).has_value()) << "runs until the fault";
  fail = true;
  const std::optional<Status> returned = agent.ReturnedWithin(std::chrono::seconds(5));
  ASSERT_TRUE(returned.has_value()) << "still running 5 s after its dataplane change watch threw";
  ASSERT_FALSE(returned->ok());
  EXPECT_EQ(returned->error().code(), ErrorCode::kInternal);
  EXPECT_EQ(returned->error().message(),
            "the dataplane change watch failed: injected: the notification socket broke");
  EXPECT_EQ(HttpGet(port, "/healthz").first, 0) << "the metrics server stopped with it";
  EXPECT_FALSE(std::filesystem::exists(options.socket_path)) << "the CNI socket closed with it";
}

}  // namespace
}  // namespace netpol
