// What the nftables backend spends per pod: rendering a local pod's elements
// (the 10k-pod / 1k-policy cluster; the pod with the most elements of 100
// local pods) and diffing two renderings, against a baseline of copying the
// same elements, measured in the same run; and a policy that gives that pod
// one more port, edited in place against rendered whole and diffed.
//
//   build/release/bench/render_benchmark
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "dataplane/nft/element_batch.h"
#include "dataplane/nft/installed.h"
#include "dataplane/nft/ruleset.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"

namespace netpol {
namespace {

struct Fixture {
  policy::Engine engine;
  policy::NodeProgram program;
  std::string biggest;
  size_t elements = 0;

  Fixture() {
    for (const auto& o :
         testing::GenerateRealisticCluster({.namespaces = 100, .pods = 10000, .policies = 1000}, 42))
      engine.Apply(o);
    program = policy::CompileNode(engine, testing::FirstPodsAsLocal(engine, 100));
    for (const auto& [name, pod] : program.pods) {
      size_t n = 0;
      for (const auto& [set, members] : dataplane::nft::RenderPod(name, pod, program, {}))
        n += members.size();
      if (n > elements) {
        elements = n;
        biggest = name;
      }
    }
  }
};

const Fixture& Cluster() {
  static const Fixture* fixture = new Fixture();
  return *fixture;
}

void BM_RenderPod(benchmark::State& state) {
  const Fixture& f = Cluster();
  const policy::LocalPod& pod = f.program.pods.at(f.biggest);
  for (auto _ : state) {
    benchmark::DoNotOptimize(dataplane::nft::RenderPod(f.biggest, pod, f.program, {}));
  }
  state.counters["elements"] = static_cast<double>(f.elements);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_RenderPod)->Unit(benchmark::kMicrosecond);

void BM_DiffPodElements(benchmark::State& state) {
  const Fixture& f = Cluster();
  const auto a = dataplane::nft::RenderPod(f.biggest, f.program.pods.at(f.biggest), f.program, {});
  const auto b =
      dataplane::nft::RenderPod(f.program.pods.begin()->first, f.program.pods.begin()->second, f.program, {});
  for (auto _ : state) benchmark::DoNotOptimize(dataplane::nft::DiffElements(a, b));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_DiffPodElements)->Unit(benchmark::kMicrosecond);

// Baseline: copying the rendered elements (every string allocated once).
void BM_CopyPodElements(benchmark::State& state) {
  const Fixture& f = Cluster();
  const auto a = dataplane::nft::RenderPod(f.biggest, f.program.pods.at(f.biggest), f.program, {});
  for (auto _ : state) {
    auto copy = a;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_CopyPodElements)->Unit(benchmark::kMicrosecond);

// The userspace half of sending a pod's elements as a libnftnl batch: every
// element's key encoded from its text, and its comment clamped.
void BM_EncodePodKeys(benchmark::State& state) {
  const Fixture& f = Cluster();
  const auto elements = dataplane::nft::RenderPod(f.biggest, f.program.pods.at(f.biggest), f.program, {});
  std::map<std::string, std::string> types;
  for (const dataplane::nft::NftSet& set : dataplane::nft::SetLayout({})) types[set.name] = set.type;
  size_t n = 0;
  for (auto _ : state) {
    n = 0;
    for (const auto& [set, members] : elements) {
      for (const auto& [element, origin] : members) {
        benchmark::DoNotOptimize(dataplane::nft::EncodeKey(types.at(set), element));
        benchmark::DoNotOptimize(dataplane::nft::CommentText(origin));
        ++n;
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_EncodePodKeys)->Unit(benchmark::kMicrosecond);

// A policy comes that gives the biggest pod one more port from anywhere: the
// edit as the backend makes it in place (only the gained allowance rendered,
// checked against what is installed), against the baseline of rendering the
// pod whole and diffing it with what is installed.
struct GainedPort {
  policy::NodeProgram after;
  dataplane::nft::InstalledPod installed;
  GainedPort() {
    const Fixture& f = Cluster();
    after = f.program;
    policy::LocalPod& pod = after.pods.at(f.biggest);
    pod.ingress.isolated = true;
    pod.ingress.allow.push_back({std::nullopt, {{api::Protocol::kTCP, 9999, 9999}}, "bench/new ingress[0]"});
    std::sort(pod.ingress.allow.begin(), pod.ingress.allow.end());
    policy::LocalPod before_pod = pod;
    std::erase_if(before_pod.ingress.allow,
                  [](const policy::Allowance& a) { return a.origin == "bench/new ingress[0]"; });
    before = f.program;
    before.pods.at(f.biggest) = before_pod;
    installed =
        dataplane::nft::InstalledPod::From(dataplane::nft::RenderPod(f.biggest, before_pod, before, {}));
  }
  policy::NodeProgram before;
};

void BM_AllowanceGainedWhole(benchmark::State& state) {
  const Fixture& f = Cluster();
  static const GainedPort* g = new GainedPort();
  for (auto _ : state) {
    const auto now = dataplane::nft::RenderPod(f.biggest, g->after.pods.at(f.biggest), g->after, {});
    benchmark::DoNotOptimize(g->installed.DiffTo(now));
  }
}
BENCHMARK(BM_AllowanceGainedWhole)->Unit(benchmark::kMicrosecond);

void BM_AllowanceGainedInPlace(benchmark::State& state) {
  const Fixture& f = Cluster();
  static const GainedPort* g = new GainedPort();
  for (auto _ : state) {
    benchmark::DoNotOptimize(dataplane::nft::RenderPodAllowanceChange(
        f.biggest, g->before.pods.at(f.biggest), g->before, g->after.pods.at(f.biggest), g->after, {},
        [&](const std::string& set, const std::string& element) { return g->installed.Find(set, element); }));
  }
}
BENCHMARK(BM_AllowanceGainedInPlace)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace netpol

BENCHMARK_MAIN();
