#include "cni/plugin.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "base/hash.h"
#include "base/netns.h"
#include "cni/agent_client.h"
#include "cni/internal/rtnl.h"
#include "cni/internal/trace.h"
#include "cni/ipam.h"
#include "cni/registry.h"

namespace netpol::cni {
namespace {

using internal::Mac;
using internal::RouteSpec;
using internal::Rtnl;
using nlohmann::json;

constexpr const char* kSupported[] = {"0.4.0", "1.0.0", "1.1.0"};
constexpr const char* kLatest = "1.1.0";
// The gateway a pod routes through: link-local, answered by the node side
// (proxy ARP for IPv4; the node's own fe80::1 for IPv6). The same on every
// pod, so no per-pod gateway address is spent.
constexpr const char* kGateway4 = "169.254.1.1";
constexpr const char* kGateway6 = "fe80::1";
constexpr Mac kHostMac = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};

// A failure the runtime sees: a CNI code, a message and details.
struct Failure {
  int code;
  std::string msg;
  std::string details;
};

struct NetConf {
  std::string version;
  std::string name;
  std::vector<IpPrefix> ranges;
  std::string state_dir = "/var/lib/netpol/cni";
  std::string agent_socket;
  int agent_timeout_ms = 5000;
  std::optional<int> mtu;
  json dns = json::object();
  std::optional<json> prev_result;
  std::vector<Owner> valid_attachments;  // GC
};

struct PodArgs {
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
};

bool Supported(const std::string& version) {
  return std::any_of(std::begin(kSupported), std::end(kSupported),
                     [&](const char* v) { return version == v; });
}

Outcome ErrorOutcome(const std::string& version, const Failure& f) {
  json error = {{"cniVersion", version.empty() ? kLatest : version}, {"code", f.code}, {"msg", f.msg}};
  if (!f.details.empty()) error["details"] = f.details;
  return {1, error.dump(2) + "\n"};
}

std::variant<NetConf, Failure> ParseConfig(const std::string& text, bool need_version = true) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Failure{kDecodeFailure, "cannot decode the network configuration", e.what()};
  }
  if (!j.is_object()) return Failure{kDecodeFailure, "the network configuration is not a JSON object", ""};
  NetConf conf;
  try {
    conf.version = j.value("cniVersion", "");
    if (need_version && conf.version.empty()) return Failure{kInvalidConfig, "cniVersion is required", ""};
    if (!conf.version.empty() && !Supported(conf.version)) {
      return Failure{kIncompatibleVersion, "incompatible CNI version " + conf.version,
                     "netpol-cni supports 0.4.0, 1.0.0 and 1.1.0"};
    }
    conf.name = j.value("name", "");
    if (j.contains("ipam") && j["ipam"].contains("ranges")) {
      for (const json& r : j["ipam"]["ranges"]) {
        const Result<IpPrefix> prefix = IpPrefix::Parse(r.get<std::string>());
        if (!prefix)
          return Failure{kInvalidConfig, "invalid ipam.ranges entry " + r.dump(), prefix.error().message()};
        conf.ranges.push_back(*prefix);
      }
    }
    conf.state_dir = j.value("stateDir", conf.state_dir);
    conf.agent_socket = j.value("agentSocket", "");
    conf.agent_timeout_ms = j.value("agentTimeoutMs", conf.agent_timeout_ms);
    if (j.contains("mtu")) conf.mtu = j["mtu"].get<int>();
    if (j.contains("dns")) conf.dns = j["dns"];
    if (j.contains("prevResult") && !j["prevResult"].is_null()) conf.prev_result = j["prevResult"];
    if (j.contains("cni.dev/valid-attachments")) {
      for (const json& a : j["cni.dev/valid-attachments"]) {
        conf.valid_attachments.push_back(
            {a.at("containerID").get<std::string>(), a.at("ifname").get<std::string>()});
      }
    }
  } catch (const json::exception& e) {
    return Failure{kInvalidConfig, "invalid network configuration", e.what()};
  }
  if (conf.name.empty()) return Failure{kInvalidConfig, "the network configuration has no name", ""};
  return conf;
}

