#include "lab/lab.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <variant>

#include "api/load.h"
#include "base/exec_args.h"
#include "base/hash.h"
#include "base/netns.h"
#include "kube/client.h"
#include "lab/apiserver.h"
#include "lab/internal/pki.h"
#include "lab/kubelet.h"
#include "lab/probe.h"

namespace netpol::lab {
namespace {

namespace fs = std::filesystem;
using kube::Json;
using Clock = std::chrono::steady_clock;

// Runs a program (no shell) and waits; its exit code.
int Exec(const std::vector<std::string>& argv, bool quiet = true) {
  const ExecArgs args(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (quiet) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execvpe(args.file(), args.argv(), args.envp());
    ::_exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Starts a program in a session of its own with stdout and stderr to `log`
// (appended, or truncated first); its pid.
pid_t SpawnDaemon(const ExecArgs& args, const std::string& log, bool truncate) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(args.file(), args.argv(), args.envp());
    ::_exit(127);
  }
  if (fd >= 0) ::close(fd);
  return pid;
}

Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (Exec(argv) != 0) {
    std::string text;
    for (const std::string& a : argv) text += a + " ";
    return FailedPrecondition("failed: " + text);
  }
  return Ok();
}

Status Sysctl(const std::string& netns, const std::string& key, const std::string& value) {
  if (Exec({"ip", "netns", "exec", netns, "sysctl", "-qw", key + "=" + value}) != 0) {
    return FailedPrecondition("cannot set " + key + " in " + netns);
  }
  return Ok();
}

std::string NodeName(int i) {
  return "node-" + std::to_string(i);
}

struct Paths {
  explicit Paths(const LabOptions& o) : dir(o.dir) {}
  std::string dir;
  std::string journal() const { return dir + "/journal"; }
  std::string pid() const { return dir + "/control-plane.pid"; }
  std::string ready() const { return dir + "/ready"; }
  std::string log() const { return dir + "/control-plane.log"; }
  std::string database() const { return dir + "/state.db"; }
  std::string kubeconfig() const { return dir + "/kubeconfig"; }
  std::string token() const { return dir + "/token"; }
  std::string ca() const { return dir + "/ca.crt"; }
  std::string logs() const { return dir + "/logs"; }
  std::string node(int i) const { return dir + "/nodes/" + NodeName(i); }
};

// What the lab created, appended before it is created, so that a crash
// leaves a complete list for `down`.
class Journal {
 public:
  explicit Journal(std::string path) : path_(std::move(path)) {}
  void Add(const std::string& kind, const std::string& what) {
    std::lock_guard lock(mu_);
    std::ofstream out(path_, std::ios::app);
    out << kind << " " << what << "\n";
  }
  std::vector<std::pair<std::string, std::string>> Read() const {
    std::vector<std::pair<std::string, std::string>> out;
    std::ifstream in(path_);
    std::string kind;
    std::string what;
    while (in >> kind >> what) out.emplace_back(kind, what);
    return out;
  }

