#include "cni/internal/rtnl.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>

#include "base/netns.h"

namespace netpol::cni::internal {
namespace {

using netlink::Attribute;
using netlink::Attributes;
using netlink::FixedHeader;
using netlink::Message;
using netlink::Reply;

ifinfomsg LinkHeader(int index = 0) {
  ifinfomsg ifm{};
  ifm.ifi_family = AF_UNSPEC;
  ifm.ifi_index = index;
  return ifm;
}

void PutAddress(Message& request, uint16_t type, const IpAddress& ip) {
  if (ip.is_v4()) {
    const uint32_t be = htonl(ip.v4());
    request.Put(type, &be, sizeof(be));
    return;
  }
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(ip.high() >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(ip.low() >> (56 - 8 * i));
  }
  request.Put(type, bytes, sizeof(bytes));
}

std::optional<IpAddress> ReadAddress(const Attribute& attr, int family) {
  const auto byte = [&](size_t i) { return std::to_integer<uint8_t>(attr.payload[i]); };
  if (family == AF_INET && attr.payload.size() == 4) {
    return IpAddress::V4((uint32_t{byte(0)} << 24) | (uint32_t{byte(1)} << 16) | (uint32_t{byte(2)} << 8) |
                         byte(3));
  }
  if (family == AF_INET6 && attr.payload.size() == 16) {
    uint64_t high = 0;
    uint64_t low = 0;
    for (size_t i = 0; i < 8; ++i) {
      high = (high << 8) | byte(i);
      low = (low << 8) | byte(8 + i);
    }
    return IpAddress::V6(high, low);
  }
  return std::nullopt;
}

}  // namespace

Result<Rtnl> Rtnl::Open(const std::string& netns) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "opening route netlink");
  NETPOL_ASSIGN_OR_RETURN(netlink::Socket socket, netlink::Socket::Open(NETLINK_ROUTE),
                          "opening route netlink");
  return Rtnl(std::move(socket));
}

