// netpol-probe: wiring only (lab/probe.h does the work).
//   netpol-probe serve SECONDS PORT/PROTO...      answer on these ports for SECONDS
//   netpol-probe connect IP PORT/PROTO TIMEOUT_MS  exit 0 reached, 1 not, 2 error
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "lab/probe.h"
#include "policy/flow_text.h"

namespace api = netpol::api;
namespace lab = netpol::lab;
namespace policy = netpol::policy;
using netpol::IpAddress;
using netpol::Status;

// What may escape is std::bad_alloc, and ending the process is the answer to it.
// NOLINTNEXTLINE(bugprone-exception-escape)
int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args[0] == "serve") {
    std::vector<std::pair<api::Protocol, uint16_t>> ports;
    for (size_t i = 2; i < args.size(); ++i) {
      const auto p = policy::ParsePortText(args[i]);
      if (!p || !p->number) {
        std::cerr << "netpol-probe: bad port " << args[i] << "\n";
        return 2;
      }
      ports.emplace_back(p->protocol, *p->number);
    }
    lab::ProbeServer server;
    if (const Status s = server.Listen(ports); !s) {
      std::cerr << "netpol-probe: " << s.error().message() << "\n";
      return 2;
    }
    std::cout << "ready" << std::endl;
    server.Serve(std::chrono::seconds(std::atoi(args[1].c_str())));
    return 0;
  }
  if (args.size() == 4 && args[0] == "connect") {
    const auto ip = IpAddress::Parse(args[1]);
    const auto p = policy::ParsePortText(args[2]);
    if (!ip || !p || !p->number) {
      std::cerr << "netpol-probe: bad address or port\n";
      return 2;
    }
    const auto ok =
        lab::Probe(*ip, p->protocol, *p->number, std::chrono::milliseconds(std::atoi(args[3].c_str())));
    if (!ok) {
      std::cerr << "netpol-probe: " << ok.error().message() << "\n";
      return 2;
    }
    return *ok ? 0 : 1;
  }
  std::cerr << "usage: netpol-probe serve SECONDS PORT/PROTO... | connect IP PORT/PROTO TIMEOUT_MS\n";
  return 2;
}
