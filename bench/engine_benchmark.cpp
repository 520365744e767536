// Policy engine benchmarks on synthetic clusters (tests/testutil/generator.h):
// verdicts per second with and without explanation, the full matrix, and one
// object changed. The baseline in the same run is the plain reference evaluator
// (tests/testutil/reference.h) deciding the same flows.
//
//   build/release/bench/engine_benchmark --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <variant>

#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "policy/matrix.h"
#include "testutil/generator.h"
#include "testutil/reference.h"

namespace netpol {
namespace {

using policy::Endpoint;
using policy::Engine;
using policy::Flow;

struct Fixture {
  std::vector<api::Object> objects;
  Engine engine;
  std::vector<Flow> flows;  // random pod pairs and declared ports
  std::unique_ptr<testing::ReferenceEvaluator> reference;
};

const testing::ClusterShape& Shape(int64_t pods) {
  static const testing::ClusterShape small{.namespaces = 20, .pods = 1000, .policies = 100};
  static const testing::ClusterShape large{.namespaces = 100, .pods = 10000, .policies = 1000};
  return pods <= 1000 ? small : large;
}

Fixture& GetFixture(int64_t pods) {
  static std::map<int64_t, std::unique_ptr<Fixture>> cache;
  auto& slot = cache[pods];
  if (slot) return *slot;
  slot = std::make_unique<Fixture>();
  Fixture& f = *slot;
  f.objects = testing::GenerateRealisticCluster(Shape(pods), 42);
  for (const auto& o : f.objects) f.engine.Apply(o);
  const auto ids = f.engine.Pods();
  const auto ports = policy::DeclaredPorts(f.engine);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1 << 16; ++i) {
    const auto& pp = ports[rng() % ports.size()];
    f.flows.push_back({Endpoint::OfPod(ids[rng() % ids.size()]), Endpoint::OfPod(ids[rng() % ids.size()]),
                       pp.protocol, pp.port});
  }
  f.reference = std::make_unique<testing::ReferenceEvaluator>(f.objects);
  return f;
}

// The first bare Pod of the generated cluster (the one the update benchmarks change).
api::Pod FirstPod(const std::vector<api::Object>& objects) {
  for (const auto& o : objects) {
    if (const auto* p = std::get_if<api::Pod>(&o)) return *p;
  }
  return {};
}

void BM_Verdict(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  size_t i = 0;
  size_t allowed = 0;
  for (auto _ : state) {
    allowed += f.engine.Allowed(f.flows[i++ & 0xffff]) ? size_t{1} : size_t{0};
  }
  benchmark::DoNotOptimize(allowed);
  state.SetItemsProcessed(state.iterations());
  state.counters["allowed_share"] = static_cast<double>(allowed) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Verdict)->Arg(1000)->Arg(10000);

void BM_VerdictExplained(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.engine.Evaluate(f.flows[i++ & 0xffff]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerdictExplained)->Arg(1000)->Arg(10000);

// Baseline: the plain evaluator walking every policy for every flow.
void BM_ReferenceVerdict(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  // The reference names pods by position in its own list; map engine pods to it.
  std::map<std::string, const testing::RefPod*> by_name;
  for (const auto& p : f.reference->pods()) by_name[p.namespace_ + "/" + p.name] = &p;
  std::vector<std::pair<const testing::RefPod*, const testing::RefPod*>> pairs;
  for (size_t k = 0; k < 4096; ++k) {
    pairs.emplace_back(by_name[f.engine.pod(f.flows[k].src.pod).FullName()],
                       by_name[f.engine.pod(f.flows[k].dst.pod).FullName()]);
  }
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++ & 4095;
    benchmark::DoNotOptimize(
        f.reference->Allowed(*pairs[k].first, *pairs[k].second, f.flows[k].protocol, f.flows[k].port));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReferenceVerdict)->Arg(1000)->Arg(10000);

void BM_FullMatrix(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  const auto ports = policy::DeclaredPorts(f.engine);
  size_t pairs = 0;
  for (auto _ : state) {
    const policy::Matrix m = policy::ComputeMatrix(f.engine, ports);
    pairs = m.pods().size() * m.pods().size() * ports.size();
    benchmark::DoNotOptimize(m.AllowedPairs(0));
  }
  state.counters["ports"] = static_cast<double>(ports.size());
  state.counters["verdicts"] = static_cast<double>(pairs);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(pairs));
}
BENCHMARK(BM_FullMatrix)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// One pod changes labels (it moves to another class), then changes back.
void BM_UpdatePodLabels(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  api::Pod pod = FirstPod(f.objects);
  api::Pod changed = pod;
  changed.metadata.labels["version"] = "canary";
  bool flip = false;
  for (auto _ : state) {
    f.engine.Apply(flip ? api::Object(pod) : api::Object(changed));
    flip = !flip;
  }
  f.engine.Apply(pod);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpdatePodLabels)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// As above, plus one verdict to and one from the changed pod, so the time
// includes rebuilding what the change invalidated (the class's cached views).
void BM_UpdatePodLabelsAndQuery(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  api::Pod pod = FirstPod(f.objects);
  api::Pod changed = pod;
  changed.metadata.labels["version"] = "canary";
  const auto other = f.flows[0].dst;
  bool flip = false;
  size_t allowed = 0;
  for (auto _ : state) {
    f.engine.Apply(flip ? api::Object(pod) : api::Object(changed));
    flip = !flip;
    const Endpoint self = Endpoint::OfPod(*f.engine.FindPod(pod.metadata.namespace_, pod.metadata.name));
    allowed += f.engine.Allowed({self, other, api::Protocol::kTCP, 80}) ? size_t{1} : size_t{0};
    allowed += f.engine.Allowed({other, self, api::Protocol::kTCP, 80}) ? size_t{1} : size_t{0};
  }
  benchmark::DoNotOptimize(allowed);
  f.engine.Apply(pod);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpdatePodLabelsAndQuery)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// A new pod (new name, existing labels) appears and goes.
void BM_AddRemovePod(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  api::Pod pod;
  for (const auto& o : f.objects) {
    if (const auto* p = std::get_if<api::Pod>(&o)) pod = *p;
  }
  pod.metadata.name = "bench-extra";
  pod.pod_ips = {"198.19.255.254"};
  for (auto _ : state) {
    f.engine.Apply(pod);
    f.engine.Delete("Pod", pod.metadata.namespace_, pod.metadata.name);
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_AddRemovePod)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// One policy is replaced by an edited version, then restored.
void BM_UpdatePolicy(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  api::NetworkPolicy policy;
  for (const auto& o : f.objects) {
    if (const auto* p = std::get_if<api::NetworkPolicy>(&o); p && !p->ingress.empty()) {
      policy = *p;
      break;
    }
  }
  api::NetworkPolicy changed = policy;
  changed.ingress[0].ports.push_back({api::Protocol::kTCP, int32_t{443}, std::nullopt});
  bool flip = false;
  for (auto _ : state) {
    f.engine.Apply(flip ? api::Object(policy) : api::Object(changed));
    flip = !flip;
  }
  f.engine.Apply(policy);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpdatePolicy)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

// The node agent's compile for 100 local pods after a pod of their namespace
// came (and after it went): what each pod ADD costs the agent before its
// dataplane work. Baseline in the same run: compiling the node from scratch.
std::map<std::string, std::string> LocalPods(const Engine& engine, const std::string& ns) {
  std::map<std::string, std::string> local;
  for (const auto id : engine.Pods()) {
    const policy::Pod& pod = engine.pod(id);
    if (pod.namespace_ == ns && local.size() < 100) local[pod.FullName()] = "";
  }
  return local;
}

void BM_CompileAfterPodAdded(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  api::Pod pod = FirstPod(f.objects);
  const std::map<std::string, std::string> local = LocalPods(f.engine, pod.metadata.namespace_);
  pod.metadata.name = "bench-extra";
  pod.pod_ips = {"198.19.255.254"};
  std::map<std::string, std::string> with = local;
  with[pod.metadata.namespace_ + "/" + pod.metadata.name] = "";
  policy::NodeCompiler compiler;
  benchmark::DoNotOptimize(compiler.Compile(f.engine, local));
  for (auto _ : state) {
    f.engine.Apply(pod);
    benchmark::DoNotOptimize(compiler.Compile(f.engine, with));
    f.engine.Delete("Pod", pod.metadata.namespace_, pod.metadata.name);
    benchmark::DoNotOptimize(compiler.Compile(f.engine, local));
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_CompileAfterPodAdded)->Arg(10000)->Unit(benchmark::kMicrosecond);

void BM_CompileNodeFromScratch(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  const std::map<std::string, std::string> local =
      LocalPods(f.engine, FirstPod(f.objects).metadata.namespace_);
  for (auto _ : state) benchmark::DoNotOptimize(policy::CompileNode(f.engine, local));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompileNodeFromScratch)->Arg(10000)->Unit(benchmark::kMicrosecond);

// ClusterNetworkPolicies on top of the 10k-pod / 1k-policy cluster (issue 17
// point 4): compiling a node (100 local pods of one namespace, from scratch:
// tier boxes are not cached between compiles) and verdicts, with 100 and
// 1,000 of them (testing::GenerateRealisticClusterPolicies).
Fixture& GetTieredFixture(int64_t cluster_policies) {
  static std::map<int64_t, std::unique_ptr<Fixture>> cache;
  auto& slot = cache[cluster_policies];
  if (slot) return *slot;
  slot = std::make_unique<Fixture>();
  Fixture& f = *slot;
  f.objects = testing::GenerateRealisticCluster(Shape(10000), 42);
  for (auto& o : testing::GenerateRealisticClusterPolicies(static_cast<int>(cluster_policies), 43))
    f.objects.push_back(std::move(o));
  for (const auto& o : f.objects) f.engine.Apply(o);
  f.flows = GetFixture(10000).flows;  // the same pods, the same ids
  return f;
}

void BM_CompileNodeWithClusterPolicies(benchmark::State& state) {
  Fixture& f = GetTieredFixture(state.range(0));
  const std::map<std::string, std::string> local =
      LocalPods(f.engine, FirstPod(f.objects).metadata.namespace_);
  size_t boxes = 0;
  for (auto _ : state) {
    const policy::NodeProgram program = policy::CompileNode(f.engine, local);
    boxes = 0;
    for (const auto& [name, pod] : program.pods) {
      for (const auto* d : {&pod.ingress, &pod.egress})
        boxes += d->admin.boxes().size() + d->baseline.boxes().size();
    }
  }
  state.counters["local_pods"] = static_cast<double>(local.size());
  state.counters["boxes"] = static_cast<double>(boxes);
}
BENCHMARK(BM_CompileNodeWithClusterPolicies)->Arg(0)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_VerdictWithClusterPolicies(benchmark::State& state) {
  Fixture& f = GetTieredFixture(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.engine.Allowed(f.flows[i++ & (f.flows.size() - 1)]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerdictWithClusterPolicies)->Arg(0)->Arg(100)->Arg(1000);

void BM_BuildFromScratch(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  for (auto _ : state) {
    Engine engine;
    for (const auto& o : f.objects) engine.Apply(o);
    benchmark::DoNotOptimize(engine.stats());
  }
  state.counters["classes"] = static_cast<double>(f.engine.stats().classes);
}
BENCHMARK(BM_BuildFromScratch)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// The node agent's start at 100k pods / 1,000 namespaces / 10k policies: every
// object applied to an empty engine. Arg 0: in the generator's order (pods,
// then policies: the work is in adding policies); arg 1: namespaces and
// policies before pods, as netpold's first sync mostly sees them (the work is
// in interning each new class against the policies already there).
const std::vector<api::Object>& LargeClusterObjects(bool policies_first) {
  static std::map<bool, std::vector<api::Object>> cache;
  auto& objects = cache[policies_first];
  if (!objects.empty()) return objects;
  objects = testing::GenerateRealisticCluster({.namespaces = 1000, .pods = 100000, .policies = 10000}, 42);
  if (policies_first) {
    std::stable_partition(objects.begin(), objects.end(),
                          [](const api::Object& o) { return !std::holds_alternative<api::Pod>(o); });
  }
  return objects;
}

void BM_BuildFromScratch100k(benchmark::State& state) {
  const std::vector<api::Object>& objects = LargeClusterObjects(state.range(0) != 0);
  size_t classes = 0;
  for (auto _ : state) {
    Engine engine;
    for (const auto& o : objects) engine.Apply(o);
    classes = engine.stats().classes;
  }
  state.counters["classes"] = static_cast<double>(classes);
}
BENCHMARK(BM_BuildFromScratch100k)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3);

}  // namespace
}  // namespace netpol

BENCHMARK_MAIN();
