// What the CNI plugin's address allocator costs an ADD on a node with 100
// pods: a new owner's allocation, which checks the owner's index and the
// address after the last handed out, against a baseline measured in the same
// run: the same allocation when that address is taken, which reads every
// allocation (what every ADD did before the index). Also: an ADD taking over
// the addresses the agent reserved for its pod.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cni/ipam.h"

namespace {

namespace fs = std::filesystem;
using netpol::IpPrefix;
using netpol::cni::Ipam;

// A state directory with 100 allocations (.1 to .100 of 198.18.1.0/24).
std::string NodeWith100Pods() {
  char dir[] = "/tmp/netpol-ipam-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) std::abort();
  Ipam ipam = *Ipam::Open(dir, {*IpPrefix::Parse("198.18.1.0/24")});
  for (int i = 0; i < 100; ++i) (void)ipam.Allocate({"pod-" + std::to_string(i), "eth0"});
  return dir;
}

void Allocate(benchmark::State& state, bool hint_on_taken) {
  const std::string dir = NodeWith100Pods();
  Ipam ipam = *Ipam::Open(dir, {*IpPrefix::Parse("198.18.1.0/24")});
  int n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // The hint: the last handed out is .100 (the next is free), or .50 (the
    // next is taken, so the allocator reads every allocation).
    std::ofstream(dir + "/last_reserved.0") << (hint_on_taken ? "198.18.1.50\n" : "198.18.1.100\n");
    state.ResumeTiming();
    const auto ips = ipam.Allocate({"new-" + std::to_string(n++), "eth0"});
    state.PauseTiming();
    if (!ips.ok()) state.SkipWithError("allocation failed");
    (void)ipam.Release({"new-" + std::to_string(n - 1), "eth0"});
    state.ResumeTiming();
  }
  fs::remove_all(dir);
}

void BM_AllocateNewOwner(benchmark::State& state) {
  Allocate(state, false);
}
BENCHMARK(BM_AllocateNewOwner)->Unit(benchmark::kMicrosecond);

void BM_AllocateReadingEveryAllocation(benchmark::State& state) {
  Allocate(state, true);
}
BENCHMARK(BM_AllocateReadingEveryAllocation)->Unit(benchmark::kMicrosecond);

// An ADD taking over the addresses the agent reserved for its pod (the
// allocation files change owner), on the same node.
void BM_AllocateTakingOverAReservation(benchmark::State& state) {
  const std::string dir = NodeWith100Pods();
  Ipam ipam = *Ipam::Open(dir, {*IpPrefix::Parse("198.18.1.0/24")});
  const netpol::cni::Owner reservation = netpol::cni::ReservationOwner("shop", "db-0");
  int n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (!ipam.Allocate(reservation).ok()) state.SkipWithError("reservation failed");
    state.ResumeTiming();
    bool took_over = false;
    const auto ips = ipam.Allocate({"new-" + std::to_string(n++), "eth0"}, reservation, &took_over);
    state.PauseTiming();
    if (!ips.ok() || !took_over) state.SkipWithError("take-over failed");
    (void)ipam.Release({"new-" + std::to_string(n - 1), "eth0"});
    state.ResumeTiming();
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_AllocateTakingOverAReservation)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