std::optional<Failure> CheckEnvironment(const Invocation& call, bool need_netns) {
  const std::string& id = call.container_id;
  const bool id_ok = !id.empty() && std::isalnum(static_cast<unsigned char>(id[0])) &&
                     std::all_of(id.begin(), id.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
                     });
  if (!id_ok) return Failure{kInvalidEnvironment, "invalid CNI_CONTAINERID \"" + id + "\"", ""};
  const std::string& ifname = call.ifname;
  const bool ifname_ok = !ifname.empty() && ifname.size() < 16 && ifname != "." && ifname != ".." &&
                         std::none_of(ifname.begin(), ifname.end(), [](char c) {
                           return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c));
                         });
  if (!ifname_ok) return Failure{kInvalidEnvironment, "invalid CNI_IFNAME \"" + ifname + "\"", ""};
  if (need_netns && call.netns.empty()) return Failure{kInvalidEnvironment, "CNI_NETNS is required", ""};
  return std::nullopt;
}

PodArgs ParseArgs(const std::string& args) {
  PodArgs out;
  size_t start = 0;
  while (start <= args.size()) {
    const size_t end = std::min(args.find(';', start), args.size());
    const std::string pair = args.substr(start, end - start);
    const size_t eq = pair.find('=');
    if (eq != std::string::npos) {
      const std::string key = pair.substr(0, eq);
      const std::string value = pair.substr(eq + 1);
      if (key == "K8S_POD_NAMESPACE") out.pod_namespace = value;
      if (key == "K8S_POD_NAME") out.pod_name = value;
      if (key == "K8S_POD_UID") out.pod_uid = value;
    }
    start = end + 1;
  }
  return out;
}

std::string MacText(const Mac& mac) {
  char buffer[18];
  std::snprintf(buffer, sizeof(buffer), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buffer;
}

// Writes a sysctl of the calling thread's network namespace.
Status Sysctl(const std::string& key, const std::string& value) {
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) return PermissionDenied("cannot set " + key);
  return Ok();
}

// The result JSON in the caller's version (0.4.0 marks each address's family).
json ConvertResult(json result, const std::string& version) {
  result["cniVersion"] = version;
  if (result.contains("ips")) {
    for (json& ip : result["ips"]) {
      if (version == "0.4.0") {
        const std::string address = ip.value("address", "");
        ip["version"] = address.find(':') == std::string::npos ? "4" : "6";
      } else {
        ip.erase("version");
      }
    }
  }
  return result;
}

std::vector<IpAddress> AddressesOf(const json& result) {
  std::vector<IpAddress> out;
  if (!result.contains("ips")) return out;
  for (const json& ip : result["ips"]) {
    const std::string cidr = ip.value("address", "");
    if (const Result<IpAddress> a = IpAddress::Parse(cidr.substr(0, cidr.find('/')))) out.push_back(*a);
  }
  return out;
}

std::string IpamDir(const NetConf& conf) {
  return conf.state_dir + "/ipam/" + conf.name;
}

// Tests kill the plugin at these points of ADD (NETPOL_CNI_TEST_PAUSE_AT=allocated|wired)
// to prove that nothing leaks that DEL or GC cannot reclaim.
void TestPause(const char* point) {
  const char* at = std::getenv("NETPOL_CNI_TEST_PAUSE_AT");
  if (at != nullptr && std::string(at) == point) ::usleep(5'000'000);
}

class Plugin {
 public:
  Plugin(const Invocation& call, NetConf conf) : call_(call), conf_(std::move(conf)) {
    owner_ = {call.container_id, call.ifname};
    host_ = HostInterfaceName(owner_);
  }

  static std::string HostInterfaceName(const Owner& owner) {
    Fnv1a h;
    h.Add(owner.container_id + "/" + owner.ifname);
    char buffer[16];
    std::snprintf(buffer, sizeof(buffer), "np%012llx", static_cast<unsigned long long>(h.value() >> 16));
    return buffer;
  }

