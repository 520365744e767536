// What the nftables backend spends on the kernel's real table for a new pod
// on a node with 100 pods (the 10k-pod / 1k-policy cluster): the pod comes
// (its elements planned, encoded and committed) and goes, for a pod like one
// of about Arg elements (its own and its NetworkPolicy groups', which the new
// pod shares: schema 7 writes its own elements and dispatch only). Baseline
// in the same run: the new pod's hash-set element edits sent as one batch
// with nothing planned (encoding and the kernel's transaction alone).
// Needs root: each benchmark works in a network namespace of its own.
//
//   sudo build/release/bench/backend_benchmark
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "dataplane/nft/element_batch.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/nft/ruleset.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"

namespace netpol {
namespace {

using dataplane::nft::NftBackend;

struct Node {
  std::string netns;
  policy::NodeProgram program;  // 100 local pods
  policy::NodeProgram with;     // and one more, like the pod of about `target` elements
  // The same pod with one more allowance: its ingress group does not exist
  // yet, so it comes with a group chain, its six sets and their elements.
  policy::NodeProgram fresh;
  size_t elements = 0;  // the new pod's
  dataplane::nft::ElementEdits add_edits, delete_edits;
  std::vector<dataplane::nft::ElementEdit> adds, deletes;  // views into those

  explicit Node(size_t target) {
    netns = "np-bb-" + std::to_string(::getpid());
    if (std::system(("ip netns add " + netns).c_str()) != 0) std::abort();
    policy::Engine engine;
    for (const auto& o :
         testing::GenerateRealisticCluster({.namespaces = 100, .pods = 10000, .policies = 1000}, 42))
      engine.Apply(o);
    program = policy::CompileNode(engine, testing::FirstPodsAsLocal(engine, 100));
    std::string like;
    size_t best = SIZE_MAX;
    const dataplane::nft::GroupIds ids = dataplane::nft::AssignGroups(program);
    for (const auto& [name, pod] : program.pods) {
      // Its own elements and its groups' (what it had alone before groups).
      size_t n = 0;
      for (const auto& [set, members] : dataplane::nft::RenderPod(name, pod, program, {}, &ids))
        n += members.size();
      for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
        for (const bool ingress : {true, false}) {
          const auto key = dataplane::nft::GroupOf(pod, ingress, family);
          if (!key) continue;
          for (const auto& [set, members] :
               dataplane::nft::RenderGroupElements(*key, ids.ids.at(*key), program))
            n += members.size();
        }
      }
      const size_t distance = n > target ? n - target : target - n;
      if (distance < best) {
        best = distance;
        like = name;
        elements = n;
      }
    }
    with = program;
    policy::LocalPod pod = program.pods.at(like);
    pod.ips = {*IpAddress::Parse("198.18.200.1")};
    pod.interface = "vethnew";
    with.pods["bench/new"] = pod;
    fresh = with;
    policy::DirectionProgram& in = fresh.pods.at("bench/new").ingress;
    in.isolated = true;
    in.allow.push_back({std::nullopt, {{api::Protocol::kTCP, 4242, 4242}}, "bench/fresh ingress[0]"});
    std::sort(in.allow.begin(), in.allow.end());
    const dataplane::nft::GroupIds with_ids = dataplane::nft::AssignGroups(with);
    for (const auto& [set, members] : dataplane::nft::RenderPod("bench/new", pod, with, {}, &with_ids)) {
      if (set.ends_with("_np_v4") || set.ends_with("_np_v6")) continue;  // a map: not batchable
      for (const auto& [element, origin] : members) {
        add_edits.Add(set, element, origin);
        delete_edits.Delete(set, element);
      }
    }
    adds = add_edits.List();
    deletes = delete_edits.List();
  }
  ~Node() { (void)std::system(("ip netns del " + netns).c_str()); }

