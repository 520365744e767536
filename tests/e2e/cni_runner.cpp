#include "e2e/cni_runner.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "base/exec_args.h"
#include "base/netns.h"

namespace netpol::testing {

using nlohmann::json;

std::string CniRunner::Find(const std::string& type) const {
  for (const std::string& dir : dirs_) {
    const std::string path = dir + "/" + type;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error("CNI plugin " + type + " not found");
}

pid_t CniRunner::Start(const CniCall& call) {
  const std::string type = json::parse(call.config).at("type").get<std::string>();
  const std::string binary = Find(type);
  std::string path;
  for (const std::string& dir : dirs_) path += (path.empty() ? "" : ":") + dir;
  std::vector<std::string> env = {"CNI_COMMAND=" + call.command,
                                  "CNI_CONTAINERID=" + call.container_id,
                                  "CNI_NETNS=" + call.netns,
                                  "CNI_IFNAME=" + call.ifname,
                                  "CNI_ARGS=" + call.args,
                                  "CNI_PATH=" + path,
                                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  for (const auto& [k, v] : call.extra_env) env.push_back(k + "=" + v);
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  // The plugin runs in the node's namespace, as the runtime on that node would run it.
  const bool through_ip = entry_ == Entry::kIpNetnsExec;
  const ExecArgs args =
      through_ip ? ExecArgs({"ip", "netns", "exec", node_, binary}, env) : ExecArgs({binary}, env);
  int node_fd = -1;
  if (!through_ip) {
    Result<int> opened = OpenNetns(node_);
    if (!opened.ok()) throw std::runtime_error(opened.error().message());
    node_fd = *opened;
  }
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    if (node_fd >= 0 && ::setns(node_fd, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::execvpe(args.file(), args.argv(), args.envp());
    ::_exit(127);
  }
  if (node_fd >= 0) ::close(node_fd);
  ::close(in[0]);
  ::close(out[1]);
  const std::string& config = call.config;
  size_t written = 0;
  while (written < config.size()) {
    const ssize_t n = ::write(in[1], config.data() + written, config.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(in[1]);
  outputs_[pid] = out[0];
  return pid;
}

CniReply CniRunner::Wait(pid_t pid) {
  CniReply reply;
  const int fd = outputs_.at(pid);
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  outputs_.erase(pid);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  reply.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return reply;
}

CniReply CniRunner::RunList(const json& conflist, CniCall call, const json& prev_result) {
  std::vector<json> plugins(conflist.at("plugins").begin(), conflist.at("plugins").end());
  const bool reverse = call.command == "DEL";
  if (reverse) std::reverse(plugins.begin(), plugins.end());
  json previous = prev_result;
  CniReply last;
  for (json plugin : plugins) {
    plugin["name"] = conflist.at("name");
    plugin["cniVersion"] = conflist.at("cniVersion");
    if (!previous.is_null()) plugin["prevResult"] = previous;
    call.config = plugin.dump();
    last = Run(call);
    if (last.exit_code != 0) return last;
    // ADD passes each result on; CHECK and DEL give every plugin the ADD's result.
    if (call.command == "ADD") previous = last.json();
  }
  if (call.command == "ADD") last.out = previous.dump();
  return last;
}

}  // namespace netpol::testing
