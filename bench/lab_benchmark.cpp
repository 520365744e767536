// Lab latencies and agent memory (root; scripts/bench-lab.sh drives it).
//
//   lab_benchmark BIN_DIR [--pods=10000] [--namespaces=100] [--policies=1000]
//   lab_benchmark BIN_DIR --pods=100000 --namespaces=1000 --policies=10000
//   lab_benchmark BIN_DIR --baseline=OTHER_BIN_DIR   # netpold's start and memory, both builds
//
// An API server (in-process) holds a cluster of 10,000 pods in 100 namespaces
// and 1,000 policies (or the scale given); a node namespace and its agent
// (netpold's Agent, in-process) know all of it. Measured:
//   - watch event -> dataplane updated: a policy change or a local pod's label
//     change made through the API, until the agent has programmed it (100 each);
//   - pod ADD -> policy in force: netpol-cni ADD started as a runtime starts it, for
//     a pod the API already has, until it returns (it returns only once the
//     agent confirms the pod's rules are in force) (100 pods); the agent has
//     seen the pod in the API first and, unless NETPOL_BENCH_RESERVE=0,
//     reserved its address and put its rules in force before the ADD (that
//     lead is measured too: pod created -> rules in force);
//   - agent start: the in-process agent's and the netpold binary's time from
//     start to its first full program in force;
//   - agent memory: the netpold binary against the same API server, RSS after
//     its first full sync, per known pod.
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/nftables_backend.h"
#include "base/exec_args.h"
#include "dataplane/nft/nft_backend.h"
#include "kube/client.h"
#include "lab/apiserver.h"

namespace netpol {
namespace {

using Clock = std::chrono::steady_clock;
using kube::Json;
namespace fs = std::filesystem;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Nearest rank: the smallest sample with at least p of the samples at or
// below it (p99 of 100 samples is the 99th smallest; the largest is printed as
// the max).
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()) - 1e-9));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

int Sh(const std::string& command) {
  return std::system(command.c_str());
}

// Starts `path` in the network namespace `netns_fd` with the given stdin and
// stdout. vfork: this process is large (the API server holds the cluster), and
// copying its page tables on fork would dominate what is measured; the child
// only makes system calls before exec.
__attribute__((noinline)) pid_t SpawnIn(int netns_fd, int in_fd, int out_fd, const char* path,
                                        char* const argv[], char* const envp[]) {
  const pid_t child = ::vfork();
  if (child == 0) {
    ::setns(netns_fd, CLONE_NEWNET);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::execve(path, argv, envp);
    ::_exit(127);
  }
  return child;
}

// The cluster's size: 10k pods in 100 namespaces with 1k policies unless
// flags say otherwise.
struct Scale {
  int pods = 10000;
  int namespaces = 100;
  int policies = 1000;
};

// The address of cluster pod `i` (API data only; no interface has it):
// 198.19.0.1-198.19.255.250 for the first 64,000 (the 10k layout of earlier
// sessions), then 198.18.2.1 upwards (198.18.1.0/24 is the benchmark node's
// IPAM range). 64,000 + 254 * 250 pods fit in 198.18.0.0/15.
std::string PodIp(int i) {
  const int per_block = 250;
  const int in_high = 256 * per_block;
  if (i < in_high) {
    return "198.19." + std::to_string(i / per_block) + "." + std::to_string(i % per_block + 1);
  }
  const int j = i - in_high;
  return "198.18." + std::to_string(2 + j / per_block) + "." + std::to_string(j % per_block + 1);
}

