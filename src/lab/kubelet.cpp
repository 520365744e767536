#include "lab/kubelet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "base/exec_args.h"
#include "base/ip.h"
#include "base/netns.h"
#include "kube/client.h"
#include "lab/internal/clock.h"

namespace netpol::lab {
namespace {

using Clock = std::chrono::steady_clock;
using kube::Json;

using internal::Rfc3339Now;

// Runs argv (PATH lookup) with `env`, in the network namespace `netns` when
// given; stdin from `input`, stdout collected. Returns the exit code (-1 when
// killed or not run).
int RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& netns, const std::string& input, std::string* output,
               std::chrono::milliseconds timeout) {
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return -1;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return -1;
  }
  int ns_fd = -1;
  if (!netns.empty()) {
    Result<int> fd = OpenNetns(netns);
    if (!fd) return -1;
    ns_fd = *fd;
  }
  const ExecArgs args(argv, env);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execvpe(args.file(), args.argv(), args.envp());
    ::_exit(127);
  }
  if (ns_fd >= 0) ::close(ns_fd);
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    return -1;
  }
  (void)!::write(in[1], input.data(), input.size());
  ::close(in[1]);
  const auto deadline = Clock::now() + timeout;
  std::string collected;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    collected.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (output != nullptr) *output = collected;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> BaseEnv() {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
}

struct Container {
  std::string name;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  Json readiness;
  Json liveness;
  pid_t pid = -1;
  int restarts = 0;
  bool ready = false;
  bool ever_started = false;
  std::string waiting_reason = "ContainerCreating";
  std::string started_at;
  Clock::time_point started;
  Clock::time_point restart_at;
  int backoff_seconds = 1;
  Clock::time_point next_readiness;
  Clock::time_point next_liveness;
  int readiness_failures = 0;
  int liveness_failures = 0;
};

// NOLINTNEXTLINE(bugprone-exception-escape): clang-tidy 14 on its implicit members
struct Pod {
  std::string ns;
  std::string name;
  std::string uid;
  std::string netns;
  std::string container_id;
  std::vector<std::string> ips;
  std::vector<Container> containers;
  bool status_dirty = true;
  Json last_status;
};

}  // namespace

struct Kubelet::Impl {
  KubeletOptions options;
  std::unique_ptr<kube::Client> client;
  std::mutex mu;
  std::map<std::string, Pod> pods;  // uid -> pod

  void Journal(const std::string& kind, const std::string& what) const {
    if (options.journal) options.journal(kind, what);
  }

  // --- CNI ------------------------------------------------------------------------

