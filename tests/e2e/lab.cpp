#include "e2e/lab.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "base/netns.h"
#include "lab/probe.h"
#include "lab/sctp_probe.h"
#include "testutil/golden.h"

namespace netpol::testing {
namespace {

int Shell(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string LabScript() {
  return SourceDir() + "/tests/e2e/lab.sh";
}

}  // namespace

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string MissingE2ePrerequisite() {
  if (::geteuid() != 0) return "end-to-end tests need root (network namespaces, nftables)";
  if (Shell("command -v ip >/dev/null 2>&1") != 0) return "iproute2 (ip) is not installed";
  if (Shell("ip netns list >/dev/null 2>&1") != 0) return "cannot list network namespaces";
  return "";
}

PacketLab::PacketLab() {
  std::random_device rd;
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "np%06x", rd() & 0xffffff);
  prefix_ = buffer;
  node_ = prefix_ + "-node";
}

PacketLab::~PacketLab() {
  stop_ = true;
  for (std::thread& t : servers_) t.join();
  if (up_ || !pod_netns_.empty()) Shell(LabScript() + " down " + prefix_);
}

Status PacketLab::Up(const std::vector<std::pair<std::string, std::string>>& pods,
                     const std::vector<std::string>& external) {
  std::string command = LabScript() + " up " + prefix_;
  for (const std::string& address : external) {
    command += " ext:" + address;
    netns_by_address_[address] = prefix_ + "-ext";
  }
  if (!external.empty()) pod_netns_.push_back(prefix_ + "-ext");
  for (size_t i = 0; i < pods.size(); ++i) {
    const auto& [v4, v6] = pods[i];
    command += " " + v4 + (v6.empty() ? "" : "," + v6);
    const std::string ns = prefix_ + "-p" + std::to_string(i + 1);
    pod_netns_.push_back(ns);
    netns_by_address_[v4] = ns;
    if (!v6.empty()) netns_by_address_[IpAddress::Parse(v6)->ToString()] = ns;
  }
  up_ = true;
  if (Shell(command + " >/dev/null") != 0) return Internal("lab.sh up failed: " + command);
  return Ok();
}

Status PacketLab::Serve(const std::vector<std::pair<api::Protocol, uint16_t>>& ports) {
  for (const std::string& ns : pod_netns_) {
    auto ready = std::make_shared<std::atomic<int>>(0);  // 1 listening, -1 failed
    servers_.emplace_back([this, ns, ports, ready] {
      auto guard = NetnsGuard::Enter(ns);
      lab::ProbeServer server;
      if (!guard || !server.Listen(ports).ok()) {
        *ready = -1;
        return;
      }
      *ready = 1;
      server.Serve(std::chrono::minutes(10), &stop_);
    });
    while (*ready == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (*ready < 0) return Internal("cannot start a probe server in " + ns);
  }
  return Ok();
}

// No SCTP sockets on this kernel: an INIT chunk sent through a raw socket, and
// a raw observer in the destination's namespace that reports its arrival.
Result<bool> PacketLab::SctpReaches(const std::string& source_ns, const IpAddress& source,
                                    const IpAddress& target, uint16_t port,
                                    std::chrono::milliseconds timeout) {
  const std::string target_ns = PodNetns(target.ToString());
  if (target_ns.empty()) return NotFound("no lab namespace owns " + target.ToString());
  const uint32_t tag = static_cast<uint32_t>(std::random_device{}()) | 1U;
  std::atomic<int> ready{0};
  Result<bool> arrived = Internal("observer did not run");
  std::thread observer([&] {
    auto guard = NetnsGuard::Enter(target_ns);
    Result<lab::SctpInitObserver> watch =
        guard ? lab::SctpInitObserver::Open(target.family()) : Result<lab::SctpInitObserver>(guard.error());
    if (!watch) {
      arrived = std::move(watch).error();
      ready = -1;
      return;
    }
    ready = 1;
    arrived = watch->Await(source, port, tag, std::chrono::steady_clock::now() + timeout);
  });
  while (ready == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Status sent = Ok();
  if (ready > 0) {
    std::thread sender([&] {
      auto guard = NetnsGuard::Enter(source_ns);
      sent = guard ? lab::SendSctpInit(source, target, port, tag) : Status(guard.error());
    });
    sender.join();
  }
  observer.join();
  if (!sent) return std::move(sent).error();
  return arrived;
}

std::string PacketLab::PodNetns(const std::string& address) const {
  const Result<IpAddress> ip = IpAddress::Parse(address);
  if (!ip) return "";
  const auto it = netns_by_address_.find(ip->ToString());
  return it == netns_by_address_.end() ? "" : it->second;
}

Result<bool> PacketLab::Reaches(const std::string& from, const std::string& to, api::Protocol protocol,
                                uint16_t port, std::chrono::milliseconds timeout) {
  const std::string ns = PodNetns(from);
  if (ns.empty()) return NotFound("no lab pod owns " + from);
  NETPOL_ASSIGN_OR_RETURN(const IpAddress target, IpAddress::Parse(to), "probe target");
  NETPOL_ASSIGN_OR_RETURN(const IpAddress source, IpAddress::Parse(from), "probe source");
  if (protocol == api::Protocol::kSCTP) return SctpReaches(ns, source, target, port, timeout);
  Result<bool> result = Internal("probe did not run");
  // A fresh thread: setns affects only it, and the probe socket is born in `ns`.
  std::thread probe([&] {
    auto guard = NetnsGuard::Enter(ns);
    if (!guard) {
      result = std::move(guard).error();
      return;
    }
    result = lab::Probe(target, protocol, port, timeout, *IpAddress::Parse(from));
  });
  probe.join();
  return result;
}

namespace {

uint16_t Checksum(const uint8_t* data, size_t size) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < size; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (size % 2 == 1) sum += static_cast<uint32_t>(data[size - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// One echo request on a raw ICMP socket (root), and its reply from `target`.
Result<bool> Echo(const IpAddress& target, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return Internal("cannot open a raw ICMP socket");
  uint8_t request[16] = {8, 0, 0, 0, 0x4e, 0x50, 0, 1, 'n', 'e', 't', 'p', 'o', 'l', '1', '7'};
  const uint16_t sum = Checksum(request, sizeof(request));
  request[2] = static_cast<uint8_t>(sum >> 8);
  request[3] = static_cast<uint8_t>(sum & 0xff);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(target.v4());
  if (::sendto(fd, request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    ::close(fd);
    return false;  // unreachable: not answered
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool answered = false;
  while (!answered) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    uint8_t reply[256];
    sockaddr_in from{};
    socklen_t from_size = sizeof(from);
    const ssize_t n = ::recvfrom(fd, reply, sizeof(reply), 0, reinterpret_cast<sockaddr*>(&from), &from_size);
    if (n < 20) continue;
    const size_t ihl = static_cast<size_t>(reply[0] & 0x0f) * 4;
    answered = static_cast<size_t>(n) >= ihl + 8 && from.sin_addr.s_addr == to.sin_addr.s_addr &&
               reply[ihl] == 0 && reply[ihl + 4] == 0x4e && reply[ihl + 5] == 0x50;
  }
  ::close(fd);
  return answered;
}

}  // namespace

Result<bool> PacketLab::Pings(const std::string& from, const std::string& to,
                              std::chrono::milliseconds timeout) {
  const std::string ns = PodNetns(from);
  if (ns.empty()) return NotFound("no lab pod owns " + from);
  NETPOL_ASSIGN_OR_RETURN(const IpAddress target, IpAddress::Parse(to), "ping target");
  if (!target.is_v4()) return InvalidArgument("Pings speaks IPv4 only");
  Result<bool> result = Internal("ping did not run");
  std::thread probe([&] {
    auto guard = NetnsGuard::Enter(ns);
    if (!guard) {
      result = std::move(guard).error();
      return;
    }
    result = Echo(target, timeout);
  });
  probe.join();
  return result;
}

}  // namespace netpol::testing
