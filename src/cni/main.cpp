// netpol-cni: reads the CNI environment and stdin, runs the plugin, prints its
// answer. Everything else is in cni/plugin.h.
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

#include "cni/plugin.h"

namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}
}  // namespace

int main() {
  netpol::cni::Invocation call{Env("CNI_COMMAND"),
                               Env("CNI_CONTAINERID"),
                               Env("CNI_NETNS"),
                               Env("CNI_IFNAME"),
                               Env("CNI_ARGS"),
                               Env("CNI_PATH"),
                               {}};
  call.config.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  const netpol::cni::Outcome out = netpol::cni::RunPlugin(call);
  std::cout << out.stdout_text << std::flush;
  return out.exit_code;
}
