#include "cni/agent_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace netpol::cni {
namespace {

// A file descriptor closed on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

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

Status AgentConnection::Send(const AgentRequest& request) {
  const std::string data = EncodeRequest(request) + "\n";
  if (::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
    return Unavailable("cannot send to the node agent: " + std::string(std::strerror(errno)));
  }
  return Ok();
}

Status AgentConnection::Announce(const std::string& pod_namespace, const std::string& pod_name) {
  return Send({.op = AgentOp::kPrepare, .pod_namespace = pod_namespace, .pod_name = pod_name});
}

Status AgentConnection::Stage(const PodRegistration& pod) {
  return Send({.op = AgentOp::kStage, .registration = pod});
}

Status AgentConnection::Confirm(AgentOp op, const PodRegistration& pod, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  AgentRequest request{.op = op};
  if (op != AgentOp::kStatus) request.registration = pod;
  if (Status sent = Send(request); !sent.ok()) return sent;
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
  const std::string_view line = reply;
  Result<AgentReply> answer = DecodeReply(line.substr(0, line.find('\n')));
  if (!answer) return Unavailable(answer.error().message());
  if (answer->ok) return Ok();
  return FailedPrecondition("the node agent refused: " +
                            (answer->error.empty() ? std::string("no reason given") : answer->error));
}

Status ConfirmWithAgent(const std::string& socket_path, AgentOp op, const PodRegistration& pod,
                        std::chrono::milliseconds timeout) {
  Result<AgentConnection> agent = AgentConnection::Open(socket_path);
  if (!agent) return std::move(agent).error();
  return agent->Confirm(op, pod, timeout);
}

}  // namespace netpol::cni