  Outcome Add() {
    const PodArgs args = ParseArgs(call_.args);
    PodRegistration pod{owner_, args.pod_namespace, args.pod_name, args.pod_uid, {},
                        host_,  call_.netns,        false};
    json result;
    // The agent learns of the pod first, so it reads the pod's policies from
    // the API while we wire. Unreachable now: the confirmation below says so.
    std::optional<AgentConnection> agent;
    if (!conf_.agent_socket.empty()) {
      if (Result<AgentConnection> opened = AgentConnection::Open(conf_.agent_socket); opened) {
        if (opened->Announce(pod.pod_namespace, pod.pod_name).ok()) agent.emplace(std::move(*opened));
      }
      internal::TraceStep(call_.container_id, "announced");
    }
    // With the pod's addresses known (and its veth created), the agent programs
    // its rules while the rest of ADD runs (wiring, registration): they
    // overlap instead of adding up.
    const auto stage = [&](const PodRegistration& staged) {
      if (agent && !agent->Stage(staged).ok()) agent.reset();
      internal::TraceStep(call_.container_id, "staged");
    };
    if (conf_.prev_result) {
      // Chained: someone else wired the pod; take its addresses, pass the result on.
      pod.chained = true;
      pod.host_interface.clear();
      pod.ips = AddressesOf(*conf_.prev_result);
      if (pod.ips.empty())
        return Fail({kInvalidConfig, "prevResult has no addresses to enforce policy on", ""});
      stage(pod);
      result = *conf_.prev_result;
    } else {
      if (conf_.ranges.empty()) return Fail({kInvalidConfig, "ipam.ranges is required in routed mode", ""});
      auto wired = Wire(pod, stage);
      if (auto* f = std::get_if<Failure>(&wired)) {
        Undo();
        return Fail(*f);
      }
      result = std::get<json>(wired);
      internal::TraceStep(call_.container_id, "wired");
    }
    if (Status s = Register(conf_.state_dir, pod); !s.ok()) {
      Undo();
      return Fail({kIoFailure, "cannot register the pod", s.error().message()});
    }
    internal::TraceStep(call_.container_id, "registered");
    if (!conf_.agent_socket.empty()) {
      const auto timeout = std::chrono::milliseconds(conf_.agent_timeout_ms);
      const Status confirmed = agent ? agent->Confirm(AgentOp::kAdd, pod, timeout)
                                     : ConfirmWithAgent(conf_.agent_socket, AgentOp::kAdd, pod, timeout);
      if (!confirmed.ok()) {
        // Fail closed: a pod whose policy is not in force does not start.
        Undo();
        const bool later = confirmed.error().code() == ErrorCode::kUnavailable;
        return Fail({later ? kTryAgainLater : kPolicyNotConfirmed, "the pod's network policy is not in force",
                     confirmed.error().message()});
      }
      internal::TraceStep(call_.container_id, "confirmed");
    }
    return {0, ConvertResult(result, conf_.version).dump(2) + "\n"};
  }

  Outcome Del() {
    // Everything idempotent and permissive: the netns may be gone, the ADD may
    // have died half-way, a DEL may come twice.
    std::string problems;
    if (!conf_.agent_socket.empty()) {
      if (Result<PodRegistration> pod = FindRegistration(conf_.state_dir, owner_)) {
        // An agent that is down forgets the pod when it reconciles on start.
        (void)ConfirmWithAgent(conf_.agent_socket, AgentOp::kDel, *pod,
                               std::chrono::milliseconds(conf_.agent_timeout_ms));
      }
    }
    if (Status s = Unregister(conf_.state_dir, owner_); !s.ok()) problems += s.error().message() + "; ";
    if (Result<Rtnl> node = Rtnl::Open("")) {
      if (Status s = node->DeleteLink(host_); !s.ok() && s.error().code() != ErrorCode::kNotFound) {
        problems += s.error().message() + "; ";
      }
    } else {
      problems += node.error().message() + "; ";
    }
    if (!conf_.ranges.empty()) {
      if (Result<Ipam> ipam = Ipam::Open(IpamDir(conf_), conf_.ranges)) {
        if (Status s = ipam->Release(owner_); !s.ok()) problems += s.error().message() + "; ";
      }
    }
    if (!problems.empty()) return Fail({kIoFailure, "cleaning up the pod failed", problems});
    return {0, ""};
  }

