#include "cni/registry.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace netpol::cni {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string PodsDir(const std::string& state_dir) {
  return state_dir + "/pods";
}

std::string FileOf(const std::string& state_dir, const Owner& owner) {
  return PodsDir(state_dir) + "/" + owner.container_id + "_" + owner.ifname + ".json";
}

json ToJson(const PodRegistration& pod) {
  json ips = json::array();
  for (const IpAddress& ip : pod.ips) ips.push_back(ip.ToString());
  return {{"containerID", pod.owner.container_id},
          {"ifname", pod.owner.ifname},
          {"namespace", pod.pod_namespace},
          {"name", pod.pod_name},
          {"uid", pod.pod_uid},
          {"ips", ips},
          {"hostInterface", pod.host_interface},
          {"netns", pod.netns},
          {"chained", pod.chained}};
}

// A file descriptor closed on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string EncodeRegistration(const PodRegistration& pod) {
  return ToJson(pod).dump();
}

Result<PodRegistration> DecodeRegistration(const std::string& text) {
  try {
    const json j = json::parse(text);
    PodRegistration pod;
    pod.owner = {j.at("containerID").get<std::string>(), j.at("ifname").get<std::string>()};
    pod.pod_namespace = j.value("namespace", "");
    pod.pod_name = j.value("name", "");
    pod.pod_uid = j.value("uid", "");
    for (const json& ip : j.at("ips")) {
      NETPOL_ASSIGN_OR_RETURN(IpAddress parsed, IpAddress::Parse(ip.get<std::string>()), "registration ips");
      pod.ips.push_back(parsed);
    }
    pod.host_interface = j.value("hostInterface", "");
    pod.netns = j.value("netns", "");
    pod.chained = j.value("chained", false);
    return pod;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("invalid pod registration: ") + e.what());
  }
}

Status Register(const std::string& state_dir, const PodRegistration& pod) {
  std::error_code ec;
  fs::create_directories(PodsDir(state_dir), ec);
  if (ec) return PermissionDenied("cannot create " + PodsDir(state_dir) + ": " + ec.message());
  const std::string path = FileOf(state_dir, pod.owner);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << EncodeRegistration(pod) << "\n";
    out.flush();
    if (!out) return PermissionDenied("cannot write " + temp);
  }
  fs::rename(temp, path, ec);
  if (ec) return PermissionDenied("cannot write " + path + ": " + ec.message());
  return Ok();
}

Status Unregister(const std::string& state_dir, const Owner& owner) {
  std::error_code ec;
  fs::remove(FileOf(state_dir, owner), ec);
  if (ec) return PermissionDenied("cannot remove " + FileOf(state_dir, owner) + ": " + ec.message());
  return Ok();
}

Result<std::vector<PodRegistration>> ListRegistrations(const std::string& state_dir) {
  std::vector<PodRegistration> out;
  std::error_code ec;
  if (!fs::exists(PodsDir(state_dir), ec)) return out;
  for (const auto& entry : fs::directory_iterator(PodsDir(state_dir), ec)) {
    if (entry.path().extension() != ".json") continue;  // skips half-written .tmp files
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    NETPOL_ASSIGN_OR_RETURN(PodRegistration pod, DecodeRegistration(text.str()), entry.path().string());
    out.push_back(std::move(pod));
  }
  if (ec) return PermissionDenied("cannot read " + PodsDir(state_dir) + ": " + ec.message());
  return out;
}

Result<PodRegistration> FindRegistration(const std::string& state_dir, const Owner& owner) {
  std::ifstream in(FileOf(state_dir, owner));
  if (!in) return NotFound("no registration for " + owner.container_id + "/" + owner.ifname);
  std::stringstream text;
  text << in.rdbuf();
  return DecodeRegistration(text.str());
}

Result<AgentConnection> AgentConnection::Open(const std::string& socket_path) {
  Fd sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) return InvalidArgument("agent socket path too long");
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(sock.fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Unavailable("the node agent is not reachable at " + socket_path + ": " + std::strerror(errno));
  }
  return AgentConnection(std::exchange(sock.fd, -1));
}

AgentConnection::~AgentConnection() {
  if (fd_ >= 0) ::close(fd_);
}

Status AgentConnection::SendLine(const std::string& line) {
  const std::string data = line + "\n";
  if (::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
    return Unavailable("cannot send to the node agent: " + std::string(std::strerror(errno)));
  }
  return Ok();
}

Status AgentConnection::Announce(const std::string& pod_namespace, const std::string& pod_name) {
  return SendLine(json{{"op", "prepare"}, {"namespace", pod_namespace}, {"name", pod_name}}.dump());
}

Status AgentConnection::Stage(const PodRegistration& pod) {
  return SendLine(json{{"op", "stage"}, {"registration", ToJson(pod)}}.dump());
}

Status AgentConnection::Confirm(const std::string& op, const PodRegistration& pod,
                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (Status sent = SendLine(json{{"op", op}, {"registration", ToJson(pod)}}.dump()); !sent.ok()) return sent;
  std::string reply;
  char buffer[4096];
  while (reply.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Unavailable("the node agent did not confirm within " + std::to_string(timeout.count()) + " ms");
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return Unavailable("the node agent closed the connection without an answer");
    reply.append(buffer, static_cast<size_t>(n));
  }
  try {
    const json answer = json::parse(reply.substr(0, reply.find('\n')));
    if (answer.value("ok", false)) return Ok();
    return FailedPrecondition("the node agent refused: " +
                              answer.value("error", std::string("no reason given")));
  } catch (const json::exception& e) {
    return Unavailable(std::string("unreadable answer from the node agent: ") + e.what());
  }
}

Status ConfirmWithAgent(const std::string& socket_path, const std::string& op, const PodRegistration& pod,
                        std::chrono::milliseconds timeout) {
  Result<AgentConnection> agent = AgentConnection::Open(socket_path);
  if (!agent) return std::move(agent).error();
  return agent->Confirm(op, pod, timeout);
}

}  // namespace netpol::cni