 private:
  std::string path_;
  std::mutex mu_;
};

bool Alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

// A process id from text (a /proc entry, a journal line); nullopt for anything else.
std::optional<pid_t> ParsePid(std::string_view text) {
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (ec != std::errc() || end != text.data() + text.size() || pid <= 0) return std::nullopt;
  return pid;
}

pid_t ReadPid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// The network the lab's nodes live in: a fabric namespace routing between the
// nodes' pod CIDRs; each node a namespace with a default route to the fabric
// (which also gives proxy ARP its route to the pods' gateway 169.254.1.1).
Status SetUpNetwork(const LabOptions& o, Journal& journal) {
  const std::string fabric = o.name + "-fabric";
  journal.Add("netns", fabric);
  NETPOL_RETURN_IF_ERROR(Ip({"netns", "add", fabric}), "lab network");
  NETPOL_RETURN_IF_ERROR(Ip({"-n", fabric, "link", "set", "lo", "up"}), "lab network");
  NETPOL_RETURN_IF_ERROR(Sysctl(fabric, "net.ipv4.ip_forward", "1"), "lab network");
  NETPOL_RETURN_IF_ERROR(Sysctl(fabric, "net.ipv6.conf.all.forwarding", "1"), "lab network");
  for (int i = 1; i <= o.nodes; ++i) {
    const std::string node = o.name + "-" + NodeName(i);
    const std::string n = std::to_string(i);
    const std::string port = "n" + n;
    journal.Add("netns", node);
    NETPOL_RETURN_IF_ERROR(Ip({"netns", "add", node}), "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", node, "link", "set", "lo", "up"}), "lab network");
    NETPOL_RETURN_IF_ERROR(Sysctl(node, "net.ipv4.ip_forward", "1"), "lab network");
    NETPOL_RETURN_IF_ERROR(Sysctl(node, "net.ipv6.conf.all.forwarding", "1"), "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", fabric, "link", "add", port, "type", "veth", "peer", "name", "fabric", "netns", node}),
        "lab network");
    // Node side: 198.19.254.<i> and fe80::2; fabric side: 198.19.254.254 and fe80::1.
    NETPOL_RETURN_IF_ERROR(Ip({"-n", node, "addr", "add", "198.19.254." + n + "/32", "dev", "fabric"}),
                           "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", node, "addr", "add", "fe80::2/64", "dev", "fabric", "nodad"}),
                           "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", fabric, "addr", "add", "198.19.254.254/32", "dev", port}),
                           "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", fabric, "addr", "add", "fe80::1/64", "dev", port, "nodad"}),
                           "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", node, "link", "set", "fabric", "up"}), "lab network");
    NETPOL_RETURN_IF_ERROR(Ip({"-n", fabric, "link", "set", port, "up"}), "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", node, "route", "add", "198.19.254.254/32", "dev", "fabric", "scope", "link"}),
        "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", node, "route", "add", "default", "via", "198.19.254.254", "dev", "fabric"}), "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", node, "-6", "route", "add", "default", "via", "fe80::1", "dev", "fabric"}), "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", fabric, "route", "add", "198.19.254." + n + "/32", "dev", port, "scope", "link"}),
        "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", fabric, "route", "add", "198.18." + n + ".0/24", "via", "198.19.254." + n, "dev", port}),
        "lab network");
    NETPOL_RETURN_IF_ERROR(
        Ip({"-n", fabric, "-6", "route", "add", "2001:2:0:" + n + "::/64", "via", "fe80::2", "dev", port}),
        "lab network");
  }
  return Ok();
}

Status WriteFile(const std::string& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << content;
  if (!out) return PermissionDenied("cannot write " + path);
  return Ok();
}