  Outcome Check() {
    if (!conf_.prev_result) return Fail({kInvalidConfig, "CHECK needs prevResult", ""});
    Result<PodRegistration> pod = FindRegistration(conf_.state_dir, owner_);
    if (!pod) return Fail({kCheckFailed, "the pod is not registered for policy", pod.error().message()});
    const std::vector<IpAddress> expected = AddressesOf(*conf_.prev_result);
    for (const IpAddress& ip : expected) {
      if (std::find(pod->ips.begin(), pod->ips.end(), ip) == pod->ips.end()) {
        return Fail({kCheckFailed, "address " + ip.ToString() + " is not registered for policy", ""});
      }
    }
    if (!pod->chained) {
      if (auto f = CheckWiring(expected)) return Fail(*f);
    }
    if (!conf_.agent_socket.empty()) {
      const Status s = ConfirmWithAgent(conf_.agent_socket, AgentOp::kCheck, *pod,
                                        std::chrono::milliseconds(conf_.agent_timeout_ms));
      if (!s.ok())
        return Fail({kCheckFailed, "the pod's network policy is not confirmed", s.error().message()});
    }
    return {0, ""};
  }

  Outcome ReportStatus() {
    std::error_code ec;
    std::filesystem::create_directories(conf_.state_dir, ec);
    if (ec || ::access(conf_.state_dir.c_str(), W_OK) != 0) {
      return Fail({kNotAvailable, "state directory " + conf_.state_dir + " is not writable", ec.message()});
    }
    if (!conf_.agent_socket.empty()) {
      // The agent must be there to confirm policy, or ADD cannot succeed.
      const auto s =
          ConfirmWithAgent(conf_.agent_socket, AgentOp::kStatus, {}, std::chrono::milliseconds(1000));
      if (!s.ok()) return Fail({kNotAvailable, "the node agent is not ready", s.error().message()});
    }
    return {0, ""};
  }

  Outcome Gc() {
    const std::vector<Owner>& valid = conf_.valid_attachments;
    std::string problems;
    Result<Rtnl> node = Rtnl::Open("");
    const auto drop_link = [&](const Owner& owner) {
      if (!node) return;
      const auto s = node->DeleteLink(HostInterfaceName(owner));
      if (!s.ok() && s.error().code() != ErrorCode::kNotFound) problems += s.error().message() + "; ";
    };
    if (!conf_.ranges.empty()) {
      if (Result<Ipam> ipam = Ipam::Open(IpamDir(conf_), conf_.ranges)) {
        Result<std::vector<Allocation>> released = ipam->Retain(valid);
        if (!released) {
          problems += released.error().message() + "; ";
        } else {
          for (const Allocation& a : *released) drop_link(a.owner);
        }
      }
    }
    if (Result<std::vector<PodRegistration>> pods = ListRegistrations(conf_.state_dir)) {
      for (const PodRegistration& pod : *pods) {
        if (std::find(valid.begin(), valid.end(), pod.owner) != valid.end()) continue;
        if (!conf_.agent_socket.empty()) {
          (void)ConfirmWithAgent(conf_.agent_socket, AgentOp::kDel, pod,
                                 std::chrono::milliseconds(conf_.agent_timeout_ms));
        }
        if (auto s = Unregister(conf_.state_dir, pod.owner); !s.ok()) problems += s.error().message() + "; ";
        if (!pod.chained) drop_link(pod.owner);
      }
    }
    if (!problems.empty()) return Fail({kIoFailure, "garbage collection was incomplete", problems});
    return {0, ""};
  }

 private:
  Outcome Fail(const Failure& f) const { return ErrorOutcome(conf_.version, f); }

  // Releases what a failed ADD took (safe to call whatever was done).
  void Undo() {
    if (undo_link_) {
      if (Result<Rtnl> node = Rtnl::Open("")) (void)node->DeleteLink(host_);
    }
    if (undo_ipam_) {
      // Addresses reserved for the pod go back to its reservation: the pod is
      // still scheduled here, and its next ADD takes them over again.
      if (Result<Ipam> ipam = Ipam::Open(IpamDir(conf_), conf_.ranges))
        (void)ipam->Release(owner_, reserved_);
    }
    (void)Unregister(conf_.state_dir, owner_);
  }

