#include "cni/internal/rtnl.h"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "base/netns.h"

namespace netpol::cni::internal {
namespace {

// Large enough for a dump of a namespace's links in one read.
constexpr size_t kBuffer = 32768;
constexpr size_t kRequest = 8192;

// Calls `f` for every attribute of `message` after its `header` bytes.
void ForEachAttribute(const nlmsghdr* message, size_t header, const std::function<void(const nlattr*)>& f) {
  const mnl_attr_cb_t callback = [](const nlattr* attr, void* data) -> int {
    (*static_cast<const std::function<void(const nlattr*)>*>(data))(attr);
    return MNL_CB_OK;
  };
  mnl_attr_parse(message, static_cast<unsigned>(header), callback,
                 const_cast<std::function<void(const nlattr*)>*>(&f));
}

Error NetlinkError(const std::string& what, int err) {
  const std::string message = what + ": " + std::strerror(err);
  if (err == ENOENT || err == ENODEV || err == ESRCH) return NotFound(message);
  if (err == EEXIST) return {ErrorCode::kAlreadyExists, message};
  if (err == EPERM || err == EACCES) return PermissionDenied(message + " (needs CAP_NET_ADMIN)");
  return FailedPrecondition(message);
}

nlmsghdr* Header(char* buffer, uint16_t type, uint16_t flags) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  return nlh;
}

void PutAddress(nlmsghdr* nlh, uint16_t type, const IpAddress& ip) {
  if (ip.is_v4()) {
    const uint32_t be = htonl(ip.v4());
    mnl_attr_put(nlh, type, sizeof(be), &be);
    return;
  }
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(ip.high() >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(ip.low() >> (56 - 8 * i));
  }
  mnl_attr_put(nlh, type, sizeof(bytes), bytes);
}

std::optional<IpAddress> ReadAddress(const nlattr* attr, int family) {
  const auto* bytes = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
  if (family == AF_INET && mnl_attr_get_payload_len(attr) == 4) {
    return IpAddress::V4((uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
                         bytes[3]);
  }
  if (family == AF_INET6 && mnl_attr_get_payload_len(attr) == 16) {
    uint64_t high = 0;
    uint64_t low = 0;
    for (int i = 0; i < 8; ++i) {
      high = (high << 8) | bytes[i];
      low = (low << 8) | bytes[8 + i];
    }
    return IpAddress::V6(high, low);
  }
  return std::nullopt;
}

}  // namespace

Result<Rtnl> Rtnl::Open(const std::string& netns) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "opening route netlink");
  mnl_socket* socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (socket == nullptr) return NetlinkError("cannot open a route netlink socket", errno);
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(socket);
    return NetlinkError("cannot bind a route netlink socket", err);
  }
  return Rtnl(socket);
}

Rtnl::Rtnl(Rtnl&& other) noexcept : socket_(other.socket_), sequence_(other.sequence_) {
  other.socket_ = nullptr;
}

Rtnl& Rtnl::operator=(Rtnl&& other) noexcept {
  std::swap(socket_, other.socket_);
  std::swap(sequence_, other.sequence_);
  return *this;
}

Rtnl::~Rtnl() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Status Rtnl::Talk(void* request, const std::function<void(const void*)>* on_message) {
  auto* nlh = static_cast<nlmsghdr*>(request);
  nlh->nlmsg_seq = ++sequence_;
  if (on_message == nullptr) nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return NetlinkError("netlink send", errno);
  const unsigned port = mnl_socket_get_portid(socket_);
  std::vector<char> buffer(kBuffer);
  struct Context {
    const std::function<void(const void*)>* on_message;
  } context{on_message};
  const mnl_cb_t callback = [](const nlmsghdr* message, void* data) -> int {
    const auto* ctx = static_cast<Context*>(data);
    if (ctx->on_message != nullptr) (*ctx->on_message)(message);
    return MNL_CB_OK;
  };
  while (true) {
    const ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return NetlinkError("netlink receive", errno);
    const int rc =
        mnl_cb_run(buffer.data(), static_cast<size_t>(n), nlh->nlmsg_seq, port, callback, &context);
    if (rc == MNL_CB_ERROR) return NetlinkError("netlink request", errno);
    if (rc == MNL_CB_STOP) return Ok();  // the acknowledgement, or the end of a dump
  }
}

