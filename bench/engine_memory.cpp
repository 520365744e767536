// Peak memory of the engine: builds the 10k-pod / 1k-policy cluster, answers
// verdicts and computes the full matrix, and reports the peak resident set
// (VmHWM) against the process baseline measured before (same run).
//
//   build/release/bench/engine_memory [pods] [policies]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "policy/engine.h"
#include "policy/matrix.h"
#include "testutil/generator.h"

namespace {

long StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::string(field).size(), nullptr, 10);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int pods = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int policies = argc > 2 ? std::atoi(argv[2]) : 1000;
  const auto objects = netpol::testing::GenerateRealisticCluster(
      {.namespaces = std::max(1, pods / 100), .pods = pods, .policies = policies}, 42);
  const long baseline = StatusKb("VmRSS:");
  netpol::policy::Engine engine;
  for (const auto& o : objects) engine.Apply(o);
  const long after_build = StatusKb("VmRSS:");
  const auto ports = netpol::policy::DeclaredPorts(engine);
  {
    const auto matrix = netpol::policy::ComputeMatrix(engine, ports);
    std::printf("matrix: %zu pods x %zu ports, %zu pairs allowed on %s\n", matrix.pods().size(), ports.size(),
                matrix.AllowedPairs(0), ports.empty() ? "-" : ports[0].ToString().c_str());
  }
  const long peak = StatusKb("VmHWM:");
  std::printf("pods=%d policies=%d classes=%zu\n", pods, policies, engine.stats().classes);
  std::printf("rss_baseline_kb=%ld (objects loaded, no engine)\n", baseline);
  std::printf("engine_kb=%ld (after build, minus baseline)\n", after_build - baseline);
  std::printf("peak_kb=%ld (VmHWM, whole process incl. matrix)\n", peak);
  std::printf("peak_over_baseline_kb=%ld\n", peak - baseline);
  return 0;
}
