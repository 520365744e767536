#include "dataplane/nflog.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "base/netns.h"

namespace netpol::dataplane {
namespace {

// Sends one NFULNL_MSG_CONFIG request and waits for its acknowledgement.
Status Configure(mnl_socket* nl, uint16_t group, uint8_t family,
                 const std::function<void(nlmsghdr*)>& attributes) {
  std::vector<char> buffer(static_cast<size_t>(MNL_SOCKET_BUFFER_SIZE));
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(group);
  attributes(nlh);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
    return Unavailable(std::string("configuring NFLOG: ") + std::strerror(errno));
  }
  const ssize_t n = mnl_socket_recvfrom(nl, buffer.data(), buffer.size());
  if (n < 0) return Unavailable(std::string("configuring NFLOG: ") + std::strerror(errno));
  if (mnl_cb_run(buffer.data(), static_cast<size_t>(n), 0, 0, nullptr, nullptr) < 0) {
    return Unavailable("NFLOG group " + std::to_string(group) + ": " + std::strerror(errno) +
                       " (is another program bound to it?)");
  }
  return Ok();
}

uint16_t Port(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

}  // namespace

std::optional<LoggedPacket> ParsePacketHeaders(std::span<const uint8_t> packet) {
  if (packet.empty()) return std::nullopt;
  LoggedPacket out;
  size_t l4 = 0;
  const int version = packet[0] >> 4;
  if (version == 4) {
    if (packet.size() < 20) return std::nullopt;
    const size_t ihl = static_cast<size_t>(packet[0] & 0x0f) * 4;
    if (ihl < 20 || packet.size() < ihl) return std::nullopt;
    out.ip_protocol = packet[9];
    const auto v4 = [&](size_t at) {
      return IpAddress::V4(static_cast<uint32_t>(packet[at]) << 24 |
                           static_cast<uint32_t>(packet[at + 1]) << 16 |
                           static_cast<uint32_t>(packet[at + 2]) << 8 | packet[at + 3]);
    };
    out.src = v4(12);
    out.dst = v4(16);
    l4 = ihl;
  } else if (version == 6) {
    if (packet.size() < 40) return std::nullopt;
    out.ip_protocol = packet[6];  // extension headers are not followed: no ports then
    const auto v6 = [&](size_t at) {
      uint64_t high = 0;
      uint64_t low = 0;
      for (size_t i = 0; i < 8; ++i) high = high << 8 | packet[at + i];
      for (size_t i = 8; i < 16; ++i) low = low << 8 | packet[at + i];
      return IpAddress::V6(high, low);
    };
    out.src = v6(8);
    out.dst = v6(24);
    l4 = 40;
  } else {
    return std::nullopt;
  }
  switch (out.ip_protocol) {
    case 6:
      out.protocol = api::Protocol::kTCP;
      break;
    case 17:
      out.protocol = api::Protocol::kUDP;
      break;
    case 132:
      out.protocol = api::Protocol::kSCTP;
      break;
    default:
      return out;
  }
  if (packet.size() >= l4 + 4) {
    out.src_port = Port(&packet[l4]);
    out.dst_port = Port(&packet[l4 + 2]);
  }
  return out;
}

Result<NflogReader> NflogReader::Open(const std::string& netns, uint16_t group) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "opening NFLOG");
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr) return Unavailable(std::string("NFLOG socket: ") + std::strerror(errno));
  NflogReader reader(nl);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    return Unavailable(std::string("NFLOG bind: ") + std::strerror(errno));
  }
  NETPOL_RETURN_IF_ERROR(Configure(nl, group, AF_UNSPEC,
                                   [](nlmsghdr* nlh) {
                                     nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
                                     mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof(cmd), &cmd);
                                   }),
                         "binding NFLOG group " + std::to_string(group));
  // The first 128 bytes carry the IP and transport headers, which is all we read.
  NETPOL_RETURN_IF_ERROR(Configure(nl, group, AF_UNSPEC,
                                   [](nlmsghdr* nlh) {
                                     nfulnl_msg_config_mode mode{};
                                     mode.copy_range = htonl(128);
                                     mode.copy_mode = NFULNL_COPY_PACKET;
                                     mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof(mode), &mode);
                                   }),
                         "setting the NFLOG copy mode");
  // The kernel batches logged packets: flush at 64 or after 10 ms (its
  // defaults, 100 packets or one second, would hold a lone denial for 1 s).
  NETPOL_RETURN_IF_ERROR(Configure(nl, group, AF_UNSPEC,
                                   [](nlmsghdr* nlh) {
                                     mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(64));
                                     mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(1));  // 1/100 s
                                   }),
                         "setting the NFLOG batching");
  // A reader that falls behind loses log lines, never the sender's progress.
  int on = 1;
  setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on));
  return reader;
}

NflogReader::NflogReader(NflogReader&& other) noexcept : socket_(std::exchange(other.socket_, nullptr)) {}

NflogReader& NflogReader::operator=(NflogReader&& other) noexcept {
  std::swap(socket_, other.socket_);
  return *this;
}

NflogReader::~NflogReader() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<std::vector<LoggedPacket>> NflogReader::Next(std::chrono::milliseconds timeout) {
  std::vector<LoggedPacket> found;
  pollfd p{mnl_socket_get_fd(socket_), POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return found;
  std::vector<char> buffer(static_cast<size_t>(MNL_SOCKET_BUFFER_SIZE) * 4);
  const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) return found;
    return Unavailable(std::string("reading NFLOG: ") + std::strerror(errno));
  }
  auto* nlh = reinterpret_cast<nlmsghdr*>(buffer.data());
  int left = static_cast<int>(n);
  while (mnl_nlmsg_ok(nlh, left)) {
    if ((nlh->nlmsg_type & 0xff) == NFULNL_MSG_PACKET && (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_ULOG) {
      struct Seen {
        std::string prefix;
        std::span<const uint8_t> payload;
      } seen;
      mnl_attr_parse(
          nlh, sizeof(nfgenmsg),
          [](const nlattr* attr, void* data) -> int {
            auto* out = static_cast<Seen*>(data);
            const uint16_t type = mnl_attr_get_type(attr);
            if (type == NFULA_PREFIX) out->prefix = mnl_attr_get_str(attr);
            if (type == NFULA_PAYLOAD) {
              out->payload = {static_cast<const uint8_t*>(mnl_attr_get_payload(attr)),
                              mnl_attr_get_payload_len(attr)};
            }
            return MNL_CB_OK;
          },
          &seen);
      if (std::optional<LoggedPacket> packet = ParsePacketHeaders(seen.payload)) {
        packet->prefix = std::move(seen.prefix);
        found.push_back(std::move(*packet));
      }
    }
    nlh = mnl_nlmsg_next(nlh, &left);
  }
  return found;
}

}  // namespace netpol::dataplane
