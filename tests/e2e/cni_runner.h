// Invokes CNI plugins the way a container runtime does: the plugin binary
// found on CNI_PATH by its `type`, CNI_* in the environment, the network
// configuration on stdin, the result on stdout; conflists executed in order
// for ADD and CHECK (each plugin given the previous result as prevResult) and
// in reverse for DEL, as libcni does.
//
//   CniRunner cni("np123-node", {"/usr/lib/cni", build_dir});
//   CniReply r = cni.Run({.command = "ADD", .container_id = "c1", .netns = "/run/netns/np123-p1",
//                         .ifname = "eth0", .config = conf});
//   // r.exit_code, r.json()
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace netpol::testing {

struct CniCall {
  std::string command;
  std::string container_id;
  std::string netns;
  std::string ifname = "eth0";
  std::string args;
  std::string config;  // one plugin's configuration (with type, name, cniVersion)
  std::map<std::string, std::string> extra_env;
};

struct CniReply {
  int exit_code = -1;  // -1: did not exit normally (killed)
  std::string out;
  nlohmann::json json() const { return out.empty() ? nlohmann::json() : nlohmann::json::parse(out); }
};

class CniRunner {
 public:
  // How a plugin enters the node's namespace. `ip netns exec` also gives it a
  // mount namespace with the node's /sys, which plugins reading /sys/class/net
  // need; setns in the child skips ip's extra process and mount namespace, most
  // of a fast plugin's cost when thousands of calls are timed.
  enum class Entry : uint8_t { kIpNetnsExec, kSetns };

  // Plugins run inside `node_netns` (the node's namespace, as a runtime on that
  // node would run them), found in `plugin_dirs`. One runner per thread.
  CniRunner(std::string node_netns, std::vector<std::string> plugin_dirs, Entry entry = Entry::kIpNetnsExec)
      : node_(std::move(node_netns)), dirs_(std::move(plugin_dirs)), entry_(entry) {}

  // Starts the plugin named by the config's type; returns its pid (stdout is
  // collected by Wait).
  pid_t Start(const CniCall& call);
  CniReply Wait(pid_t pid);
  CniReply Run(const CniCall& call) { return Wait(Start(call)); }

  // A conflist: ADD/CHECK in order, DEL in reverse, passing prevResult. For
  // CHECK and DEL `prev_result` is the ADD's final result. Stops at the first
  // failure and returns it.
  CniReply RunList(const nlohmann::json& conflist, CniCall call, const nlohmann::json& prev_result = {});

 private:
  std::string Find(const std::string& type) const;

  std::string node_;
  std::vector<std::string> dirs_;
  Entry entry_;
  std::map<pid_t, int> outputs_;  // pid -> read end of its stdout
};

}  // namespace netpol::testing