  // Runs the conflist for `command` as a runtime does; the final result of ADD.
  Result<Json> Cni(const std::string& command, const Pod& pod, const Json& prev_result) {
    Json conflist;
    try {
      std::ifstream in(options.conflist);
      conflist = Json::parse(in);
    } catch (const Json::exception& e) {
      return FailedPrecondition(std::string("cannot read the CNI conflist: ") + e.what());
    }
    std::vector<Json> plugins(conflist["plugins"].begin(), conflist["plugins"].end());
    if (command == "DEL") std::reverse(plugins.begin(), plugins.end());
    Json previous = prev_result;
    const std::vector<std::string> env = {
        "CNI_COMMAND=" + command,
        "CNI_CONTAINERID=" + pod.container_id,
        "CNI_NETNS=/run/netns/" + pod.netns,
        "CNI_IFNAME=eth0",
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=" + pod.ns + ";K8S_POD_NAME=" + pod.name +
            ";K8S_POD_INFRA_CONTAINER_ID=" + pod.container_id + ";K8S_POD_UID=" + pod.uid,
        "CNI_PATH=" + options.cni_path,
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    for (Json plugin : plugins) {
      plugin["name"] = conflist["name"];
      plugin["cniVersion"] = conflist["cniVersion"];
      if (!previous.is_null()) plugin["prevResult"] = previous;
      std::string out;
      const int rc = RunProgram({options.cni_path + "/" + plugin.value("type", "")}, env, options.node_netns,
                                plugin.dump(), &out, std::chrono::seconds(30));
      if (rc != 0 && command != "DEL") return Unavailable("CNI " + command + " failed: " + out);
      if (command == "ADD") {
        try {
          previous = Json::parse(out);
        } catch (const Json::exception& e) {
          return Unavailable("CNI " + command + ": unreadable result: " + out);
        }
      }
    }
    return previous;
  }

  // --- pods -----------------------------------------------------------------------

  void StartContainer(Pod& pod, Container& c) {
    const std::string log = options.log_dir + "/" + pod.ns + "_" + pod.name + "_" + c.name + ".log";
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    std::vector<std::string> argv = {"ip", "netns", "exec", pod.netns};
    argv.insert(argv.end(), c.argv.begin(), c.argv.end());
    const ExecArgs args(std::move(argv), c.env);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setsid();
      if (log_fd >= 0) {
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
      }
      const int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::execvpe(args.file(), args.argv(), args.envp());
      ::_exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
    c.pid = pid;
    Journal("pid", std::to_string(pid));
    c.started = Clock::now();
    c.started_at = Rfc3339Now();
    c.waiting_reason.clear();
    c.ever_started = true;
    c.ready = c.readiness.is_null();
    c.readiness_failures = 0;
    c.liveness_failures = 0;
    const auto delay = [](const Json& probe) {
      return std::chrono::seconds(probe.value("initialDelaySeconds", 0));
    };
    c.next_readiness = c.started + (c.readiness.is_null() ? std::chrono::seconds(0) : delay(c.readiness));
    c.next_liveness = c.started + (c.liveness.is_null() ? std::chrono::seconds(0) : delay(c.liveness));
    pod.status_dirty = true;
  }

  static void Stop(Container& c) {
    if (c.pid <= 0) return;
    ::kill(-c.pid, SIGTERM);  // the container's session: the program and its children
    ::kill(c.pid, SIGTERM);
    for (int i = 0; i < 20; ++i) {
      if (::waitpid(c.pid, nullptr, WNOHANG) == c.pid) {
        c.pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(-c.pid, SIGKILL);
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, nullptr, 0);
    c.pid = -1;
  }

  void AddPod(const Json& object) {
    const Json& meta = object["metadata"];
    Pod pod;
    pod.ns = meta.value("namespace", "default");
    pod.name = meta.value("name", "");
    pod.uid = meta.value("uid", "");
    pod.netns = options.netns_prefix + pod.ns + "." + pod.name;
    if (pod.netns.size() > 200) pod.netns = options.netns_prefix + pod.uid;
    pod.container_id = "lab-" + pod.uid;
    for (const Json& spec : object["spec"].value("containers", Json::array())) {
      Container c;
      c.name = spec.value("name", "main");
      for (const Json& part : spec.value("command", Json::array())) c.argv.push_back(part.get<std::string>());
      for (const Json& part : spec.value("args", Json::array())) c.argv.push_back(part.get<std::string>());
      if (c.argv.empty()) {
        // No image to run: the probe server answers on the declared ports.
        c.argv = {options.probe_binary, "serve", "31536000"};
        for (const Json& port : spec.value("ports", Json::array())) {
          c.argv.push_back(std::to_string(port.value("containerPort", 0)) + "/" +
                           port.value("protocol", "TCP"));
        }
      }
      c.env = BaseEnv();
      c.env.push_back("HOSTNAME=" + pod.name);
      for (const Json& e : spec.value("env", Json::array())) {
        if (e.contains("value")) c.env.push_back(e.value("name", "") + "=" + e["value"].get<std::string>());
      }
      c.readiness = spec.value("readinessProbe", Json());
      c.liveness = spec.value("livenessProbe", Json());
      pod.containers.push_back(std::move(c));
    }
    std::string out;
    if (RunProgram({"ip", "netns", "add", pod.netns}, BaseEnv(), "", "", &out, std::chrono::seconds(10)) !=
        0) {
      Report(pod, "cannot create the pod's network namespace");
      return;
    }
    Journal("netns", pod.netns);
    // No rate limit on the pod's ICMP errors: a UDP port nothing listens on
    // answers every probe with port unreachable (`lab probe` counts that as
    // reached), not only the first few of each second.
    if (Result<NetnsGuard> in_pod = NetnsGuard::Enter(pod.netns)) {
      for (const char* limit : {"/proc/sys/net/ipv4/icmp_ratelimit", "/proc/sys/net/ipv6/icmp/ratelimit"}) {
        std::ofstream(limit) << "0\n";
      }
    }
    // The pod's /etc/hosts, which `ip netns exec` mounts over /etc/hosts for
    // its containers; the service controller fills in service names.
    const std::string etc = "/etc/netns/" + pod.netns;
    Journal("etc-netns", pod.netns);
    std::error_code ec;
    std::filesystem::create_directories(etc, ec);
    if (!std::filesystem::exists(etc + "/hosts")) {
      std::ofstream(etc + "/hosts") << "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
    }
    Result<Json> wired = Cni("ADD", pod, Json());
    if (!wired) {
      Report(pod, wired.error().message());
      (void)Cni("DEL", pod, Json());
      RunProgram({"ip", "netns", "del", pod.netns}, BaseEnv(), "", "", nullptr, std::chrono::seconds(10));
      // Left out of `pods`: the next relist (or a MODIFIED event) tries again.
      return;
    }
    for (const Json& ip : wired->value("ips", Json::array())) {
      const std::string cidr = ip.value("address", "");
      pod.ips.push_back(cidr.substr(0, cidr.find('/')));
    }
    for (Container& c : pod.containers) StartContainer(pod, c);
    pods[pod.uid] = std::move(pod);
  }

  void RemovePod(const std::string& uid) {
    auto it = pods.find(uid);
    if (it == pods.end()) return;
    Pod& pod = it->second;
    for (Container& c : pod.containers) Stop(c);
    (void)Cni("DEL", pod, Json());
    RunProgram({"ip", "netns", "del", pod.netns}, BaseEnv(), "", "", nullptr, std::chrono::seconds(10));
    std::error_code ec;
    std::filesystem::remove_all("/etc/netns/" + pod.netns, ec);
    pods.erase(it);
  }

  void Report(const Pod& pod, const std::string& problem) {
    Json status = {
        {"phase", "Pending"},
        {"conditions",
         {{{"type", "PodScheduled"}, {"status", "True"}},
          {{"type", "Ready"}, {"status", "False"}, {"reason", "SandboxFailed"}, {"message", problem}}}}};
    (void)client->Request(
        "PUT", "/api/v1/namespaces/" + pod.ns + "/pods/" + pod.name + "/status",
        Json{{"metadata", {{"name", pod.name}, {"namespace", pod.ns}}}, {"status", status}}.dump());
  }

  // --- probes -----------------------------------------------------------------------

  // From the node's namespace, as a kubelet probes.
  bool Connect(const std::string& ip, int port, std::chrono::milliseconds timeout,
               const std::string& http_path, int* http_code) {
    Result<NetnsGuard> in_node = NetnsGuard::Enter(options.node_netns);
    if (!in_node) return false;
    const Result<IpAddress> address = IpAddress::Parse(ip);
    if (!address) return false;
    const int fd =
        ::socket(address->is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (address->is_v4()) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(static_cast<uint16_t>(port));
      sin->sin_addr.s_addr = htonl(address->v4());
      length = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr);
      length = sizeof(sockaddr_in6);
    }
    // Non-blocking: EINPROGRESS, and the poll below says how it ended.
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&storage), length);
    pollfd p{fd, POLLOUT, 0};
    bool ok = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
    int err = 0;
    socklen_t len = sizeof(err);
    ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    if (ok && http_code != nullptr) {
      const std::string request =
          "GET " + http_path + " HTTP/1.0\r\nHost: " + ip + "\r\nUser-Agent: kube-probe/1.32\r\n\r\n";
      (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
      std::string reply;
      char buffer[512];
      const auto deadline = Clock::now() + timeout;
      while (reply.find("\r\n") == std::string::npos && Clock::now() < deadline) {
        pollfd r{fd, POLLIN, 0};
        if (::poll(&r, 1, 100) <= 0) continue;
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        reply.append(buffer, static_cast<size_t>(n));
      }
      *http_code = 0;
      const size_t space = reply.find(' ');
      if (space != std::string::npos) *http_code = std::atoi(reply.c_str() + space + 1);
    }
    ::close(fd);
    return ok;
  }