  // A backend on the node's namespace with its 100 pods in force; null when that fails.
  std::unique_ptr<NftBackend> Programmed() const {
    auto backend = NftBackend::Create({.netns = netns, .nft = {}, .observe_at_create = false});
    if (!backend.ok() || !(*backend)->Apply(program).ok()) return nullptr;
    return std::move(*backend);
  }
};

// `came` (the node's program and one more pod) comes and goes, as often as
// the benchmark asks.
void ComesAndGoes(benchmark::State& state, const Node& node, const policy::NodeProgram& came) {
  std::unique_ptr<NftBackend> backend = node.Programmed();
  if (backend == nullptr) {
    state.SkipWithError("cannot program the node (root?)");
    return;
  }
  double plan = 0, send = 0;
  size_t added = 0;
  for (auto _ : state) {
    const auto come = backend->Apply(came);
    const auto went = backend->Apply(node.program);
    if (!come.ok() || !went.ok()) {
      state.SkipWithError("apply failed");
      break;
    }
    plan += come->plan_ms + went->plan_ms;
    send += come->send_ms + went->send_ms;
    added = come->added;
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["elements"] = static_cast<double>(node.elements);
  state.counters["added"] = static_cast<double>(added);
  state.counters["plan_ms"] = plan / n;
  state.counters["send_ms"] = send / n;
  (void)backend->Remove();
}

void BM_NewPodComesAndGoes(benchmark::State& state) {
  const Node node(static_cast<size_t>(state.range(0)));
  ComesAndGoes(state, node, node.with);
}
BENCHMARK(BM_NewPodComesAndGoes)->Arg(1500)->Unit(benchmark::kMillisecond);

// A new pod whose ingress allowances no group has: its group's chain and
// sets are created with it and deleted when it goes ("added" counts them).
void BM_NewGroupComesAndGoes(benchmark::State& state) {
  const Node node(static_cast<size_t>(state.range(0)));
  ComesAndGoes(state, node, node.fresh);
}
BENCHMARK(BM_NewGroupComesAndGoes)->Arg(1500)->Unit(benchmark::kMillisecond);

// The same while the backend's change feed is open and read, as netpold reads
// it (the kernel announces every element of a transaction to a listener; the
// backend stops listening around its own commits, so this should cost the
// two generation reads around each commit and nothing per element).
void BM_NewPodComesAndGoesWatched(benchmark::State& state) {
  Node node(static_cast<size_t>(state.range(0)));
  std::unique_ptr<NftBackend> backend = node.Programmed();
  if (backend == nullptr) {
    state.SkipWithError("cannot program the node (root?)");
    return;
  }
  auto feed = backend->WatchChanges();
  if (!feed.ok()) {
    state.SkipWithError("cannot watch changes");
    return;
  }
  std::atomic<bool> stop{false};
  std::atomic<size_t> foreign{0};
  std::thread reader([&] {
    while (!stop.load()) {
      if (auto next = (*feed)->Next(std::chrono::milliseconds(50)); next.ok()) foreign += next->size();
    }
  });
  for (auto _ : state) {
    if (!backend->Apply(node.with).ok() || !backend->Apply(node.program).ok()) {
      state.SkipWithError("apply failed");
      break;
    }
  }
  stop = true;
  reader.join();
  state.counters["elements"] = static_cast<double>(node.elements);
  state.counters["foreign"] = static_cast<double>(foreign.load());  // 0: our own commits are not reported
  (void)backend->Remove();
}
BENCHMARK(BM_NewPodComesAndGoesWatched)->Arg(1500)->Unit(benchmark::kMillisecond);

void BM_SameEditsSentAlone(benchmark::State& state) {
  Node node(static_cast<size_t>(state.range(0)));
  std::unique_ptr<NftBackend> backend = node.Programmed();
  if (backend == nullptr) {
    state.SkipWithError("cannot program the node (root?)");
    return;
  }
  std::map<std::string, dataplane::nft::NftSet> layout;
  for (dataplane::nft::NftSet& set : dataplane::nft::SetLayout({})) layout[set.name] = std::move(set);
  auto batcher = dataplane::nft::ElementBatcher::Open(node.netns);
  for (auto _ : state) {
    if (!batcher->Send(node.adds, layout).ok() || !batcher->Send(node.deletes, layout).ok()) {
      state.SkipWithError("send failed");
      break;
    }
  }
  state.counters["elements"] = static_cast<double>(node.elements);
  (void)backend->Remove();
}
BENCHMARK(BM_SameEditsSentAlone)->Arg(1500)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace netpol

BENCHMARK_MAIN();