// A file only its owner (root) reads and writes, whatever the umask and
// whatever mode an earlier file of that name had; never through a link.
Status WritePrivateFile(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return PermissionDenied("cannot write " + path + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  for (size_t done = 0; ok && done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    ok = n > 0;
    done += ok ? static_cast<size_t>(n) : 0;
  }
  const int err = errno;
  ::close(fd);
  if (!ok) return PermissionDenied("cannot write " + path + ": " + std::strerror(err));
  return Ok();
}

// The API server's bearer token: 32 random bytes, hex.
Result<std::string> NewToken() {
  unsigned char bytes[32];
  if (::getrandom(bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    return Unavailable(std::string("getrandom: ") + std::strerror(errno));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (const unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 0xf];
  }
  return token;
}

// The token of a running lab (what `probe` and the lab's own clients send).
std::string ReadToken(const Paths& paths) {
  std::ifstream in(paths.token());
  std::string token;
  in >> token;
  return token;
}

std::string ReadCa(const Paths& paths) {
  std::ifstream in(paths.ca());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The lab's API server as its own clients reach it: HTTPS trusting the lab's
// CA, with the token.
kube::ClientConfig LabApi(const std::string& url, const std::string& token, const std::string& ca) {
  kube::ClientConfig config = kube::Api(url);
  config.bearer_token = token;
  config.ca_data = ca;
  return config;
}

// --- controllers ---------------------------------------------------------------------

std::string TemplateHash(const Json& tmpl) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  Fnv1a hash;
  hash.Add(tmpl.dump());
  uint64_t h = hash.value();
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out += kAlphabet[h % (sizeof(kAlphabet) - 1)];
    h /= (sizeof(kAlphabet) - 1);
  }
  return out;
}

bool PodReady(const Json& pod) {
  for (const Json& c : pod["status"].value("conditions", Json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// Deployments: replicas pods with the template's labels, named
// <deployment>-<template hash>-<suffix>; a changed template replaces them.
void ReconcileDeployments(kube::Client& api, const Json& pods) {
  Result<Json> deployments = api.Get("/apis/apps/v1/deployments");
  if (!deployments) return;
  for (const Json& d : (*deployments)["items"]) {
    const std::string ns = d["metadata"].value("namespace", "");
    const std::string name = d["metadata"].value("name", "");
    const std::string uid = d["metadata"].value("uid", "");
    const Json tmpl = d["spec"].value("template", Json::object());
    const std::string hash = TemplateHash(tmpl);
    const int replicas = d["spec"].value("replicas", 1);
    std::vector<Json> current;
    std::vector<Json> stale;
    for (const Json& p : pods["items"]) {
      bool owned = false;
      for (const Json& o : p["metadata"].value("ownerReferences", Json::array()))
        owned = owned || o.value("uid", "") == uid;
      if (!owned) continue;
      (p["metadata"]["labels"].value("pod-template-hash", "") == hash ? current : stale).push_back(p);
    }
    for (const Json& p : stale) {
      (void)api.Request("DELETE", "/api/v1/namespaces/" + ns + "/pods/" + p["metadata"].value("name", ""));
    }
    for (int i = static_cast<int>(current.size()); i < replicas; ++i) {
      Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
      pod["metadata"] = tmpl.value("metadata", Json::object());
      pod["metadata"]["generateName"] = name + "-" + hash + "-";
      pod["metadata"]["namespace"] = ns;
      pod["metadata"]["labels"]["pod-template-hash"] = hash;
      pod["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                             {"kind", "Deployment"},
                                             {"name", name},
                                             {"uid", uid},
                                             {"controller", true}}};
      pod["spec"] = tmpl.value("spec", Json::object());
      (void)api.Request("POST", "/api/v1/namespaces/" + ns + "/pods", pod.dump());
    }
    for (size_t i = static_cast<size_t>(std::max(replicas, 0)); i < current.size(); ++i) {
      (void)api.Request("DELETE",
                        "/api/v1/namespaces/" + ns + "/pods/" + current[i]["metadata"].value("name", ""));
    }
    int ready = 0;
    for (const Json& p : current) ready += PodReady(p) ? 1 : 0;
    const Json status = {{"replicas", std::min<int>(static_cast<int>(current.size()), replicas)},
                         {"updatedReplicas", std::min<int>(static_cast<int>(current.size()), replicas)},
                         {"readyReplicas", ready},
                         {"availableReplicas", ready},
                         {"observedGeneration", d["metadata"].value("generation", 1)}};
    if (d.value("status", Json::object()) != status) {
      (void)api.Request("PUT", "/apis/apps/v1/namespaces/" + ns + "/deployments/" + name + "/status",
                        Json{{"metadata", {{"name", name}, {"namespace", ns}}}, {"status", status}}.dump());
    }
  }
}

// Services as names: every pod's /etc/hosts (/etc/netns/<pod netns>/hosts,
// which `ip netns exec` mounts) maps each service of its namespace, and of the
// others by <svc>.<ns>, to the ready pods it selects. No virtual IPs.
void ReconcileServices(kube::Client& api, const Json& pods, const LabOptions& o,
                       std::map<std::string, std::string>& written, Journal& journal) {
  Result<Json> services = api.Get("/api/v1/services");
  if (!services) return;
  std::string names;
  for (const Json& s : (*services)["items"]) {
    const std::string ns = s["metadata"].value("namespace", "");
    const std::string name = s["metadata"].value("name", "");
    // The API server rejects selectors that are not string maps; read defensively all the same.
    if (!s.contains("spec") || !s["spec"].is_object()) continue;
    const Json selector = s["spec"].value("selector", Json::object());
    if (!selector.is_object() || selector.empty()) continue;
    for (const Json& p : pods["items"]) {
      if (p["metadata"].value("namespace", "") != ns || !PodReady(p)) continue;
      bool match = true;
      for (auto it = selector.begin(); it != selector.end(); ++it) {
        match = match && it.value().is_string() &&
                p["metadata"]["labels"].value(it.key(), "") == it.value().get<std::string>();
      }
      const std::string ip = p["status"].value("podIP", "");
      if (!match || ip.empty()) continue;
      names += ip + " " + name + "." + ns + " " + name + "." + ns + ".svc " + name + "." + ns +
               ".svc.cluster.local";
      names += " @" + ns + ":" + name + "\n";
    }
  }
  for (const Json& p : pods["items"]) {
    const std::string ns = p["metadata"].value("namespace", "");
    const std::string netns = o.name + "-" + ns + "." + p["metadata"].value("name", "");
    // Short names resolve within the pod's own namespace.
    std::string hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
    std::istringstream lines(names);
    std::string line;
    while (std::getline(lines, line)) {
      const size_t at = line.rfind(" @");
      const std::string scope = line.substr(at + 2);
      std::string entry = line.substr(0, at);
      if (scope.substr(0, scope.find(':')) == ns) entry += " " + scope.substr(scope.find(':') + 1);
      hosts += entry + "\n";
    }
    const std::string path = "/etc/netns/" + netns + "/hosts";
    if (written[path] == hosts) continue;
    if (std::error_code exists_ec; !fs::exists("/etc/netns/" + netns, exists_ec)) {
      journal.Add("etc-netns", netns);
      std::error_code ec;
      fs::create_directories("/etc/netns/" + netns, ec);
    }
    // In place: a running container's bind mount follows the file's inode.
    std::ofstream out(path, std::ios::in | std::ios::out | std::ios::trunc);
    if (!out) out.open(path, std::ios::out | std::ios::trunc);
    out << hosts;
    written[path] = hosts;
  }
}

std::atomic<bool> g_stop{false};

}  // namespace

std::string KubeconfigPath(const LabOptions& options) {
  return Paths(options).kubeconfig();
}

Status LabRun(const LabOptions& o) {
  // What the lab writes (logs, state, /etc/netns/<pod>/hosts) is never
  // writable by other users, whatever umask `lab up` ran under.
  ::umask(022);
  const Paths paths(o);
  std::error_code ec;
  fs::create_directories(paths.logs(), ec);
  Journal journal(paths.journal());
  {
    std::ofstream pid(paths.pid());
    pid << ::getpid() << "\n";
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGPIPE, SIG_IGN);
  NETPOL_RETURN_IF_ERROR(SetUpNetwork(o, journal), "starting the lab");
  std::vector<std::string> nodes;
  for (int i = 1; i <= o.nodes; ++i) nodes.push_back(NodeName(i));
  // Whoever can talk to the API server runs programs as root in the lab's
  // pods: a token, in files only root reads, for every client.
  NETPOL_ASSIGN_OR_RETURN(const std::string token, NewToken(), "starting the lab");
  NETPOL_RETURN_IF_ERROR(WritePrivateFile(paths.token(), token + "\n"), "starting the lab");
  // HTTPS, as a real API server speaks (clients such as @kubernetes/client-node
  // refuse plain HTTP), with a CA of the lab's own that the kubeconfig names.
  NETPOL_ASSIGN_OR_RETURN(const internal::Pki pki, internal::MakePki(), "starting the lab");
  NETPOL_RETURN_IF_ERROR(WritePrivateFile(paths.ca(), pki.ca_cert), "starting the lab");
  NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<ApiServer> api,
                          ApiServer::Start({.port = o.port,
                                            .database = paths.database(),
                                            .nodes = nodes,
                                            .token = token,
                                            .tls_cert = pki.server_cert,
                                            .tls_key = pki.server_key}),
                          "starting the lab");
  NETPOL_RETURN_IF_ERROR(
      WritePrivateFile(
          paths.kubeconfig(),
          "apiVersion: v1\nkind: Config\nclusters:\n- name: netpol-lab\n  cluster:\n    server: " +
              api->url() + "\n    certificate-authority-data: " + internal::Base64(pki.ca_cert) +
              "\nusers:\n- name: netpol-lab\n  user:\n    token: " + token +
              "\ncontexts:\n- name: netpol-lab\n  context:\n"
              "    cluster: netpol-lab\n    user: netpol-lab\n    namespace: default\n"
              "current-context: netpol-lab\n"),
      "starting the lab");
  // One agent per node: the real netpold, programming its node's namespace.
  std::vector<pid_t> agents;
  for (int i = 1; i <= o.nodes; ++i) {
    const std::string n = std::to_string(i);
    const std::string node_dir = paths.node(i);
    fs::create_directories(node_dir + "/cni", ec);
    const Json conflist = {
        {"cniVersion", "1.0.0"},
        {"name", "netpol"},
        {"plugins",
         {{{"type", "netpol-cni"},
           {"stateDir", node_dir + "/cni"},
           {"agentSocket", node_dir + "/agent.sock"},
           {"agentTimeoutMs", 10000},
           {"ipam", {{"ranges", {"198.18." + n + ".0/24", "2001:2:0:" + n + "::/64"}}}}}}}};
    NETPOL_RETURN_IF_ERROR(WriteFile(node_dir + "/10-netpol.conflist", conflist.dump(2)), "starting the lab");
    // The lab's kubeconfig: its server, CA and token.
    const ExecArgs args({o.bin_dir + "/netpold", "--kubeconfig", paths.kubeconfig(), "--node-name",
                         NodeName(i), "--netns", o.name + "-" + NodeName(i), "--state-dir", node_dir + "/cni",
                         "--socket", node_dir + "/agent.sock", "--cni-conf", node_dir + "/10-netpol.conflist",
                         "--log-level", "info"});
    const pid_t pid = SpawnDaemon(args, paths.logs() + "/netpold-" + NodeName(i) + ".log", false);
    journal.Add("agent", std::to_string(pid));
    agents.push_back(pid);
  }
  std::vector<std::unique_ptr<Kubelet>> kubelets;
  std::vector<std::thread> threads;
  for (int i = 1; i <= o.nodes; ++i) {
    kubelets.push_back(std::make_unique<Kubelet>(KubeletOptions{
        .node = NodeName(i),
        .node_netns = o.name + "-" + NodeName(i),
        .api = api->url(),
        .token = token,
        .ca = pki.ca_cert,
        .conflist = paths.node(i) + "/10-netpol.conflist",
        .cni_path = o.bin_dir,
        .probe_binary = o.bin_dir + "/netpol-probe",
        .log_dir = paths.logs(),
        .netns_prefix = o.name + "-",
        .journal = [&journal](const std::string& kind, const std::string& what) { journal.Add(kind, what); },
    }));
    threads.emplace_back([&, k = kubelets.back().get()] { k->Run(g_stop); });
  }
  threads.emplace_back([&] {
    Result<std::unique_ptr<kube::Client>> client =
        kube::Client::Create(LabApi(api->url(), token, pki.ca_cert));
    if (!client) return;
    std::map<std::string, std::string> written;
    while (!g_stop.load()) {
      // One list of pods per pass, for both controllers.
      if (Result<Json> pods = (*client)->Get("/api/v1/pods")) {
        ReconcileDeployments(**client, *pods);
        ReconcileServices(**client, *pods, o, written, journal);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  {
    std::ofstream ready(paths.ready());
    ready << api->url() << "\n";
  }
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Pods first (kubelets run CNI DEL while the agents still answer), then agents.
  for (std::thread& t : threads) t.join();
  for (const pid_t pid : agents) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  api->Stop();
  fs::remove(paths.ready(), ec);
  return Ok();
}

Status LabUp(const LabOptions& o, std::ostream& progress) {
  const Paths paths(o);
  std::error_code ec;
  if (Alive(ReadPid(paths.pid())) && fs::exists(paths.ready(), ec)) {
    return Error(ErrorCode::kAlreadyExists,
                 "a lab is already running in " + o.dir + " (netpol lab down first)");
  }
  if (::geteuid() != 0) return PermissionDenied("netpol lab needs root (network namespaces, nftables)");
  // Created 0700, whatever the umask: it holds the lab's logs, state and
  // sockets. A directory that exists keeps its mode (it may be the user's);
  // the token and kubeconfig in it are 0600 all the same.
  if (const int made = ::mkdir(o.dir.c_str(), 0700); made != 0 && errno == ENOENT) {
    fs::create_directories(fs::path(o.dir).parent_path(), ec);
    if (::mkdir(o.dir.c_str(), 0700) == 0) (void)::chmod(o.dir.c_str(), 0700);
  } else if (made == 0) {
    (void)::chmod(o.dir.c_str(), 0700);
  }
  if (!fs::is_directory(o.dir, ec)) return PermissionDenied("cannot create " + o.dir);
  if (fs::exists(paths.journal(), ec)) {
    progress << "cleaning up what a previous lab left behind\n";
    LabOptions previous = o;
    previous.keep_state = true;
    NETPOL_RETURN_IF_ERROR(LabDown(previous, progress), "lab up");
  }
  fs::remove(paths.ready(), ec);
  progress << "starting the control plane and " << o.nodes << " node" << (o.nodes == 1 ? "" : "s") << "\n";
  const ExecArgs args({o.bin_dir + "/netpol", "lab", "run", "--dir", o.dir, "--name", o.name, "--nodes",
                       std::to_string(o.nodes), "--port", std::to_string(o.port)});
  const pid_t pid = SpawnDaemon(args, paths.log(), true);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!fs::exists(paths.ready(), ec)) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid || Clock::now() > deadline) {
      std::ifstream log(paths.log());
      std::stringstream text;
      text << log.rdbuf();
      return FailedPrecondition("the lab did not start; its log (" + paths.log() + "):\n" + text.str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  progress << "lab ready: " << o.nodes << " node(s), API server " << [&] {
    std::ifstream in(paths.ready());
    std::string url;
    in >> url;
    return url;
  }() << "\n";
  progress << "use it with: export KUBECONFIG=" << paths.kubeconfig() << "\n";
  return Ok();
}

Status LabDown(const LabOptions& o, std::ostream& progress) {
  const Paths paths(o);
  const pid_t pid = ReadPid(paths.pid());
  if (Alive(pid)) {
    progress << "stopping the control plane (pid " << pid << ")\n";
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 300 && Alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Alive(pid)) ::kill(pid, SIGKILL);
  }
  // Whatever is left (a crash, a kill -9): from the journal.
  Journal journal(paths.journal());
  std::set<std::string> netns;
  for (const auto& [kind, what] : journal.Read()) {
    if (kind == "netns") netns.insert(what);
  }
  // Processes still inside the lab's namespaces, and its agents.
  std::set<ino_t> inodes;
  for (const std::string& ns : netns) {
    struct stat st {};
    if (::stat(("/run/netns/" + ns).c_str(), &st) == 0) inodes.insert(st.st_ino);
  }
  std::error_code proc_ec;
  for (fs::directory_iterator it("/proc", proc_ec), end; !proc_ec && it != end; it.increment(proc_ec)) {
    const std::optional<pid_t> proc_pid = ParsePid(it->path().filename().string());
    if (!proc_pid) continue;
    struct stat st {};
    if (::stat((it->path().string() + "/ns/net").c_str(), &st) == 0 && inodes.contains(st.st_ino)) {
      ::kill(*proc_pid, SIGKILL);
    }
  }
  for (const auto& [kind, what] : journal.Read()) {
    if (kind != "agent") continue;
    const std::optional<pid_t> parsed = ParsePid(what);  // a journal is text anyone may have edited
    if (!parsed) continue;
    const pid_t agent = *parsed;
    std::ifstream cmdline("/proc/" + what + "/cmdline");
    std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    // Only our agent: the pid may have been reused since.
    if (Alive(agent) && text.find("netpold") != std::string::npos && text.find(o.dir) != std::string::npos) {
      ::kill(agent, SIGKILL);
    }
  }
  std::error_code ec;
  for (const auto& [kind, what] : journal.Read()) {
    if (kind == "etc-netns" && what.rfind(o.name + "-", 0) == 0) fs::remove_all("/etc/netns/" + what, ec);
  }
  for (const std::string& ns : netns) {
    if (fs::exists("/run/netns/" + ns, ec)) Exec({"ip", "netns", "del", ns});
  }
  if (!netns.empty()) progress << "removed " << netns.size() << " network namespaces\n";
  for (const std::string& file :
       {paths.journal(), paths.pid(), paths.ready(), paths.kubeconfig(), paths.token(), paths.ca()})
    fs::remove(file, ec);
  fs::remove_all(o.dir + "/nodes", ec);
  if (!o.keep_state) {
    for (const std::string& file :
         {paths.database(), paths.database() + "-wal", paths.database() + "-shm", paths.log()}) {
      fs::remove(file, ec);
    }
    fs::remove_all(paths.logs(), ec);
    fs::remove(o.dir, ec);  // only when empty: the directory may hold the user's files
  }
  progress << "lab down" << (o.keep_state ? " (state kept: netpol lab up brings the objects back)" : "")
           << "\n";
  return Ok();
}

Result<LabProbe> ProbeLab(const LabOptions& o, const std::vector<policy::PortProto>& wanted_ports) {
  const Paths paths(o);
  std::string url;
  {
    std::ifstream in(paths.ready());
    in >> url;
  }
  if (url.empty()) return FailedPrecondition("no lab is running in " + o.dir + " (netpol lab up)");
  NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<kube::Client> api,
                          kube::Client::Create(LabApi(url, ReadToken(paths), ReadCa(paths))), "lab probe");
  policy::Engine engine;
  std::vector<std::string> without_address;
  std::map<std::string, std::string> netns_of;  // ns/name -> pod namespace
  // What netpold enforces: ClusterNetworkPolicies and Nodes too (the lab
  // serves both).
  std::vector<kube::PolicyResource> resources(std::begin(kube::kPolicyResources),
                                              std::end(kube::kPolicyResources));
  resources.insert(resources.end(), std::begin(kube::kOptionalPolicyResources),
                   std::end(kube::kOptionalPolicyResources));
  for (const kube::PolicyResource& resource : resources) {
    NETPOL_RETURN_IF_ERROR(
        api->List(resource.path,
                  [&](std::vector<Json>& items, const Json&) {
                    for (Json& item : items) {
                      item["kind"] = resource.kind;
                      item["apiVersion"] = resource.api_version;
                      const api::LoadResult loaded = api::LoadJson(item, "lab", {});
                      if (!loaded.ok() || loaded.objects.empty()) continue;
                      if (const auto* pod = std::get_if<api::Pod>(&loaded.objects.front())) {
                        // Nothing to connect to or from (not started, or
                        // finished): not in the matrices at all.
                        if (pod->pod_ips.empty()) {
                          without_address.push_back(pod->metadata.namespace_ + "/" + pod->metadata.name);
                          continue;
                        }
                        netns_of[pod->metadata.namespace_ + "/" + pod->metadata.name] =
                            o.name + "-" + pod->metadata.namespace_ + "." + pod->metadata.name;
                      }
                      engine.Apply(loaded.objects.front());
                    }
                  }),
        "lab probe");
  }
  // SCTP cannot be probed (this kernel has no SCTP sockets): such ports are
  // named as not probed instead of being shown denied.
  std::vector<policy::PortProto> ports;
  std::vector<policy::PortProto> not_probed;
  for (const policy::PortProto& port : wanted_ports.empty() ? policy::DeclaredPorts(engine) : wanted_ports) {
    (port.protocol == api::Protocol::kSCTP ? not_probed : ports).push_back(port);
  }
  policy::Matrix expected = policy::ComputeMatrix(engine, ports);
  // Per family where the engine judges pairs per family (dual-stack pods,
  // docs/SEMANTICS.md §19): plane 0 the IPv4 verdict, plane 1 the IPv6 one.
  policy::Matrix measured(expected.pods(), ports, expected.per_family());
  const auto& pods = expected.pods();
  // One thread per source pod, each in the pod's namespace; every probe
  // bounded. Each address of the target is probed from the source's address
  // of its family; a family counts as reached when every address in it is.
  std::vector<std::thread> threads;
  std::mutex mu;
  for (size_t from = 0; from < pods.size(); ++from) {
    threads.emplace_back([&, from] {
      const policy::Pod& source = engine.pod(pods[from]);
      if (source.ips.empty()) return;
      Result<NetnsGuard> in_pod = NetnsGuard::Enter(netns_of[source.FullName()]);
      if (!in_pod) return;
      const auto source_of = [&](const IpAddress& target) -> std::optional<IpAddress> {
        for (const IpAddress& ip : source.ips) {
          if (ip.family() == target.family()) return ip;
        }
        return std::nullopt;
      };
      for (size_t port = 0; port < ports.size(); ++port) {
        for (size_t to = 0; to < pods.size(); ++to) {
          const policy::Pod& target = engine.pod(pods[to]);
          if (to == from || target.ips.empty()) continue;
          const auto probe = [&](const IpAddress& ip, const std::optional<IpAddress>& local) {
            const Result<bool> one = Probe(ip, ports[port].protocol, ports[port].port,
                                           std::chrono::milliseconds(400), local, true);
            return one.ok() && *one;
          };
          // family -> reached (absent: the pair has no addresses in it)
          std::map<IpFamily, bool> reached;
          for (const IpAddress& ip : target.ips) {
            const std::optional<IpAddress> local = source_of(ip);
            if (!local) continue;  // a family the source has no address in
            auto [at, fresh] = reached.try_emplace(ip.family(), true);
            if (at->second) at->second = probe(ip, local);
          }
          if (reached.empty()) {
            // No family in common: what the kernel does with the first address.
            reached[target.ips.front().family()] = probe(target.ips.front(), std::nullopt);
          }
          const bool all =
              std::all_of(reached.begin(), reached.end(), [](const auto& r) { return r.second; });
          std::lock_guard lock(mu);
          if (!measured.per_family() || reached.size() == 1) {
            if (all) measured.Set(port, from, to);
            continue;
          }
          for (const auto& [family, ok] : reached) {
            if (ok)
              measured.Row(port, from, family == IpFamily::kV4 ? 0 : 1)[to >> 6] |= uint64_t{1} << (to & 63);
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return LabProbe{std::move(engine), std::move(expected), std::move(measured), std::move(not_probed),
                  std::move(without_address)};
}

}  // namespace netpol::lab