  // `created` is called once the pod's addresses are allocated and its veth
  // pair exists, before the rest of the wiring. Not earlier: creating the
  // node's end of the pair waits for any nftables transaction in the node's
  // namespace to finish (the kernel's netdevice notifier takes nftables'
  // commit lock), so the agent programming a pod of many elements meanwhile
  // would hold the veth up for as long (6-8 ms measured).
  std::variant<json, Failure> Wire(PodRegistration& pod,
                                   const std::function<void(const PodRegistration&)>& created) {
    const auto fail = [](const std::string& what, const Error& e) {
      return Failure{kWiringFailed, what, e.message()};
    };
    Result<int> netns_fd = OpenNetns(call_.netns);
    if (!netns_fd) {
      return Failure{kUnknownContainer, "cannot open the pod's network namespace",
                     netns_fd.error().message()};
    }
    struct CloseFd {
      int fd;
      ~CloseFd() { ::close(fd); }
    } close_netns{*netns_fd};
    Result<Ipam> ipam = Ipam::Open(IpamDir(conf_), conf_.ranges);
    if (!ipam) return Failure{kInvalidConfig, "invalid IPAM configuration", ipam.error().message()};
    undo_ipam_ = true;
    // The addresses the agent reserved for the pod, when it saw it scheduled
    // here, are the ones its rules are already in force for.
    std::optional<Owner> reserved;
    if (!pod.pod_namespace.empty() && !pod.pod_name.empty())
      reserved = ReservationOwner(pod.pod_namespace, pod.pod_name);
    bool took_over = false;
    Result<std::vector<IpAddress>> ips = ipam->Allocate(owner_, reserved, &took_over);
    if (took_over) reserved_ = reserved;
    if (!ips) return Failure{kWiringFailed, "cannot allocate an address", ips.error().message()};
    pod.ips = *ips;
    internal::TraceStep(call_.container_id, "allocated");
    TestPause("allocated");
    Result<Rtnl> node = Rtnl::Open("");
    if (!node) return fail("cannot talk to the node's netlink", node.error());
    Result<Rtnl> in_pod = Rtnl::Open(call_.netns);
    if (!in_pod) return fail("cannot talk to the pod's netlink", in_pod.error());
    // A link of this name is a leftover of an ADD of this very attachment.
    (void)node->DeleteLink(host_);
    undo_link_ = true;
    if (Status s = node->CreateVeth(host_, kHostMac, call_.ifname, *netns_fd, conf_.mtu); !s.ok()) {
      return fail("cannot create the veth pair", s.error());
    }
    internal::TraceStep(call_.container_id, "veth");
    created(pod);
    Result<internal::LinkInfo> host_link = node->Link(host_);
    if (!host_link) return fail("the host interface vanished", host_link.error());
    const bool v6 =
        std::any_of(pod.ips.begin(), pod.ips.end(), [](const IpAddress& ip) { return !ip.is_v4(); });
    for (const auto& [key, value] :
         std::map<std::string, std::string>{{"net.ipv4.conf." + host_ + ".proxy_arp", "1"},
                                            {"net.ipv4.neigh." + host_ + ".proxy_delay", "0"}}) {
      if (Status s = Sysctl(key, value); !s.ok()) return fail("node sysctl", s.error());
    }
    if (v6) {
      if (Status s = Sysctl("net.ipv6.conf." + host_ + ".proxy_ndp", "1"); !s.ok())
        return fail("node sysctl", s.error());
      if (Status s = node->AddAddress(host_link->index, *IpAddress::Parse(kGateway6), 64); !s.ok()) {
        return fail("cannot give the host interface the IPv6 gateway address", s.error());
      }
    }
    if (Status s = node->SetUp(host_link->index); !s.ok())
      return fail("cannot bring the host interface up", s.error());
    for (const IpAddress& ip : pod.ips) {
      const RouteSpec route{*IpPrefix::Make(ip, ip.is_v4() ? 32 : 128), std::nullopt, host_link->index,
                            ip.is_v4()};
      if (Status s = node->AddRoute(route); !s.ok())
        return fail("cannot add the host route to " + ip.ToString(), s.error());
    }
    // The pod's side.
    if (Result<internal::LinkInfo> lo = in_pod->Link("lo")) (void)in_pod->SetUp(lo->index);
    Result<internal::LinkInfo> link = in_pod->Link(call_.ifname);
    if (!link) return fail("the pod interface is missing", link.error());
    for (const IpAddress& ip : pod.ips) {
      if (Status s = in_pod->AddAddress(link->index, ip, ip.is_v4() ? 32 : 128); !s.ok()) {
        return fail("cannot add " + ip.ToString() + " to the pod", s.error());
      }
    }
    if (Status s = in_pod->SetUp(link->index); !s.ok())
      return fail("cannot bring the pod interface up", s.error());
    json routes = json::array();
    json ips_json = json::array();
    const IpAddress gw4 = *IpAddress::Parse(kGateway4);
    const IpAddress gw6 = *IpAddress::Parse(kGateway6);
    bool have4 = false;
    for (const IpAddress& ip : pod.ips) {
      ips_json.push_back({{"address", ip.ToString() + (ip.is_v4() ? "/32" : "/128")},
                          {"gateway", ip.is_v4() ? kGateway4 : kGateway6},
                          {"interface", 1}});
      have4 = have4 || ip.is_v4();
    }
    if (have4) {
      if (Status s = in_pod->AddRoute({*IpPrefix::Make(gw4, 32), std::nullopt, link->index, true}); !s.ok()) {
        return fail("cannot route to the gateway in the pod", s.error());
      }
      if (Status s = in_pod->AddRoute({*IpPrefix::Parse("0.0.0.0/0"), gw4, link->index, false}); !s.ok()) {
        return fail("cannot add the pod's default route", s.error());
      }
      routes.push_back({{"dst", "0.0.0.0/0"}, {"gw", kGateway4}});
    }
    if (v6) {
      if (Status s = in_pod->AddRoute({*IpPrefix::Parse("::/0"), gw6, link->index, false}); !s.ok()) {
        return fail("cannot add the pod's IPv6 default route", s.error());
      }
      routes.push_back({{"dst", "::/0"}, {"gw", kGateway6}});
    }
    TestPause("wired");
    json interfaces = json::array();
    interfaces.push_back({{"name", host_}, {"mac", MacText(kHostMac)}});
    json pod_interface = {{"name", call_.ifname}, {"mac", MacText(link->mac)}, {"sandbox", call_.netns}};
    if (conf_.mtu) pod_interface["mtu"] = *conf_.mtu;
    interfaces.push_back(pod_interface);
    return json{{"cniVersion", conf_.version},
                {"interfaces", interfaces},
                {"ips", ips_json},
                {"routes", routes},
                {"dns", conf_.dns}};
  }