  bool Probe(const Pod& pod, const Json& probe) {
    const auto timeout = std::chrono::milliseconds(1000 * probe.value("timeoutSeconds", 1));
    const std::string ip = pod.ips.empty() ? "" : pod.ips.front();
    if (probe.contains("tcpSocket"))
      return Connect(ip, probe["tcpSocket"].value("port", 0), timeout, "", nullptr);
    if (probe.contains("httpGet")) {
      int code = 0;
      return Connect(ip, probe["httpGet"].value("port", 80), timeout, probe["httpGet"].value("path", "/"),
                     &code) &&
             code >= 200 && code < 400;
    }
    if (probe.contains("exec")) {
      std::vector<std::string> argv = {"ip", "netns", "exec", pod.netns};
      for (const Json& part : probe["exec"].value("command", Json::array()))
        argv.push_back(part.get<std::string>());
      return RunProgram(argv, BaseEnv(), "", "", nullptr, timeout) == 0;
    }
    return true;
  }

  // One pass: reap, restart, probe, report.
  void Tick() {
    std::lock_guard lock(mu);
    const auto now = Clock::now();
    for (auto& [uid, pod] : pods) {
      for (Container& c : pod.containers) {
        if (c.pid > 0) {
          int status = 0;
          if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
            c.pid = -1;
            c.ready = false;
            ++c.restarts;
            // Ran long enough: back-off starts over, as the kubelet's does.
            if (now - c.started > std::chrono::seconds(60)) c.backoff_seconds = 1;
            c.restart_at = now + std::chrono::seconds(c.backoff_seconds);
            c.backoff_seconds = std::min(c.backoff_seconds * 2, 30);
            c.waiting_reason = "CrashLoopBackOff";
            pod.status_dirty = true;
          }
        }
        if (c.pid <= 0 && !c.waiting_reason.empty() && c.ever_started && now >= c.restart_at)
          StartContainer(pod, c);
        if (c.pid <= 0) continue;
        if (!c.readiness.is_null() && now >= c.next_readiness) {
          const bool ok = Probe(pod, c.readiness);
          c.readiness_failures = ok ? 0 : c.readiness_failures + 1;
          const bool ready =
              ok || (c.ready && c.readiness_failures < c.readiness.value("failureThreshold", 3));
          if (ready != c.ready) pod.status_dirty = true;
          c.ready = ready;
          c.next_readiness = now + std::chrono::seconds(c.readiness.value("periodSeconds", 10));
        }
        if (!c.liveness.is_null() && now >= c.next_liveness) {
          c.liveness_failures = Probe(pod, c.liveness) ? 0 : c.liveness_failures + 1;
          c.next_liveness = now + std::chrono::seconds(c.liveness.value("periodSeconds", 10));
          if (c.liveness_failures >= c.liveness.value("failureThreshold", 3)) {
            Stop(c);  // reaped as an exit above on the next pass: restarts with back-off
            ++c.restarts;
            c.ready = false;
            c.restart_at = now + std::chrono::seconds(c.backoff_seconds);
            c.backoff_seconds = std::min(c.backoff_seconds * 2, 30);
            c.waiting_reason = "CrashLoopBackOff";
            pod.status_dirty = true;
          }
        }
      }
      if (pod.status_dirty) PushStatus(pod);
    }
  }

  void PushStatus(Pod& pod) {
    bool all_ready = !pod.containers.empty();
    Json statuses = Json::array();
    for (const Container& c : pod.containers) {
      all_ready = all_ready && c.ready;
      Json state =
          c.pid > 0
              ? Json{{"running", {{"startedAt", c.started_at}}}}
              : Json{{"waiting", {{"reason", c.waiting_reason.empty() ? "Waiting" : c.waiting_reason}}}};
      statuses.push_back({{"name", c.name},
                          {"ready", c.ready},
                          {"restartCount", c.restarts},
                          {"started", c.pid > 0},
                          {"state", state},
                          {"image", "host"},
                          {"imageID", ""}});
    }
    Json ips = Json::array();
    for (const std::string& ip : pod.ips) ips.push_back({{"ip", ip}});
    const std::string ready = all_ready ? "True" : "False";
    Json status = {{"phase", "Running"},
                   {"conditions",
                    {{{"type", "Initialized"}, {"status", "True"}},
                     {{"type", "Ready"}, {"status", ready}},
                     {{"type", "ContainersReady"}, {"status", ready}},
                     {{"type", "PodScheduled"}, {"status", "True"}}}},
                   {"containerStatuses", statuses},
                   {"podIP", pod.ips.empty() ? "" : pod.ips.front()},
                   {"podIPs", ips},
                   {"hostIP", ""}};
    if (status == pod.last_status) {
      pod.status_dirty = false;
      return;
    }
    const Result<Json> done = client->Request(
        "PUT", "/api/v1/namespaces/" + pod.ns + "/pods/" + pod.name + "/status",
        Json{{"metadata", {{"name", pod.name}, {"namespace", pod.ns}}}, {"status", status}}.dump());
    if (done.ok() || done.error().code() == ErrorCode::kNotFound) {
      pod.status_dirty = false;
      pod.last_status = status;
    }
  }
};