Status Rtnl::CreateVeth(const std::string& name, const Mac& mac, const std::string& peer, int peer_netns_fd,
                        std::optional<int> mtu) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put(nlh, IFLA_ADDRESS, mac.size(), mac.data());
  if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(*mtu));
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer_info = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside the nest.
  auto* peer_ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  std::memset(peer_ifm, 0, sizeof(ifinfomsg));
  peer_ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(*mtu));
  mnl_attr_nest_end(nlh, peer_info);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  NETPOL_RETURN_IF_ERROR(Talk(nlh, nullptr), "creating veth " + name + " <-> " + peer);
  return Ok();
}

Result<LinkInfo> Rtnl::Link(const std::string& name) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_GETLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  LinkInfo info;
  const std::function<void(const void*)> read = [&](const void* m) {
    const auto* message = static_cast<const nlmsghdr*>(m);
    if (message->nlmsg_type != RTM_NEWLINK) return;
    const auto* reply = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(message));
    info.index = reply->ifi_index;
    info.up = (reply->ifi_flags & IFF_UP) != 0;
    ForEachAttribute(message, sizeof(ifinfomsg), [&](const nlattr* attr) {
      if (mnl_attr_get_type(attr) == IFLA_ADDRESS && mnl_attr_get_payload_len(attr) == 6) {
        std::memcpy(info.mac.data(), mnl_attr_get_payload(attr), 6);
      }
    });
  };
  // A request for one object is answered by the object itself and no ack.
  nlh->nlmsg_flags |= NLM_F_ACK;
  NETPOL_RETURN_IF_ERROR(Talk(nlh, &read), "link " + name);
  if (info.index == 0) return NotFound("link " + name + " does not exist");
  return info;
}

Status Rtnl::SetUp(int index) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_NEWLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = index;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return Talk(nlh, nullptr);
}

Status Rtnl::DeleteLink(const std::string& name) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_DELLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  return Talk(nlh, nullptr);
}

Status Rtnl::AddAddress(int index, const IpAddress& address, int prefix_length) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = address.is_v4() ? AF_INET : AF_INET6;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  ifa->ifa_flags = IFA_F_NODAD;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(index);
  const bool link_local = !address.is_v4() && (address.high() >> 54) == (0xfe80ULL >> 6);
  if (link_local) ifa->ifa_scope = RT_SCOPE_LINK;
  PutAddress(nlh, IFA_LOCAL, address);
  PutAddress(nlh, IFA_ADDRESS, address);
  mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  return Talk(nlh, nullptr);
}

Result<std::vector<IpAddress>> Rtnl::Addresses(int index) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_GETADDR, NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  std::vector<IpAddress> out;
  const std::function<void(const void*)> read = [&](const void* m) {
    const auto* message = static_cast<const nlmsghdr*>(m);
    if (message->nlmsg_type != RTM_NEWADDR) return;
    const auto* reply = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(message));
    if (static_cast<int>(reply->ifa_index) != index) return;
    ForEachAttribute(message, sizeof(ifaddrmsg), [&](const nlattr* attr) {
      if (mnl_attr_get_type(attr) != IFA_ADDRESS) return;
      if (const auto ip = ReadAddress(attr, reply->ifa_family)) out.push_back(*ip);
    });
  };
  NETPOL_RETURN_IF_ERROR(Talk(nlh, &read), "listing addresses");
  return out;
}

Status Rtnl::AddRoute(const RouteSpec& route) {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  const IpAddress& dst = route.destination.address();
  rtm->rtm_family = dst.is_v4() ? AF_INET : AF_INET6;
  rtm->rtm_dst_len = static_cast<uint8_t>(route.destination.length());
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = route.link_scope ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  if (route.destination.length() > 0) PutAddress(nlh, RTA_DST, dst);
  if (route.gateway) PutAddress(nlh, RTA_GATEWAY, *route.gateway);
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(route.oif));
  return Talk(nlh, nullptr);
}

Result<std::vector<std::string>> Rtnl::LinkNames() {
  std::vector<char> buffer(kRequest);
  nlmsghdr* nlh = Header(buffer.data(), RTM_GETLINK, NLM_F_DUMP);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  std::vector<std::string> names;
  const std::function<void(const void*)> read = [&](const void* m) {
    const auto* message = static_cast<const nlmsghdr*>(m);
    if (message->nlmsg_type != RTM_NEWLINK) return;
    ForEachAttribute(message, sizeof(ifinfomsg), [&](const nlattr* attr) {
      if (mnl_attr_get_type(attr) == IFLA_IFNAME) names.emplace_back(mnl_attr_get_str(attr));
    });
  };
  NETPOL_RETURN_IF_ERROR(Talk(nlh, &read), "listing links");
  return names;
}

}  // namespace netpol::cni::internal