  std::optional<Failure> CheckWiring(const std::vector<IpAddress>& expected) {
    Result<Rtnl> node = Rtnl::Open("");
    if (!node) return Failure{kCheckFailed, "cannot talk to the node's netlink", node.error().message()};
    Result<internal::LinkInfo> host = node->Link(host_);
    if (!host)
      return Failure{kCheckFailed, "host interface " + host_ + " is missing", host.error().message()};
    if (!host->up) return Failure{kCheckFailed, "host interface " + host_ + " is down", ""};
    Result<Rtnl> in_pod = Rtnl::Open(call_.netns);
    if (!in_pod)
      return Failure{kUnknownContainer, "cannot enter the pod's network namespace", in_pod.error().message()};
    Result<internal::LinkInfo> link = in_pod->Link(call_.ifname);
    if (!link)
      return Failure{kCheckFailed, "pod interface " + call_.ifname + " is missing", link.error().message()};
    if (!link->up) return Failure{kCheckFailed, "pod interface " + call_.ifname + " is down", ""};
    Result<std::vector<IpAddress>> have = in_pod->Addresses(link->index);
    if (!have) return Failure{kCheckFailed, "cannot list the pod's addresses", have.error().message()};
    Result<Ipam> ipam = Ipam::Open(IpamDir(conf_), conf_.ranges);
    Result<std::vector<Allocation>> allocations =
        ipam ? ipam->List() : Result<std::vector<Allocation>>(ipam.error());
    for (const IpAddress& ip : expected) {
      if (std::find(have->begin(), have->end(), ip) == have->end()) {
        return Failure{kCheckFailed, "the pod interface lacks " + ip.ToString(), ""};
      }
      const bool reserved =
          allocations && std::any_of(allocations->begin(), allocations->end(), [&](const Allocation& a) {
            return a.address == ip && a.owner == owner_;
          });
      if (!reserved) return Failure{kCheckFailed, ip.ToString() + " is not reserved for this pod", ""};
    }
    return std::nullopt;
  }