Status Rtnl::CreateVeth(const std::string& name, const Mac& mac, const std::string& peer, int peer_netns_fd,
                        std::optional<int> mtu) {
  Message request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  request.Append(LinkHeader());
  request.PutString(IFLA_IFNAME, name);
  request.Put(IFLA_ADDRESS, mac.data(), mac.size());
  if (mtu) request.PutU32(IFLA_MTU, static_cast<uint32_t>(*mtu));
  const size_t linkinfo = request.BeginNest(IFLA_LINKINFO);
  request.PutString(IFLA_INFO_KIND, "veth");
  const size_t data = request.BeginNest(IFLA_INFO_DATA);
  const size_t peer_info = request.BeginNest(VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg inside the nest.
  request.Append(LinkHeader());
  request.PutString(IFLA_IFNAME, peer);
  request.PutU32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  if (mtu) request.PutU32(IFLA_MTU, static_cast<uint32_t>(*mtu));
  request.EndNest(peer_info);
  request.EndNest(data);
  request.EndNest(linkinfo);
  NETPOL_RETURN_IF_ERROR(socket_.Exchange(request, nullptr), "creating veth " + name + " <-> " + peer);
  return Ok();
}

Result<LinkInfo> Rtnl::Link(const std::string& name) {
  Message request(RTM_GETLINK, 0);
  request.Append(LinkHeader());
  request.PutString(IFLA_IFNAME, name);
  LinkInfo info;
  const std::function<void(const Reply&)> read = [&](const Reply& reply) {
    if (reply.type != RTM_NEWLINK) return;
    const std::optional<ifinfomsg> link = FixedHeader<ifinfomsg>(reply);
    if (!link) return;
    info.index = link->ifi_index;
    info.up = (link->ifi_flags & IFF_UP) != 0;
    for (const Attribute& attr : Attributes(reply, sizeof(ifinfomsg))) {
      if (attr.type == IFLA_ADDRESS && attr.payload.size() == info.mac.size()) {
        std::memcpy(info.mac.data(), attr.payload.data(), info.mac.size());
      }
    }
  };
  // A request for one object is answered by the object alone: ask for the ack too.
  request.AddFlags(NLM_F_ACK);
  NETPOL_RETURN_IF_ERROR(socket_.Exchange(request, &read), "link " + name);
  if (info.index == 0) return NotFound("link " + name + " does not exist");
  return info;
}

Status Rtnl::SetUp(int index) {
  Message request(RTM_NEWLINK, 0);
  ifinfomsg ifm = LinkHeader(index);
  ifm.ifi_flags = IFF_UP;
  ifm.ifi_change = IFF_UP;
  request.Append(ifm);
  return socket_.Exchange(request, nullptr);
}

Status Rtnl::DeleteLink(const std::string& name) {
  Message request(RTM_DELLINK, 0);
  request.Append(LinkHeader());
  request.PutString(IFLA_IFNAME, name);
  return socket_.Exchange(request, nullptr);
}

Status Rtnl::AddAddress(int index, const IpAddress& address, int prefix_length) {
  Message request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  ifaddrmsg ifa{};
  ifa.ifa_family = address.is_v4() ? AF_INET : AF_INET6;
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  ifa.ifa_flags = IFA_F_NODAD;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(index);
  const bool link_local = !address.is_v4() && (address.high() >> 54) == (0xfe80ULL >> 6);
  if (link_local) ifa.ifa_scope = RT_SCOPE_LINK;
  request.Append(ifa);
  PutAddress(request, IFA_LOCAL, address);
  PutAddress(request, IFA_ADDRESS, address);
  request.PutU32(IFA_FLAGS, IFA_F_NODAD);
  return socket_.Exchange(request, nullptr);
}

Result<std::vector<IpAddress>> Rtnl::Addresses(int index) {
  Message request(RTM_GETADDR, NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  request.Append(ifa);
  std::vector<IpAddress> out;
  const std::function<void(const Reply&)> read = [&](const Reply& reply) {
    if (reply.type != RTM_NEWADDR) return;
    const std::optional<ifaddrmsg> address = FixedHeader<ifaddrmsg>(reply);
    if (!address || static_cast<int>(address->ifa_index) != index) return;
    for (const Attribute& attr : Attributes(reply, sizeof(ifaddrmsg))) {
      if (attr.type != IFA_ADDRESS) continue;
      if (const auto ip = ReadAddress(attr, address->ifa_family)) out.push_back(*ip);
    }
  };
  NETPOL_RETURN_IF_ERROR(socket_.Exchange(request, &read), "listing addresses");
  return out;
}

Status Rtnl::AddRoute(const RouteSpec& route) {
  Message request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  const IpAddress& dst = route.destination.address();
  rtmsg rtm{};
  rtm.rtm_family = dst.is_v4() ? AF_INET : AF_INET6;
  rtm.rtm_dst_len = static_cast<uint8_t>(route.destination.length());
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_protocol = RTPROT_BOOT;
  rtm.rtm_scope = route.link_scope ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm.rtm_type = RTN_UNICAST;
  request.Append(rtm);
  if (route.destination.length() > 0) PutAddress(request, RTA_DST, dst);
  if (route.gateway) PutAddress(request, RTA_GATEWAY, *route.gateway);
  request.PutU32(RTA_OIF, static_cast<uint32_t>(route.oif));
  return socket_.Exchange(request, nullptr);
}

Result<std::vector<std::string>> Rtnl::LinkNames() {
  Message request(RTM_GETLINK, NLM_F_DUMP);
  request.Append(LinkHeader());
  std::vector<std::string> names;
  const std::function<void(const Reply&)> read = [&](const Reply& reply) {
    if (reply.type != RTM_NEWLINK) return;
    for (const Attribute& attr : Attributes(reply, sizeof(ifinfomsg))) {
      if (attr.type == IFLA_IFNAME) names.emplace_back(attr.AsString());
    }
  };
  NETPOL_RETURN_IF_ERROR(socket_.Exchange(request, &read), "listing links");
  return names;
}

}  // namespace netpol::cni::internal