namespace {

class PodWatcher final : public kube::ListWatchHandler {
 public:
  explicit PodWatcher(Kubelet::Impl& kubelet) : k_(kubelet) {}
  void OnList(const std::vector<Json>& items) override {
    std::lock_guard lock(k_.mu);
    std::map<std::string, const Json*> wanted;
    for (const Json& item : items) wanted[item["metadata"].value("uid", "")] = &item;
    std::vector<std::string> gone;
    for (const auto& [uid, pod] : k_.pods) {
      if (!wanted.contains(uid)) gone.push_back(uid);
    }
    for (const std::string& uid : gone) k_.RemovePod(uid);
    for (const auto& [uid, item] : wanted) {
      if (!k_.pods.contains(uid)) k_.AddPod(*item);
    }
  }
  void OnEvent(const std::string& type, const Json& object) override {
    std::lock_guard lock(k_.mu);
    const std::string uid = object["metadata"].value("uid", "");
    if (type == "DELETED") {
      k_.RemovePod(uid);
    } else if (!k_.pods.contains(uid)) {
      k_.AddPod(object);
    }
  }

 private:
  Kubelet::Impl& k_;
};

}  // namespace

Kubelet::Kubelet(KubeletOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Kubelet::~Kubelet() = default;

void Kubelet::Run(const std::atomic<bool>& stop) {
  kube::ClientConfig config = kube::Api(impl_->options.api);
  config.bearer_token = impl_->options.token;
  config.ca_data = impl_->options.ca;
  Result<std::unique_ptr<kube::Client>> client = kube::Client::Create(config);
  if (!client) return;
  impl_->client = std::move(*client);
  PodWatcher watcher(*impl_);
  kube::ListWatch watch(*impl_->client, "/api/v1/pods?fieldSelector=spec.nodeName%3D" + impl_->options.node,
                        watcher);
  std::thread watching([&] { watch.Run(stop); });
  while (!stop.load()) {
    impl_->Tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  watching.join();
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> uids;
  for (const auto& [uid, pod] : impl_->pods) uids.push_back(uid);
  for (const std::string& uid : uids) impl_->RemovePod(uid);
}

}  // namespace netpol::lab