  const Invocation& call_;
  NetConf conf_;
  Owner owner_;
  std::string host_;
  bool undo_link_ = false;
  bool undo_ipam_ = false;
  std::optional<Owner> reserved_;  // the reservation this ADD took over
};

}  // namespace

Outcome RunPlugin(const Invocation& call) {
  if (call.command == "VERSION") {
    // The runtime may send {"cniVersion": ...}; answer in that version when we speak it.
    std::string version = kLatest;
    try {
      const json j = json::parse(call.config.empty() ? "{}" : call.config);
      if (j.is_object() && Supported(j.value("cniVersion", ""))) version = j["cniVersion"];
    } catch (const json::exception&) {
    }
    return {0, json{{"cniVersion", version}, {"supportedVersions", kSupported}}.dump(2) + "\n"};
  }
  auto parsed = ParseConfig(call.config);
  if (auto* f = std::get_if<Failure>(&parsed)) return ErrorOutcome("", *f);
  NetConf conf = std::move(std::get<NetConf>(parsed));
  const std::string& cmd = call.command;
  if (cmd == "STATUS" || cmd == "GC") {
    if (conf.version != "1.1.0") {
      return ErrorOutcome(conf.version, {kIncompatibleVersion, cmd + " needs cniVersion 1.1.0", ""});
    }
    Plugin plugin(call, std::move(conf));
    return cmd == "STATUS" ? plugin.ReportStatus() : plugin.Gc();
  }
  if (cmd != "ADD" && cmd != "DEL" && cmd != "CHECK") {
    return ErrorOutcome(conf.version, {kInvalidEnvironment, "unknown CNI_COMMAND \"" + cmd + "\"", ""});
  }
  if (auto f = CheckEnvironment(call, cmd != "DEL")) return ErrorOutcome(conf.version, *f);
  Plugin plugin(call, std::move(conf));
  if (cmd == "ADD") {
    internal::TraceStep(call.container_id, "configured");
    return plugin.Add();
  }
  if (cmd == "DEL") return plugin.Del();
  return plugin.Check();
}

Result<Ipam> OpenNetworkIpam(const std::string& config) {
  json j;
  try {
    j = json::parse(config);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("cannot decode the network configuration: ") + e.what());
  }
  // A conflist names the network; its netpol-cni entry holds the rest.
  json entry = j;
  if (j.is_object() && j.contains("plugins") && j["plugins"].is_array()) {
    const auto ours = std::find_if(j["plugins"].begin(), j["plugins"].end(), [](const json& p) {
      return p.is_object() && p.value("type", "") == "netpol-cni";
    });
    if (ours == j["plugins"].end()) return NotFound("the configuration list has no netpol-cni entry");
    entry = *ours;
    entry["name"] = j.value("name", "");
  }
  auto parsed = ParseConfig(entry.dump(), /*need_version=*/false);
  if (const auto* f = std::get_if<Failure>(&parsed)) {
    return InvalidArgument(f->msg + (f->details.empty() ? "" : ": " + f->details));
  }
  const NetConf& conf = std::get<NetConf>(parsed);
  if (conf.ranges.empty()) return NotFound("netpol-cni has no ipam.ranges here (chained mode)");
  return Ipam::Open(IpamDir(conf), conf.ranges);
}

}  // namespace netpol::cni
