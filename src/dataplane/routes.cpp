#include "dataplane/routes.h"

#include <fstream>
#include <sstream>

#include "base/netns.h"

namespace netpol::dataplane {
namespace {

uint64_t Hex(const std::string& text) {
  return std::stoull(text, nullptr, 16);
}

}  // namespace

Result<std::map<IpAddress, std::string>> HostRoutes(const std::string& netns) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(netns), "reading routes");
  std::map<IpAddress, std::string> routes;
  {
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, host byte order of the kernel)
    std::ifstream in("/proc/thread-self/net/route");
    if (!in) return FailedPrecondition("cannot read /proc/thread-self/net/route");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string iface, dest, gateway, flags, refcnt, use, metric, mask;
      if (!(fields >> iface >> dest >> gateway >> flags >> refcnt >> use >> metric >> mask)) continue;
      if (Hex(mask) != 0xffffffffULL || Hex(gateway) != 0 || iface == "lo") continue;
      const auto le = static_cast<uint32_t>(Hex(dest));
      // /proc prints the address as a little-endian word.
      const uint32_t host = ((le & 0xff) << 24) | ((le & 0xff00) << 8) | ((le >> 8) & 0xff00) | (le >> 24);
      routes.emplace(IpAddress::V4(host), iface);
    }
  }
  {
    // dest dest_len src src_len next_hop metric refcnt use flags iface
    std::ifstream in("/proc/thread-self/net/ipv6_route");
    std::string dest, dest_len, src, src_len, next_hop, metric, refcnt, use, flags, iface;
    while (in >> dest >> dest_len >> src >> src_len >> next_hop >> metric >> refcnt >> use >> flags >>
           iface) {
      if (Hex(dest_len) != 128 || next_hop != std::string(32, '0') || iface == "lo") continue;
      const uint64_t flag_bits = Hex(flags);
      // Skip local and multicast entries (RTF_LOCAL 0x80000000, RTF_CACHE 0x01000000).
      if ((flag_bits & 0x80000000ULL) != 0 || (flag_bits & 0x01000000ULL) != 0) continue;
      routes.emplace(IpAddress::V6(Hex(dest.substr(0, 16)), Hex(dest.substr(16))), iface);
    }
  }
  return routes;
}

}  // namespace netpol::dataplane
