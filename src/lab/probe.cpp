#include "lab/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace netpol::lab {
namespace {

// Fills a sockaddr for ip:port; returns its length.
socklen_t Address(const IpAddress& ip, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (ip.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(ip.v4());
    return sizeof(sockaddr_in);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&out);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  for (int i = 0; i < 8; ++i) {
    a->sin6_addr.s6_addr[i] = static_cast<uint8_t>(ip.high() >> (56 - 8 * i));
    a->sin6_addr.s6_addr[8 + i] = static_cast<uint8_t>(ip.low() >> (56 - 8 * i));
  }
  return sizeof(sockaddr_in6);
}

int64_t RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max<int64_t>(left.count(), 0);
}

bool WaitFor(int fd, decltype(pollfd::events) events, std::chrono::steady_clock::time_point deadline) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(RemainingMs(deadline))) == 1 && (p.revents & events) != 0;
}

}  // namespace

ProbeServer::~ProbeServer() {
  for (const auto& [fd, proto] : sockets_) ::close(fd);
}

Status ProbeServer::Listen(const std::vector<std::pair<api::Protocol, uint16_t>>& ports) {
  for (const auto& [proto, port] : ports) {
    if (proto == api::Protocol::kSCTP) continue;  // this kernel has no SCTP sockets; see the e2e tests
    const int type = proto == api::Protocol::kTCP ? SOCK_STREAM : SOCK_DGRAM;
    const int fd = ::socket(AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
    const int off = 0;
    const int on = 1;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));  // v4-mapped too
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // UDP replies must come from the address the request went to, or a
    // namespace with several addresses answers from the wrong one.
    if (type == SOCK_DGRAM) ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_port = htons(port);
    // A full backlog drops SYNs, which a probe would read as policy: keep it deep
    // (SOMAXCONN) so a server thread that is slow to accept under load loses nothing.
    if (::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 ||
        (type == SOCK_STREAM && ::listen(fd, SOMAXCONN) != 0)) {
      const int err = errno;
      ::close(fd);
      return FailedPrecondition("cannot listen on " + std::to_string(port) + "/" +
                                std::string(api::ProtocolName(proto)) + ": " + std::strerror(err));
    }
    sockets_.emplace_back(fd, proto);
  }
  return Ok();
}

void ProbeServer::Serve(std::chrono::milliseconds duration, const std::atomic<bool>* stop) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  std::vector<pollfd> fds;
  for (const auto& [fd, proto] : sockets_) fds.push_back({fd, POLLIN, 0});
  const size_t listeners = fds.size();
  // Accepted TCP connections echo every line until the peer closes (so a
  // connection can be held open across policy changes); at most kMaxOpen.
  constexpr size_t kMaxOpen = 256;
  while (RemainingMs(deadline) > 0 && (stop == nullptr || !stop->load())) {
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(RemainingMs(deadline), 100))) <=
        0) {
      continue;
    }
    for (size_t i = fds.size(); i-- > listeners;) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[512];
      const ssize_t n = ::recv(fds[i].fd, buffer, sizeof(buffer), 0);
      if (n > 0 && ::send(fds[i].fd, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) == n) continue;
      ::close(fds[i].fd);
      fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (size_t i = 0; i < listeners; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      char buffer[512];
      if (sockets_[i].second == api::Protocol::kUDP) {
        sockaddr_storage peer{};
        iovec iov{buffer, sizeof(buffer)};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
        msghdr msg{};
        msg.msg_name = &peer;
        msg.msg_namelen = sizeof(peer);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        const ssize_t n = ::recvmsg(fds[i].fd, &msg, 0);
        if (n <= 0) continue;
        // Echo back with the same local address as source (IPV6_PKTINFO).
        iov.iov_len = static_cast<size_t>(n);
        msg.msg_flags = 0;
        in6_pktinfo info{};
        bool have_info = false;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            std::memcpy(&info, CMSG_DATA(c), sizeof(info));
            have_info = true;
          }
        }
        if (have_info) {
          msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
          cmsghdr* c = CMSG_FIRSTHDR(&msg);
          c->cmsg_level = IPPROTO_IPV6;
          c->cmsg_type = IPV6_PKTINFO;
          c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
          info.ipi6_ifindex = 0;
          std::memcpy(CMSG_DATA(c), &info, sizeof(info));
        } else {
          msg.msg_control = nullptr;
          msg.msg_controllen = 0;
        }
        (void)::sendmsg(fds[i].fd, &msg, 0);
        continue;
      }
      const int conn = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      if (fds.size() - listeners >= kMaxOpen) {
        ::close(conn);
        continue;
      }
      fds.push_back({conn, POLLIN, 0});
    }
  }
  for (size_t i = listeners; i < fds.size(); ++i) ::close(fds[i].fd);
}

Result<bool> Probe(const IpAddress& ip, api::Protocol protocol, uint16_t port,
                   std::chrono::milliseconds timeout, const std::optional<IpAddress>& source,
                   bool reachability) {
  if (protocol == api::Protocol::kSCTP)
    return FailedPrecondition("SCTP sockets are not available on this kernel");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_storage addr{};
  const socklen_t len = Address(ip, port, addr);
  const int type = protocol == api::Protocol::kTCP ? SOCK_STREAM : SOCK_DGRAM;
  const int fd = ::socket(ip.is_v4() ? AF_INET : AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  if (source) {
    sockaddr_storage local{};
    const socklen_t local_len = Address(*source, 0, local);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) != 0) {
      const int err = errno;
      ::close(fd);
      return FailedPrecondition("cannot bind to " + source->ToString() + ": " + std::strerror(err));
    }
  }
  bool ok = false;
  const char message[] = "netpol-probe\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 || errno == EINPROGRESS) {
    if (protocol == api::Protocol::kTCP) {
      int err = 0;
      socklen_t err_len = sizeof(err);
      const bool answered =
          WaitFor(fd, POLLOUT, deadline) && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0;
      if (answered && err == 0 && reachability) {
        ok = true;  // the handshake went through; what listens need not speak our protocol
      } else if (answered && err == 0) {
        ok = ::send(fd, message, sizeof(message) - 1, MSG_NOSIGNAL) > 0 && WaitFor(fd, POLLIN, deadline);
        char buffer[64];
        ok = ok && ::recv(fd, buffer, sizeof(buffer), 0) > 0;
      }
      // A reset is the peer's own answer: the packet got through.
      if (answered && err == ECONNREFUSED && reachability) ok = true;
    } else {
      char buffer[64];
      // An ICMP port unreachable is an error on the socket (POLLERR, not
      // POLLIN): the refusal TCP's reset is, and with `reachability` as good
      // an answer (the datagram reached the pod; nothing listens there).
      ok = ::send(fd, message, sizeof(message) - 1, 0) > 0 &&
           WaitFor(fd, static_cast<decltype(pollfd::events)>(POLLIN | POLLERR), deadline);
      if (ok) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        ok = n > 0 || (n < 0 && errno == ECONNREFUSED && reachability);
      }
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace netpol::lab