// A realistic shape: apps of 1-8 replicas sharing labels, policies mixing
// default-deny, pod and namespace selectors and ports.
void LoadCluster(kube::Client& api, const Scale& scale) {
  std::mt19937_64 rng(42);
  const int namespaces = scale.namespaces;
  const int pods = scale.pods;
  const int policies = scale.policies;
  for (int n = 0; n < namespaces; ++n) {
    (void)api.Request(
        "POST", "/api/v1/namespaces",
        Json{{"metadata",
              {{"name", "ns-" + std::to_string(n)}, {"labels", {{"team", "t" + std::to_string(n % 7)}}}}}}
            .dump());
  }
  for (int i = 0; i < pods; ++i) {
    const int ns = i % namespaces;
    const int app = static_cast<int>(rng() % 40);
    const Json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", "pod-" + std::to_string(i)},
          {"labels", {{"app", "app-" + std::to_string(app)}, {"tier", app % 3 == 0 ? "db" : "web"}}}}},
        {"spec",
         {{"nodeName", "node-" + std::to_string(2 + i % 20)},
          {"containers", {{{"name", "c"}, {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}},
        {"status", {{"phase", "Running"}, {"podIP", PodIp(i)}}}};
    (void)api.Request("POST", "/api/v1/namespaces/ns-" + std::to_string(ns) + "/pods", pod.dump());
  }
  for (int p = 0; p < policies; ++p) {
    const int ns = p % namespaces;
    Json spec = {{"podSelector", {{"matchLabels", {{"app", "app-" + std::to_string(rng() % 40)}}}}}};
    Json peer =
        p % 2 == 0
            ? Json{{"podSelector", {{"matchLabels", {{"tier", "web"}}}}}}
            : Json{{"namespaceSelector", {{"matchLabels", {{"team", "t" + std::to_string(rng() % 7)}}}}}};
    spec["ingress"] = {{{"from", {peer}}, {"ports", {{{"port", p % 3 == 0 ? Json("http") : Json(5432)}}}}}};
    (void)api.Request("POST",
                      "/apis/networking.k8s.io/v1/namespaces/ns-" + std::to_string(ns) + "/networkpolicies",
                      Json{{"metadata", {{"name", "policy-" + std::to_string(p)}}}, {"spec", spec}}.dump());
  }
}

// Prints the five largest of `ms` with their indices ("what (ms @ index): 9.1@4 ...") and
// returns them all, largest first.
std::vector<std::pair<double, size_t>> PrintSlowest(const char* what, const std::vector<double>& ms) {
  std::vector<std::pair<double, size_t>> slowest;
  for (size_t k = 0; k < ms.size(); ++k) slowest.emplace_back(ms[k], k);
  std::sort(slowest.rbegin(), slowest.rend());
  std::printf("%s (ms @ index):", what);
  for (size_t k = 0; k < std::min<size_t>(5, slowest.size()); ++k) {
    std::printf(" %.1f@%zu", slowest[k].first, slowest[k].second);
  }
  std::printf("\n");
  return slowest;
}

struct AgentMemory {
  double sync_s = 0;      // from the fork to the first full sync's log line
  double sync_cpu_s = 0;  // CPU time (user + system) the agent had used by then
  long rss_kb = 0;
  long hwm_kb = 0;
  long file_kb = 0;  // RssFile: pages of the binary and shared libraries
  std::string sync_line;
};

// Starts the netpold binary in `node_ns`'s node, waits for its first full sync,
// reads its memory, and stops it.
AgentMemory MeasureAgent(const std::string& bin, const std::string& url, const std::string& node_ns,
                         const std::string& state_dir, const std::string& socket, const std::string& log) {
  // Built before fork: this process has threads (the API server), so the
  // child may not allocate.
  const ExecArgs args({bin + "/netpold", "--server", url, "--node-name", "node-1", "--netns", node_ns,
                       "--state-dir", state_dir, "--socket", socket});
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 2);
    ::execve(args.file(), args.argv(), args.envp());
    ::_exit(127);
  }
  ::close(fd);
  AgentMemory out;
  const auto start = Clock::now();
  bool synced = false;
  while (!synced && Clock::now() - start < std::chrono::seconds(900)) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("first full sync in force");
    synced = at != std::string::npos;
    if (synced) {
      const size_t begin = text.rfind('\n', at);
      const size_t end = text.find('\n', at);
      out.sync_line = text.substr(begin == std::string::npos ? 0 : begin + 1, end - begin - 1);
      out.sync_s = Ms(Clock::now() - start) / 1000;
      // On a shared machine the wall time says as much about the neighbours
      // as about the agent: its own CPU time too (stat fields 14 and 15).
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      std::getline(stat, line);
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::vector<std::string> f((std::istream_iterator<std::string>(fields)),
                                 std::istream_iterator<std::string>());
      if (f.size() > 12) {
        out.sync_cpu_s = static_cast<double>(std::stoll(f[11]) + std::stoll(f[12])) /
                         static_cast<double>(::sysconf(_SC_CLK_TCK));
      }
    }
    if (!synced) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  {
    std::ifstream st("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (st >> key) {
      if (key == "VmRSS:") st >> out.rss_kb;
      if (key == "VmHWM:") st >> out.hwm_kb;
      if (key == "RssFile:") st >> out.file_kb;
    }
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  return out;
}

