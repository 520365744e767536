#include "policy/flow_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace netpol::policy {

Result<Endpoint> ParseEndpoint(const Engine& engine, std::string_view text,
                               std::string_view default_namespace) {
  if (text.starts_with("node:")) {
    if (text.size() == 5) return InvalidArgument("node: needs a node name (node:NAME)");
    return Endpoint::OfNode(std::string(text.substr(5)));
  }
  if (Result<IpAddress> ip = IpAddress::Parse(text)) {
    if (const auto pod = engine.FindPodByIp(*ip)) return Endpoint::OfPod(*pod, *ip);
    return Endpoint::OfIp(*ip);
  }
  std::string_view ns = default_namespace;
  std::string_view name = text;
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    ns = text.substr(0, slash);
    name = text.substr(slash + 1);
  }
  if (const auto pod = engine.FindPod(ns, name)) return Endpoint::OfPod(*pod);
  return NotFound("pod " + std::string(ns) + "/" + std::string(name) +
                  " not found (give NAMESPACE/POD, an IP address, or node:NAME; workload pods "
                  "are named <workload>-0, -1, ...)");
}

Result<PortText> ParsePortText(std::string_view text) {
  PortText spec;
  std::string_view port = text;
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    port = text.substr(0, slash);
    std::string proto(text.substr(slash + 1));
    std::transform(proto.begin(), proto.end(), proto.begin(),
                   [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
    const auto parsed = api::ParseProtocol(proto);
    if (!parsed) {
      return InvalidArgument("invalid protocol in \"" + std::string(text) + "\": want TCP, UDP or SCTP");
    }
    spec.protocol = *parsed;
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec == std::errc() && end == port.data() + port.size()) {
    if (value < 1 || value > 65535) {
      return InvalidArgument("invalid port \"" + std::string(text) + "\": must be between 1 and 65535");
    }
    spec.number = static_cast<uint16_t>(value);
    return spec;
  }
  if (port.empty()) {
    return InvalidArgument("invalid port \"" + std::string(text) + "\": want PORT[/PROTOCOL], e.g. 3306/TCP");
  }
  spec.name = std::string(port);
  return spec;
}

Result<uint16_t> ResolvePort(const Engine& engine, const PortText& port, const Endpoint& to) {
  if (port.number) return *port.number;
  if (to.kind == Endpoint::Kind::kPod) {
    for (const auto& p : engine.pod(to.pod).ports) {
      if (p.name == port.name && p.protocol == port.protocol) {
        return static_cast<uint16_t>(p.container_port);
      }
    }
  }
  return NotFound("the destination declares no " + std::string(api::ProtocolName(port.protocol)) +
                  " port named " + port.name);
}

Flow MakeFlow(const Engine& engine, Endpoint from, Endpoint to, api::Protocol protocol, uint16_t port) {
  const auto first_ip = [&](const Endpoint& e) -> std::optional<IpAddress> {
    if (e.ip) return e.ip;
    if (e.kind == Endpoint::Kind::kPod && !engine.pod(e.pod).ips.empty()) {
      return engine.pod(e.pod).ips.front();
    }
    return std::nullopt;
  };
  // Pick the destination address of the source's family (dual-stack pods).
  if (const auto src_ip = first_ip(from); src_ip && !to.ip && to.kind == Endpoint::Kind::kPod) {
    for (const IpAddress& ip : engine.pod(to.pod).ips) {
      if (ip.family() == src_ip->family()) {
        to.ip = ip;
        break;
      }
    }
  }
  if (const auto dst_ip = first_ip(to); dst_ip && !from.ip && from.kind == Endpoint::Kind::kPod) {
    for (const IpAddress& ip : engine.pod(from.pod).ips) {
      if (ip.family() == dst_ip->family()) {
        from.ip = ip;
        break;
      }
    }
  }
  return Flow{std::move(from), std::move(to), protocol, port};
}

std::vector<FamilyFlow> FamilyFlows(const Engine& engine, const Endpoint& from, const Endpoint& to,
                                    api::Protocol protocol, uint16_t port) {
  if (from.kind == Endpoint::Kind::kPod && to.kind == Endpoint::Kind::kPod && !from.ip && !to.ip) {
    const Pod& a = engine.pod(from.pod);
    const Pod& b = engine.pod(to.pod);
    const auto at = [](const Pod& pod, IpFamily family) -> std::optional<IpAddress> {
      for (const IpAddress& ip : pod.ips) {
        if (ip.family() == family) return ip;
      }
      return std::nullopt;
    };
    if (!a.ips.empty() || !b.ips.empty()) {
      std::vector<FamilyFlow> out;
      for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
        const std::optional<IpAddress> ia = at(a, family);
        const std::optional<IpAddress> ib = at(b, family);
        if ((ia || a.ips.empty()) && (ib || b.ips.empty())) {
          out.push_back(
              {family, Flow{Endpoint::OfPod(from.pod, ia), Endpoint::OfPod(to.pod, ib), protocol, port}});
        }
      }
      if (out.size() == 2) return out;
    }
  }
  return {FamilyFlow{std::nullopt, MakeFlow(engine, from, to, protocol, port)}};
}

std::string_view FamilyName(IpFamily family) {
  return family == IpFamily::kV4 ? "IPv4" : "IPv6";
}

}  // namespace netpol::policy
