// Programs the benchmark cluster into a node namespace, and measures
// programming times (scripts/bench-dataplane.sh drives it).
//
//   dataplane_benchmark program NETNS POLICIES [CNPS]  enforce the 10k-pod cluster with N policies
//                                                     (and CNPS ClusterNetworkPolicies)
//   dataplane_benchmark timing NETNS POLICIES [CNPS]   initial build time, one pod added / removed
//
// With ClusterNetworkPolicies (testing::GenerateRealisticClusterPolicies), the
// benchmark pods' namespace is labelled like a team's (payments, prod), so the
// generated policies of that team select them as they select the other local
// pods (their tier decisions are as big as any), and one more Admin policy
// makes the measured flow take the longest path: a Pass for client ->
// server:5201 (no box: the Admin lookups miss) to the NetworkPolicies, which
// allow it.
//
// The cluster: 10,000 pods and N policies from tests/testutil/generator.h, plus
// the two benchmark pods (client 198.18.200.1, server 198.18.200.2) and two
// policies that allow client -> server:5201, so the measured flow is allowed and
// judged by the policies on both sides. 100 pods are local to the node: the two
// benchmark pods and 98 others.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <variant>

#include "dataplane/nft/nft_backend.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "testutil/generator.h"

namespace netpol {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

api::Pod BenchPod(const std::string& name, const std::string& app, const std::string& ip) {
  api::Pod pod;
  pod.metadata.name = name;
  pod.metadata.namespace_ = "bench";
  pod.metadata.labels = {{"app", app}};
  api::Container c;
  c.name = "main";
  c.ports.push_back({"bench", 5201, api::Protocol::kTCP});
  pod.spec.containers.push_back(c);
  pod.pod_ips = {ip};
  return pod;
}

api::ClusterNetworkPolicy BenchGuard() {
  api::ClusterNetworkPolicy p;
  p.metadata.name = "bench-guard";
  p.tier = api::Tier::kAdmin;
  p.priority = 0;
  p.subject.emplace();
  api::LabelSelector server;
  server.match_labels = {{"app", "bench-server"}};
  api::LabelSelector client;
  client.match_labels = {{"app", "bench-client"}};
  p.subject->pods = api::NamespacedPod{{}, server};
  api::ClusterRule pass;
  pass.name = "client-to-np";
  pass.action = api::RuleAction::kPass;
  api::ClusterPeer from_client;
  from_client.pods = api::NamespacedPod{{}, client};
  pass.peers = std::vector<api::ClusterPeer>{from_client};
  api::ClusterProtocol tcp;
  tcp.tcp.emplace();
  tcp.tcp->destination_port = api::ClusterPort{5201, std::nullopt};
  pass.protocols = std::vector<api::ClusterProtocol>{tcp};
  p.ingress = {pass};
  return p;
}

std::vector<api::Object> Cluster(int policies, int cluster_policies) {
  std::vector<api::Object> objects =
      testing::GenerateRealisticCluster({.namespaces = 100, .pods = 10000, .policies = policies}, 42);
  if (cluster_policies > 0) {
    for (auto& o : testing::GenerateRealisticClusterPolicies(cluster_policies, 43))
      objects.push_back(std::move(o));
    objects.push_back(BenchGuard());
    api::Namespace bench;
    bench.metadata.name = "bench";
    bench.metadata.labels = {{"team", "payments"}, {"env", "prod"}};
    objects.push_back(bench);
  }
  objects.push_back(BenchPod("client", "bench-client", "198.18.200.1"));
  objects.push_back(BenchPod("server", "bench-server", "198.18.200.2"));
  if (policies > 0) {
    api::NetworkPolicy in;
    in.metadata.name = "server-from-client";
    in.metadata.namespace_ = "bench";
    in.pod_selector.match_labels = {{"app", "bench-server"}};
    api::NetworkPolicyRule rule;
    api::LabelSelector client;
    client.match_labels = {{"app", "bench-client"}};
    rule.peers.push_back({client, std::nullopt, std::nullopt});
    rule.ports.push_back({api::Protocol::kTCP, std::string("bench"), std::nullopt});
    in.ingress.push_back(rule);
    api::NetworkPolicy out;
    out.metadata.name = "client-to-server";
    out.metadata.namespace_ = "bench";
    out.pod_selector = client;
    out.policy_types = {api::PolicyType::kEgress};
    api::NetworkPolicyRule to;
    api::LabelSelector server;
    server.match_labels = {{"app", "bench-server"}};
    to.peers.push_back({server, std::nullopt, std::nullopt});
    to.ports.push_back({api::Protocol::kTCP, int32_t{5201}, std::nullopt});
    out.egress.push_back(to);
    objects.push_back(in);
    objects.push_back(out);
  }
  return objects;
}

std::map<std::string, std::string> LocalPods(const policy::Engine& engine) {
  std::map<std::string, std::string> local = {{"bench/client", ""}, {"bench/server", ""}};
  for (const policy::PodId id : engine.Pods()) {
    if (local.size() >= 100) break;
    if (!engine.pod(id).ips.empty()) local.emplace(engine.pod(id).FullName(), "");
  }
  return local;
}

int Program(const std::string& netns, int policies, int cluster_policies) {
  policy::Engine engine;
  for (const auto& o : Cluster(policies, cluster_policies)) engine.Apply(o);
  auto backend = dataplane::nft::NftBackend::Create({netns, {}});
  if (!backend) {
    std::fprintf(stderr, "%s\n", backend.error().message().c_str());
    return 2;
  }
  const auto start = Clock::now();
  const auto program = policy::CompileNode(engine, LocalPods(engine));
  const auto stats = (*backend)->Apply(program);
  if (!stats) {
    std::fprintf(stderr, "%s\n", stats.error().message().c_str());
    return 2;
  }
  size_t elements = 0;
  size_t boxes = 0;
  for (const auto& [name, pod] : program.pods) {
    elements += pod.ingress.allow.size() + pod.egress.allow.size();
    for (const auto* d : {&pod.ingress, &pod.egress})
      boxes += d->admin.boxes().size() + d->baseline.boxes().size();
  }
  std::printf(
      "policies=%d cluster_policies=%d local_pods=%zu allowances=%zu tier_boxes=%zu set_elements=%zu "
      "compile_and_apply_ms=%.1f\n",
      policies, cluster_policies, program.pods.size(), elements, boxes, stats->added,
      Ms(Clock::now() - start));
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One Admin policy that selects the benchmark pods (team payments, env prod)
// moves to priority 0 with another port on its Deny rule, and back: engine update +
// compile + apply, each measured whole (the first Apply of a run is the
// initial build, measured above).
int AdminChange(policy::Engine& engine, const std::map<std::string, std::string>& local,
                dataplane::nft::NftBackend& backend, const std::vector<api::Object>& objects) {
  const api::ClusterNetworkPolicy* chosen = nullptr;
  for (const auto& o : objects) {
    const auto* p = std::get_if<api::ClusterNetworkPolicy>(&o);
    if (p == nullptr || p->tier != api::Tier::kAdmin || !p->subject || !p->subject->namespaces ||
        p->ingress.empty() || !p->ingress[0].protocols)
      continue;
    const api::Labels want = {{"team", "payments"}, {"env", "prod"}};
    if (p->subject->namespaces->match_labels == want) {
      chosen = p;
      break;
    }
  }
  if (chosen == nullptr) return 2;
  std::vector<double> change_ms;
  std::vector<double> compile_ms;
  size_t elements_changed = 0;
  for (int i = 0; i < 10; ++i) {
    api::ClusterNetworkPolicy changed = *chosen;
    if (i % 2 == 0) {
      // First in its tier, so its Deny is not shadowed by earlier rules.
      changed.priority = 0;
      changed.ingress[0].protocols->at(0).tcp->destination_port->number = 4999;
    }
    const auto start = Clock::now();
    engine.Apply(changed);
    const auto compiled = policy::CompileNode(engine, local);
    compile_ms.push_back(Ms(Clock::now() - start));
    const auto stats = backend.Apply(compiled);
    if (!stats) {
      std::fprintf(stderr, "%s\n", stats.error().message().c_str());
      return 2;
    }
    change_ms.push_back(Ms(Clock::now() - start));
    elements_changed = stats->added + stats->removed;
  }
  std::printf(
      "one admin policy changed (%s: priority 0 and a Deny's port, and back): median %.1f ms to programmed "
      "(engine update + compile "
      "%.1f ms; %zu elements changed; 10 changes)\n",
      chosen->metadata.name.c_str(), Median(change_ms), Median(compile_ms), elements_changed);
  return 0;
}

int Timing(const std::string& netns, int policies, int cluster_policies) {
  policy::Engine engine;
  const auto objects = Cluster(policies, cluster_policies);
  for (const auto& o : objects) engine.Apply(o);
  auto backend = dataplane::nft::NftBackend::Create({netns, {}});
  if (!backend) return 2;
  (void)(*backend)->Remove();
  auto local = LocalPods(engine);
  auto t0 = Clock::now();
  auto program = policy::CompileNode(engine, local);
  const double compile_ms = Ms(Clock::now() - t0);
  t0 = Clock::now();
  if (!(*backend)->Apply(program)) return 2;
  const double apply_ms = Ms(Clock::now() - t0);
  std::printf("initial build: compile %.1f ms + apply %.1f ms = %.1f ms (%d policies, 10k pods, %zu local)\n",
              compile_ms, apply_ms, compile_ms + apply_ms, policies, local.size());
  // One pod appears on the node (labels of an existing app, so policies select it)
  // and goes again: engine update + compile + apply, each measured whole.
  api::Pod extra;
  for (const auto& o : objects) {
    if (const auto* p = std::get_if<api::Pod>(&o)) {
      extra = *p;
      break;
    }
  }
  extra.metadata.name = "bench-extra";
  extra.pod_ips = {"198.18.201.1"};
  std::vector<double> add_ms;
  std::vector<double> remove_ms;
  std::vector<double> add_compile_ms;
  std::vector<double> add_nft_ms;
  std::vector<double> add_plan_ms;  // render + diff alone (Apply repeats it)
  size_t elements_changed = 0;
  for (int i = 0; i < 15; ++i) {
    auto start = Clock::now();
    engine.Apply(extra);
    local[extra.metadata.namespace_ + "/bench-extra"] = "";
    const auto compiled = policy::CompileNode(engine, local);
    add_compile_ms.push_back(Ms(Clock::now() - start));
    const double update_ms = Ms(Clock::now() - start);
    // Planning alone (render + diff), measured aside: Apply plans again.
    const auto plan_start = Clock::now();
    const auto planned = (*backend)->Plan(compiled);
    add_plan_ms.push_back(Ms(Clock::now() - plan_start));
    if (!planned) return 2;
    const auto nft_start = Clock::now();
    const auto stats = (*backend)->Apply(compiled);
    if (!stats) return 2;
    add_nft_ms.push_back(Ms(Clock::now() - nft_start));
    elements_changed = stats->added + stats->removed;
    add_ms.push_back(update_ms + add_nft_ms.back());
    start = Clock::now();
    engine.Delete("Pod", extra.metadata.namespace_, "bench-extra");
    local.erase(extra.metadata.namespace_ + "/bench-extra");
    if (!(*backend)->Apply(policy::CompileNode(engine, local))) return 2;
    remove_ms.push_back(Ms(Clock::now() - start));
  }
  std::printf("one local pod added: median %.1f ms; removed: median %.1f ms (15 each)\n", Median(add_ms),
              Median(remove_ms));
  std::printf(
      "  added, split: engine update + compile %.1f ms, render + diff + nft transaction %.1f ms "
      "(of which render + diff %.1f ms; %zu set elements changed)\n",
      Median(add_compile_ms), Median(add_nft_ms), Median(add_plan_ms), elements_changed);
  if (cluster_policies > 0) return AdminChange(engine, local, **backend, objects);
  return 0;
}

}  // namespace
}  // namespace netpol

int main(int argc, char** argv) {
  const int cluster_policies = argc == 5 ? std::atoi(argv[4]) : 0;
  if ((argc == 4 || argc == 5) && std::string(argv[1]) == "program")
    return netpol::Program(argv[2], std::atoi(argv[3]), cluster_policies);
  if ((argc == 4 || argc == 5) && std::string(argv[1]) == "timing")
    return netpol::Timing(argv[2], std::atoi(argv[3]), cluster_policies);
  std::fprintf(stderr, "usage: dataplane_benchmark program|timing NETNS POLICIES\n");
  return 2;
}
