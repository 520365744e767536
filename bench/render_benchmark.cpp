// What the nftables backend spends per pod: rendering a local pod's elements
// (the 10k-pod / 1k-policy cluster; the pod with the most elements, its own
// and its NetworkPolicy groups', of 100 local pods), its own alone (schema 7:
// its allowances are its groups', rendered once for all their pods), and
// diffing two renderings, against a baseline of copying the same elements,
// measured in the same run; and a policy that gives that pod one more port,
// edited in place in its group against the group rendered whole and diffed.
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

// A pod's elements and its groups' (what the pod alone had before groups).
dataplane::nft::PodElements Rendered(const std::string& name, const policy::LocalPod& pod,
                                     const policy::NodeProgram& program,
                                     const dataplane::nft::GroupIds& ids) {
  dataplane::nft::PodElements out = dataplane::nft::RenderPod(name, pod, program, {}, &ids);
  for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
    for (const bool ingress : {true, false}) {
      const auto key = dataplane::nft::GroupOf(pod, ingress, family);
      if (!key) continue;
      for (auto& [set, members] : dataplane::nft::RenderGroupElements(*key, ids.ids.at(*key), program))
        out[set].merge(members);
    }
  }
  return out;
}

size_t Count(const dataplane::nft::PodElements& elements) {
  size_t n = 0;
  for (const auto& [set, members] : elements) n += members.size();
  return n;
}

struct Fixture {
  policy::Engine engine;
  policy::NodeProgram program;
  dataplane::nft::GroupIds ids;
  std::string biggest;
  size_t elements = 0;
  size_t own = 0;  // the biggest pod's own elements

  Fixture() {
    for (const auto& o :
         testing::GenerateRealisticCluster({.namespaces = 100, .pods = 10000, .policies = 1000}, 42))
      engine.Apply(o);
    program = policy::CompileNode(engine, testing::FirstPodsAsLocal(engine, 100));
    ids = dataplane::nft::AssignGroups(program);
    for (const auto& [name, pod] : program.pods) {
      const size_t n = Count(Rendered(name, pod, program, ids));
      if (n > elements) {
        elements = n;
        biggest = name;
      }
    }
    own = Count(dataplane::nft::RenderPod(biggest, program.pods.at(biggest), program, {}, &ids));
  }
};

const Fixture& Cluster() {
  static const Fixture* fixture = new Fixture();
  return *fixture;
}

// The pod and its groups rendered (a new pod on a node where its groups do
// not exist yet).
void BM_RenderPod(benchmark::State& state) {
  const Fixture& f = Cluster();
  const policy::LocalPod& pod = f.program.pods.at(f.biggest);
  for (auto _ : state) benchmark::DoNotOptimize(Rendered(f.biggest, pod, f.program, f.ids));
  state.counters["elements"] = static_cast<double>(f.elements);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_RenderPod)->Unit(benchmark::kMicrosecond);

// The pod's own elements alone (a new pod whose groups exist, a relabel).
void BM_RenderPodOwn(benchmark::State& state) {
  const Fixture& f = Cluster();
  const policy::LocalPod& pod = f.program.pods.at(f.biggest);
  for (auto _ : state) {
    benchmark::DoNotOptimize(dataplane::nft::RenderPod(f.biggest, pod, f.program, {}, &f.ids));
  }
  state.counters["elements"] = static_cast<double>(f.own);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.own));
}
BENCHMARK(BM_RenderPodOwn)->Unit(benchmark::kMicrosecond);

void BM_DiffPodElements(benchmark::State& state) {
  const Fixture& f = Cluster();
  const auto a = Rendered(f.biggest, f.program.pods.at(f.biggest), f.program, f.ids);
  const auto b = Rendered(f.program.pods.begin()->first, f.program.pods.begin()->second, f.program, f.ids);
  for (auto _ : state) benchmark::DoNotOptimize(dataplane::nft::DiffElements(a, b));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_DiffPodElements)->Unit(benchmark::kMicrosecond);

// Baseline: copying the rendered elements (every string allocated once).
void BM_CopyPodElements(benchmark::State& state) {
  const Fixture& f = Cluster();
  const auto a = Rendered(f.biggest, f.program.pods.at(f.biggest), f.program, f.ids);
  for (auto _ : state) {
    auto copy = a;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.elements));
}
BENCHMARK(BM_CopyPodElements)->Unit(benchmark::kMicrosecond);

// A policy comes that gives the biggest pod one more port from anywhere: the
// edit of its biggest group as the backend makes it in place (only the
// gained allowance rendered, checked against what is installed), against the
// baseline of rendering the group whole and diffing it with what is installed.
struct GainedPort {
  dataplane::nft::GroupKey before;
  dataplane::nft::GroupKey after;
  uint32_t id = 0;
  dataplane::nft::InstalledPod installed;
  GainedPort() {
    const Fixture& f = Cluster();
    // The biggest of the pod's groups (the one a policy for it edits most).
    const policy::LocalPod& pod = f.program.pods.at(f.biggest);
    size_t most = 0;
    for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
      for (const bool ingress : {true, false}) {
        const auto key = dataplane::nft::GroupOf(pod, ingress, family);
        if (!key) continue;
        const size_t n = Count(dataplane::nft::RenderGroupElements(*key, f.ids.ids.at(*key), f.program));
        if (n < most) continue;
        most = n;
        before = *key;
        id = f.ids.ids.at(*key);
      }
    }
    after = before;
    after.allow.push_back({std::nullopt, {{api::Protocol::kTCP, 9999, 9999}}, "bench/new ingress[0]"});
    std::sort(after.allow.begin(), after.allow.end());
    installed =
        dataplane::nft::InstalledPod::From(dataplane::nft::RenderGroupElements(before, id, f.program));
  }
};

void BM_AllowanceGainedWhole(benchmark::State& state) {
  const Fixture& f = Cluster();
  static const GainedPort* g = new GainedPort();
  for (auto _ : state) {
    const auto now = dataplane::nft::RenderGroupElements(g->after, g->id, f.program);
    benchmark::DoNotOptimize(g->installed.DiffTo(now));
  }
  state.counters["elements"] = static_cast<double>(g->installed.size());
}
BENCHMARK(BM_AllowanceGainedWhole)->Unit(benchmark::kMicrosecond);

void BM_AllowanceGainedInPlace(benchmark::State& state) {
  const Fixture& f = Cluster();
  static const GainedPort* g = new GainedPort();
  for (auto _ : state) {
    benchmark::DoNotOptimize(dataplane::nft::RenderGroupAllowanceChange(
        g->before, f.program, g->after, f.program, g->id,
        [&](const std::string& set, const dataplane::nft::Element& element) {
          return g->installed.Find(set, element);
        }));
  }
}
BENCHMARK(BM_AllowanceGainedInPlace)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace netpol

BENCHMARK_MAIN();
