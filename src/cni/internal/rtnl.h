// Route netlink (rtnetlink) on our own netlink client (netlink.h): the few link, address and route
// operations the CNI plugin needs, in a chosen network namespace, without
// running `ip` (each exec costs milliseconds; an ADD makes a dozen changes).
//
//   Result<Rtnl> node = Rtnl::Open("");                  // the calling thread's namespace
//   Result<Rtnl> pod = Rtnl::Open("/proc/1234/ns/net");  // a socket bound to the pod's
//   NETPOL_RETURN_IF_ERROR(pod->SetUp(*pod->LinkIndex("eth0")), "pod link");
//
// A socket belongs to the namespace it was opened in, so each Rtnl works on its
// namespace whatever the thread does afterwards.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "cni/internal/netlink.h"

namespace netpol::cni::internal {

using Mac = std::array<uint8_t, 6>;

struct LinkInfo {
  int index = 0;
  bool up = false;
  Mac mac{};
};

struct RouteSpec {
  IpPrefix destination;
  std::optional<IpAddress> gateway;
  int oif = 0;
  bool link_scope = false;  // scope link: the destination is on the link itself
};

class Rtnl {
 public:
  [[nodiscard]] static Result<Rtnl> Open(const std::string& netns);
  Rtnl(Rtnl&&) noexcept = default;
  Rtnl& operator=(Rtnl&&) noexcept = default;

  // A veth pair: `name` here (with `mac`), `peer` created directly inside the
  // namespace `peer_netns_fd` (so no other name ever exists there).
  Status CreateVeth(const std::string& name, const Mac& mac, const std::string& peer, int peer_netns_fd,
                    std::optional<int> mtu);
  // kNotFound when there is no such link.
  Result<LinkInfo> Link(const std::string& name);
  Status SetUp(int index);
  // Deleting one end of a veth pair deletes both. kNotFound when absent.
  Status DeleteLink(const std::string& name);
  // A host address (/32 or /128), without duplicate address detection.
  Status AddAddress(int index, const IpAddress& address, int prefix_length);
  Result<std::vector<IpAddress>> Addresses(int index);
  Status AddRoute(const RouteSpec& route);
  // Names of every link (for garbage collection of our host interfaces).
  Result<std::vector<std::string>> LinkNames();

 private:
  explicit Rtnl(netlink::Socket socket) : socket_(std::move(socket)) {}

  netlink::Socket socket_;
};

}  // namespace netpol::cni::internal