// `baseline`: another build's bin directory ("" for none), whose netpold's
// start and memory are measured beside this one's, in the same run.
int Main(const std::string& bin, const Scale& scale, const std::string& baseline) {
  const std::string tag = "nplb" + std::to_string(::getpid());
  const std::string node_ns = tag + "-node";
  const std::string dir = "/tmp/" + tag;
  fs::create_directories(dir + "/cni");
  // NETPOL_BENCH_CACHE=DIR: the loaded cluster (the API server's SQLite
  // database) is kept in DIR and served from a copy by later runs of the same
  // scale, which then skip the load (~10 minutes at 100k pods). What is
  // measured is the same; the empty-cluster baseline is then taken against
  // a second, empty API server.
  const char* cache_env = std::getenv("NETPOL_BENCH_CACHE");
  std::string database = ":memory:";
  if (cache_env != nullptr && *cache_env != '\0') {
    const std::string cached = std::string(cache_env) + "/lab-cluster-v1-" + std::to_string(scale.pods) +
                               "-" + std::to_string(scale.namespaces) + "-" + std::to_string(scale.policies) +
                               ".db";
    if (!fs::exists(cached)) {
      fs::create_directories(cache_env);
      const std::string loading = cached + ".loading";
      fs::remove(loading);
      auto loader = lab::ApiServer::Start({.database = loading, .nodes = {"node-1"}});
      if (!loader) {
        std::fprintf(stderr, "%s\n", loader.error().message().c_str());
        return 2;
      }
      auto loader_client = kube::Client::Create(kube::Api((*loader)->url()));
      const auto load_start = Clock::now();
      LoadCluster(**loader_client, scale);
      (*loader)->Stop();
      loader->reset();
      fs::rename(loading, cached);
      std::printf("cluster loaded into %s (%.1f s)\n", cached.c_str(), Ms(Clock::now() - load_start) / 1000);
    }
    database = dir + "/cluster.db";
    fs::copy_file(cached, database);
  }
  const bool preloaded = database != ":memory:";
  auto server = lab::ApiServer::Start({.database = database, .nodes = {"node-1"}});
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message().c_str());
    return 2;
  }
  auto client = kube::Client::Create(kube::Api((*server)->url()));
  // The node: its namespace with a route to the pods' gateway for proxy ARP.
  Sh("ip netns add " + node_ns + " && ip -n " + node_ns + " link set lo up && ip -n " + node_ns +
     " link add up0 type veth peer name up1 && ip -n " + node_ns + " link set up0 up && ip -n " + node_ns +
     " route add 169.254.1.1/32 dev up0");
  // The agent's memory with nothing to know yet: the baseline for per-pod memory.
  fs::create_directories(dir + "/empty-cni");
  AgentMemory empty;
  AgentMemory baseline_empty;
  if (preloaded) {
    auto empty_server = lab::ApiServer::Start({.nodes = {"node-1"}});
    if (!empty_server) {
      std::fprintf(stderr, "%s\n", empty_server.error().message().c_str());
      return 2;
    }
    empty = MeasureAgent(bin, (*empty_server)->url(), node_ns, dir + "/empty-cni", dir + "/agent0.sock",
                         dir + "/netpold-empty.log");
    if (!baseline.empty()) {
      baseline_empty = MeasureAgent(baseline, (*empty_server)->url(), node_ns, dir + "/empty-cni",
                                    dir + "/agent0.sock", dir + "/netpold-empty.log");
    }
    std::printf("cluster served from a copy of the cached load: %d pods in %d namespaces, %d policies\n",
                scale.pods, scale.namespaces, scale.policies);
  } else {
    empty = MeasureAgent(bin, (*server)->url(), node_ns, dir + "/empty-cni", dir + "/agent0.sock",
                         dir + "/netpold-empty.log");
    if (!baseline.empty()) {
      baseline_empty = MeasureAgent(baseline, (*server)->url(), node_ns, dir + "/empty-cni",
                                    dir + "/agent0.sock", dir + "/netpold-empty.log");
    }
    const auto load_start = Clock::now();
    LoadCluster(**client, scale);
    std::printf("cluster loaded into the API server: %d pods in %d namespaces, %d policies (%.1f s)\n",
                scale.pods, scale.namespaces, scale.policies, Ms(Clock::now() - load_start) / 1000);
  }
  // NETPOL_BENCH_SYNC_ONLY=1: only the agents' first syncs and memory (no
  // ADDs, no events), for profiling the start.
  const char* sync_only_env = std::getenv("NETPOL_BENCH_SYNC_ONLY");
  const bool sync_only = sync_only_env != nullptr && std::string(sync_only_env) == "1";
  int status = 0;
  // The plugin's configuration, which the agent also reads to reserve the
  // addresses of pods scheduled to its node (NETPOL_BENCH_RESERVE=0: it does
  // not, and each ADD programs its pod from scratch).
  const Json conf = {{"cniVersion", "1.0.0"},
                     {"name", "bench"},
                     {"type", "netpol-cni"},
                     {"stateDir", dir + "/cni"},
                     {"agentSocket", dir + "/agent.sock"},
                     {"ipam", {{"ranges", {"198.18.1.0/24"}}}}};
  std::ofstream(dir + "/conf.json") << conf.dump();
  const char* reserve_env = std::getenv("NETPOL_BENCH_RESERVE");
  const bool reserve = reserve_env == nullptr || std::string(reserve_env) != "0";
  {
    agent::AgentOptions options;
    options.api = kube::Api((*server)->url());
    options.node_name = "node-1";
    options.netns = node_ns;
    options.state_dir = dir + "/cni";
    options.socket_path = dir + "/agent.sock";
    options.log_level = agent::LogLevel::kWarn;
    if (reserve) options.cni_conf = dir + "/conf.json";
    agent::Agent agent(options, agent::NftablesBackend);
    std::atomic<bool> stop{false};
    std::thread running([&] { (void)agent.Run(stop); });
    const auto sync_start = Clock::now();
    while (!agent.stats().synced && Clock::now() - sync_start < std::chrono::seconds(900)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("agent synced (in-process; start -> first full program in force): %.0f ms\n",
                Ms(Clock::now() - sync_start));

    // Pod ADD -> policy in force: the real plugin, for pods the API has.
    std::vector<double> add_ms;
    std::vector<double> ahead_ms;  // pod created in the API -> its rules in force, before its ADD
    std::vector<Clock::time_point> add_start;
    std::vector<double> add_parts[3];          // until the agent has the request, compile, dataplane
    std::vector<agent::AgentStats> add_stats;  // the agent's, right after each ADD
    // One unmeasured ADD first (pod 100): the plugin's first exec from this
    // process pays cold caches (configured at 7 ms instead of 1.3; up to
    // 36 ms measured), which a node running it all day does not.
    for (int i = -1; i < (sync_only ? -1 : 100); ++i) {
      const bool warmup = i < 0;
      const int n = warmup ? 100 : i;
      const std::string pod = "bench-" + std::to_string(n);
      const std::string pod_ns = tag + "-p" + std::to_string(n);
      const std::string app = warmup ? "warmup" : "app-" + std::to_string(i % 40);
      Sh("ip netns add " + pod_ns);
      const auto created = Clock::now();
      (void)(*client)->Request("POST", "/api/v1/namespaces/ns-1/pods",
                               Json{{"metadata", {{"name", pod}, {"labels", {{"app", app}}}}},
                                    {"spec", {{"nodeName", "node-1"}, {"containers", {{{"name", "c"}}}}}}}
                                   .dump());
      if (reserve) {
        // A runtime takes far longer than this between seeing the pod and
        // its ADD (a sandbox, an image); the agent programs the pod meanwhile.
        while (agent.stats().reservations_in_force < static_cast<uint64_t>(i + 2) &&
               Clock::now() - created < std::chrono::seconds(2)) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        if (!warmup) ahead_ms.push_back(Ms(Clock::now() - created));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the agent has seen the pod
      // As a runtime on the node runs it: the plugin started directly in the
      // node's namespace (no shell, no `ip netns exec`).
      const std::vector<std::string> env = {"CNI_COMMAND=ADD",
                                            "CNI_CONTAINERID=c" + std::to_string(n),
                                            "CNI_NETNS=/run/netns/" + pod_ns,
                                            "CNI_IFNAME=eth0",
                                            "CNI_PATH=" + bin,
                                            "CNI_ARGS=K8S_POD_NAMESPACE=ns-1;K8S_POD_NAME=" + pod,
                                            "NETPOL_CNI_TRACE=" + dir + "/cni-trace.txt"};
      const int node_fd = ::open(("/run/netns/" + node_ns).c_str(), O_RDONLY | O_CLOEXEC);
      const int conf_fd = ::open((dir + "/conf.json").c_str(), O_RDONLY | O_CLOEXEC);
      const std::string plugin = bin + "/netpol-cni";
      std::vector<char*> envp;
      for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      char* argv[] = {const_cast<char*>(plugin.c_str()), nullptr};
      const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
      const auto start = Clock::now();
      const pid_t child = SpawnIn(node_fd, conf_fd, null_fd, plugin.c_str(), argv, envp.data());
      ::close(null_fd);
      int wstatus = 0;
      ::waitpid(child, &wstatus, 0);
      if (!warmup) {
        add_ms.push_back(Ms(Clock::now() - start));
        add_start.push_back(start);
        const agent::AgentStats after = agent.stats();
        add_parts[0].push_back(Ms(after.last_change_at - start));
        add_parts[1].push_back(after.last_compile_ms);
        add_parts[2].push_back(after.last_dataplane_ms);
        add_stats.push_back(after);
      }
      ::close(node_fd);
      ::close(conf_fd);
      const int rc = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
      if (rc != 0) {
        std::fprintf(stderr, "CNI ADD failed for %s\n", pod.c_str());
        status = 1;
        break;
      }
    }
    // Watch event -> dataplane updated: label flips of a local pod (its peers
    // and its own rules change) and policy creations, one at a time.
    std::vector<double> event_ms;
    // Where an event's time goes: until the agent has it (API server, watch,
    // decoding, engine), compiling, the dataplane backend.
    std::vector<double> event_parts[3];
    std::vector<uint64_t> event_elements;                // nft elements each change added or removed
    std::vector<std::pair<double, double>> event_split;  // of the dataplane: plan, send (ms)
    for (int i = 0; i < 100 && status == 0 && !sync_only; ++i) {
      const uint64_t before = agent.stats().programs;
      const auto start = Clock::now();
      if (i % 2 == 0) {
        (void)(*client)->Request(
            "PATCH", "/api/v1/namespaces/ns-1/pods/bench-" + std::to_string(i),
            Json{{"metadata", {{"labels", {{"app", "app-" + std::to_string((i + 7) % 40)}}}}}}.dump(),
            "application/merge-patch+json");
      } else {
        (void)(*client)->Request(
            "POST", "/apis/networking.k8s.io/v1/namespaces/ns-1/networkpolicies",
            Json{{"metadata", {{"name", "bench-" + std::to_string(i)}}},
                 {"spec",
                  {{"podSelector", {{"matchLabels", {{"app", "app-" + std::to_string(i % 40)}}}}},
                   {"ingress", {{{"ports", {{{"port", 9000 + i}}}}}}}}}}
                .dump());
      }
      while (agent.stats().programs == before && Clock::now() - start < std::chrono::seconds(10)) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      event_ms.push_back(Ms(Clock::now() - start));
      const agent::AgentStats after = agent.stats();
      event_parts[0].push_back(Ms(after.last_change_at - start));
      event_parts[1].push_back(after.last_compile_ms);
      event_parts[2].push_back(after.last_dataplane_ms);
      event_elements.push_back(after.last_elements_changed);
      event_split.emplace_back(after.last_plan_ms, after.last_send_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
    running.join();
    if (!add_ms.empty()) {
      // The slowest, with when they happened (a kernel busy tearing down an
      // earlier run's namespaces holds the rtnl lock the plugin needs).
      const std::vector<std::pair<double, size_t>> slowest = PrintSlowest("slowest ADDs", add_ms);
      // The plugin's steps (NETPOL_CNI_TRACE), in ms since the ADD started.
      std::map<std::string, std::vector<std::pair<std::string, double>>> steps;
      {
        std::ifstream trace(dir + "/cni-trace.txt");
        std::string container, step;
        long long ns = 0;
        while (trace >> container >> step >> ns) {
          const size_t k = std::stoul(container.substr(1));
          if (k >= add_start.size()) continue;
          const auto at = Clock::time_point(std::chrono::nanoseconds(ns));
          steps[container].emplace_back(step, Ms(at - add_start[k]));
        }
      }
      const auto print_steps = [&](size_t k) {
        std::printf("  ADD %zu (%.1f ms):", k, add_ms[k]);
        for (const auto& [step, ms] : steps["c" + std::to_string(k)])
          std::printf(" %s %.2f", step.c_str(), ms);
        const agent::AgentStats& a = add_stats[k];
        std::printf(
            "; agent had it at %.2f (policy read %.2f, attach %.2f), compile %.2f, dataplane %.2f "
            "[plan %.2f / send %.2f, %llu elements]\n",
            add_parts[0][k], a.last_policy_read_ms, a.last_attach_ms, add_parts[1][k], add_parts[2][k],
            a.last_plan_ms, a.last_send_ms, static_cast<unsigned long long>(a.last_elements_changed));
        // The agent's side, on the same clock: its threads waking, its lock, its program.
        const agent::AgentStats::AddTimeline& t = a.last_add;
        const auto at = [&](Clock::time_point p) {
          return p == Clock::time_point() ? -1.0 : Ms(p - add_start[k]);
        };
        std::printf(
            "    agent: stage read %.2f, attached %.2f, checked %.2f; program %.2f-%.2f-%.2f; add read %.2f, "
            "answered %.2f\n",
            at(t.stage_received), at(t.attached), at(t.checked), at(t.program_started),
            at(t.program_compiled), at(t.program_applied), at(t.add_received), at(t.answered));
      };
      for (size_t k = 0; k < std::min<size_t>(3, slowest.size()); ++k) print_steps(slowest[k].second);
      print_steps(slowest[slowest.size() / 2].second);
      std::printf(
          "pod ADD -> policy in force (netpol-cni ADD, wiring included), %zu pods: p50 %.2f ms, p99 %.2f "
          "ms, max %.2f ms\n",
          add_ms.size(), Percentile(add_ms, 0.5), Percentile(add_ms, 0.99), Percentile(add_ms, 1.0));
      std::printf(
          "  of which: to the agent p50 %.2f p99 %.2f; compile p50 %.2f p99 %.2f; dataplane p50 %.2f p99 "
          "%.2f ms\n",
          Percentile(add_parts[0], 0.5), Percentile(add_parts[0], 0.99), Percentile(add_parts[1], 0.5),
          Percentile(add_parts[1], 0.99), Percentile(add_parts[2], 0.5), Percentile(add_parts[2], 0.99));
      if (ahead_ms.empty()) {
        std::printf("  (NETPOL_BENCH_RESERVE=0: no pod was programmed ahead of its ADD)\n");
      } else {
        std::printf(
            "pod created in the API -> its rules in force ahead of its ADD (address reserved), %zu pods: p50 "
            "%.2f ms, p99 %.2f ms, max %.2f ms\n",
            ahead_ms.size(), Percentile(ahead_ms, 0.5), Percentile(ahead_ms, 0.99),
            Percentile(ahead_ms, 1.0));
        (void)PrintSlowest("  slowest ahead", ahead_ms);
      }
    }
    if (!event_ms.empty()) {
      std::vector<std::pair<double, size_t>> slowest;
      for (size_t k = 0; k < event_ms.size(); ++k) slowest.emplace_back(event_ms[k], k);
      std::sort(slowest.rbegin(), slowest.rend());
      std::printf("slowest events (ms: to agent + compile + dataplane [plan/send], elements changed):");
      for (size_t k = 0; k < std::min<size_t>(5, slowest.size()); ++k) {
        const size_t at = slowest[k].second;
        std::printf(" %.1f (%.1f+%.1f+%.1f [%.1f/%.1f], %llu)", slowest[k].first, event_parts[0][at],
                    event_parts[1][at], event_parts[2][at], event_split[at].first, event_split[at].second,
                    static_cast<unsigned long long>(event_elements[at]));
      }
      std::printf("\n");
      std::printf("watch event -> dataplane updated, %zu changes: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                  event_ms.size(), Percentile(event_ms, 0.5), Percentile(event_ms, 0.99),
                  Percentile(event_ms, 1.0));
      std::printf(
          "  of which: to the agent p50 %.2f p99 %.2f; compile p50 %.2f p99 %.2f; dataplane p50 %.2f p99 "
          "%.2f ms\n",
          Percentile(event_parts[0], 0.5), Percentile(event_parts[0], 0.99), Percentile(event_parts[1], 0.5),
          Percentile(event_parts[1], 0.99), Percentile(event_parts[2], 0.5),
          Percentile(event_parts[2], 0.99));
    }
  }
  // Agent memory: the real binary, its RSS once synced, against the same
  // state minus the cluster (measured first, before the cluster was loaded).
  const AgentMemory full =
      MeasureAgent(bin, (*server)->url(), node_ns, dir + "/cni", dir + "/agent2.sock", dir + "/netpold.log");
  const double known = scale.pods + 100;
  std::printf("netpold: %s\n", full.sync_line.c_str());
  std::printf("netpold start -> first full program in force: %.2f s (%.2f s of CPU)\n", full.sync_s,
              full.sync_cpu_s);
  std::printf(
      "netpold memory after sync (%.0f pods, %d policies known): RSS %.1f MiB (%.2f KiB/pod), peak %.1f "
      "MiB (%.2f KiB/pod)\n",
      known, scale.policies + 50, static_cast<double>(full.rss_kb) / 1024,
      static_cast<double>(full.rss_kb) / known, static_cast<double>(full.hwm_kb) / 1024,
      static_cast<double>(full.hwm_kb) / known);
  std::printf(
      "netpold memory per known pod over an empty cluster's (RSS %.1f MiB, of it %.1f MiB shared library "
      "pages): %.2f KiB/pod\n",
      static_cast<double>(empty.rss_kb) / 1024, static_cast<double>(empty.file_kb) / 1024,
      static_cast<double>(full.rss_kb - empty.rss_kb) / known);
  if (!baseline.empty()) {
    const AgentMemory old = MeasureAgent(baseline, (*server)->url(), node_ns, dir + "/cni",
                                         dir + "/agent3.sock", dir + "/netpold-baseline.log");
    const double old_per_pod = static_cast<double>(old.rss_kb - baseline_empty.rss_kb) / known;
    const double new_per_pod = static_cast<double>(full.rss_kb - empty.rss_kb) / known;
    std::printf(
        "baseline netpold (%s), same run: start -> first full program in force %.2f s (%.2f s of CPU), RSS "
        "%.1f MiB, peak %.1f MiB, per known pod %.2f KiB\n",
        baseline.c_str(), old.sync_s, old.sync_cpu_s, static_cast<double>(old.rss_kb) / 1024,
        static_cast<double>(old.hwm_kb) / 1024, old_per_pod);
    std::printf("  this build / baseline: start %.3f (CPU %.3f), per known pod %.3f, peak RSS %.3f\n",
                full.sync_s / old.sync_s, full.sync_cpu_s / old.sync_cpu_s, new_per_pod / old_per_pod,
                static_cast<double>(full.hwm_kb) / static_cast<double>(old.hwm_kb));
  }
  // Clean up exactly what we made.
  for (int i = 0; i <= 100; ++i) Sh("ip netns del " + tag + "-p" + std::to_string(i) + " 2>/dev/null");
  Sh("ip netns del " + node_ns);
  fs::remove_all(dir);
  return status;
}

}  // namespace
}  // namespace netpol

int main(int argc, char** argv) {
  netpol::Scale scale;
  std::string baseline;
  // BIN_DIR comes first; `--help` or a flag in its place is a usage error.
  bool ok = argc >= 2 && argv[1][0] != '-';
  for (int i = 2; i < argc && ok; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    if (key == "--baseline" && eq != std::string::npos) {
      baseline = arg.substr(eq + 1);
      continue;
    }
    int* field = key == "--pods"         ? &scale.pods
                 : key == "--namespaces" ? &scale.namespaces
                 : key == "--policies"   ? &scale.policies
                                         : nullptr;
    ok = field != nullptr && eq != std::string::npos;
    if (ok) *field = std::atoi(arg.c_str() + eq + 1);
  }
  // Pods beyond 127,500 have no address left in 198.18.0.0/15 (PodIp); the
  // benchmark's own pods live in ns-1.
  ok = ok && scale.pods > 0 && scale.pods <= 127500 && scale.namespaces >= 2 && scale.policies > 0;
  if (!ok) {
    std::fprintf(stderr,
                 "usage: lab_benchmark BIN_DIR [--pods=N (<= 127500)] [--namespaces=N (>= 2)] [--policies=N] "
                 "[--baseline=OTHER_BIN_DIR]\n");
    return 2;
  }
  // Progress as it happens when the output goes to a file (a 100k run takes minutes).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return netpol::Main(argv[1], scale, baseline);
}
