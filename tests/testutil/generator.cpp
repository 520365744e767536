#include "testutil/generator.h"

#include <string>

namespace netpol::testing {
namespace {

using api::LabelSelector;
using api::LabelSelectorRequirement;
using api::SelectorOperator;

api::ObjectMeta Meta(std::string name, std::string ns, api::Labels labels = {}) {
  api::ObjectMeta meta;
  meta.name = std::move(name);
  meta.namespace_ = std::move(ns);
  meta.labels = std::move(labels);
  return meta;
}

std::string V4(uint32_t index) {
  // 198.18.0.0/15 holds 131072 addresses.
  return "198.18." + std::to_string((index >> 8) & 0x1ff) + "." + std::to_string(index & 0xff);
}

// 2001:2::<index>, the IPv6 address of a dual-stack or IPv6-only small pod.
std::string V6(uint32_t index) {
  return "2001:2::" + std::to_string(index);
}

// ---- small clusters ----------------------------------------------------------

const char* const kApps[] = {"a", "b", "c"};
const char* const kTiers[] = {"x", "y"};

api::Labels SmallLabels(Choices& c) {
  api::Labels labels;
  if (!c.Coin(4)) labels["app"] = kApps[c.Next(3)];
  if (c.Coin(2)) labels["tier"] = kTiers[c.Next(2)];
  return labels;
}

LabelSelector SmallSelector(Choices& c) {
  LabelSelector s;
  switch (c.Next(4)) {
    case 0:
      break;  // empty: everything
    case 1:
      s.match_labels["app"] = kApps[c.Next(3)];
      break;
    case 2:
      s.match_labels["tier"] = kTiers[c.Next(2)];
      break;
    default: {
      LabelSelectorRequirement r;
      r.key = c.Coin() ? "app" : "tier";
      const char* const* vocab = r.key == "app" ? kApps : kTiers;
      const uint32_t n = r.key == "app" ? 3 : 2;
      r.op = static_cast<SelectorOperator>(c.Next(4));
      if (r.op == SelectorOperator::kIn || r.op == SelectorOperator::kNotIn) {
        r.values.push_back(vocab[c.Next(n)]);
        if (c.Coin()) r.values.push_back(vocab[c.Next(n)]);
      }
      s.match_expressions.push_back(std::move(r));
    }
  }
  return s;
}

LabelSelector SmallNamespaceSelector(Choices& c) {
  LabelSelector s;
  switch (c.Next(3)) {
    case 0:
      break;
    case 1:
      s.match_labels["team"] = c.Coin() ? "red" : "blue";
      break;
    default:
      s.match_labels["kubernetes.io/metadata.name"] = "ns" + std::to_string(c.Next(3));
      break;
  }
  return s;
}

api::NetworkPolicyPort SmallPort(Choices& c) {
  api::NetworkPolicyPort p;
  p.protocol = static_cast<api::Protocol>(c.Next(3));
  switch (c.Next(5)) {
    case 0:
      break;  // every port of the protocol
    case 1:
      p.port = static_cast<int32_t>(c.Coin() ? 80 : 53);
      break;
    case 2:
      p.port = int32_t{79};
      p.end_port = static_cast<int32_t>(80 + c.Next(8002));
      break;
    case 3:
      p.port = std::string(c.Coin() ? "http" : "dns");
      break;
    default:
      p.port = std::string("sctp");
      break;
  }
  return p;
}

api::NetworkPolicyPeer SmallPeer(Choices& c) {
  api::NetworkPolicyPeer peer;
  switch (c.Next(4)) {
    case 0:
      peer.pod_selector = SmallSelector(c);
      break;
    case 1:
      peer.namespace_selector = SmallNamespaceSelector(c);
      break;
    case 2:
      peer.pod_selector = SmallSelector(c);
      peer.namespace_selector = SmallNamespaceSelector(c);
      break;
    default: {
      api::IpBlock block;
      if (c.Coin(4)) {  // IPv6 (dual-stack pods, docs/SEMANTICS.md §19)
        block.cidr = "2001:2::/" + std::to_string(120 + c.Next(9));
        if (c.Coin()) {
          block.cidr = "2001:2::/120";
          block.except.push_back(V6(c.Next(8)) + "/128");
        }
        peer.ip_block = std::move(block);
        break;
      }
      const uint32_t len = 24 + c.Next(9);  // /24 .. /32 around 198.18.0.0
      block.cidr = V4(c.Next(8) * 2) + "/" + std::to_string(len);
      if (len < 32 && c.Coin()) block.except.push_back(V4(c.Next(8)) + "/32");
      // Keep except strictly inside cidr: recompute the block to contain it.
      if (!block.except.empty()) block.cidr = "198.18.0.0/24";
      peer.ip_block = std::move(block);
    }
  }
  return peer;
}

std::vector<api::NetworkPolicyRule> SmallRules(Choices& c) {
  std::vector<api::NetworkPolicyRule> rules(c.Next(3));
  for (auto& rule : rules) {
    rule.ports.resize(c.Next(3));
    for (auto& p : rule.ports) p = SmallPort(c);
    rule.peers.resize(c.Next(3));
    for (auto& p : rule.peers) p = SmallPeer(c);
  }
  return rules;
}

// ---- realistic clusters ---------------------------------------------------------

struct App {
  std::string ns;
  std::string name;
  std::string tier;
  int replicas;
};

}  // namespace

std::vector<api::Object> GenerateSmallCluster(Choices& c) {
  std::vector<api::Object> objects;
  const uint32_t namespaces = 1 + c.Next(3);
  for (uint32_t i = 0; i < namespaces; ++i) {
    api::Labels labels;
    if (c.Coin()) labels["team"] = c.Coin() ? "red" : "blue";
    objects.push_back(api::Namespace{Meta("ns" + std::to_string(i), "", labels)});
  }
  const uint32_t pods = c.Next(9);
  for (uint32_t i = 0; i < pods; ++i) {
    api::Pod pod;
    pod.metadata = Meta("p" + std::to_string(i), "ns" + std::to_string(c.Next(namespaces)), SmallLabels(c));
    pod.spec.node_name = c.Coin() ? "node-0" : "node-1";
    pod.spec.host_network = c.Coin(8);
    api::Container container;
    container.name = "c";
    if (c.Coin()) container.ports.push_back({"http", c.Coin() ? 80 : 8080, api::Protocol::kTCP});
    if (c.Coin(3))
      container.ports.push_back({"dns", 53, c.Coin() ? api::Protocol::kUDP : api::Protocol::kTCP});
    if (c.Coin(4)) container.ports.push_back({"sctp", 9, api::Protocol::kSCTP});
    pod.spec.containers.push_back(std::move(container));
    if (!c.Coin(6)) {
      pod.pod_ips.push_back(V4(i));
      // Dual-stack (either family first), or IPv6 only.
      if (c.Coin(4)) pod.pod_ips.insert(c.Coin() ? pod.pod_ips.end() : pod.pod_ips.begin(), V6(i));
      if (c.Coin(12)) pod.pod_ips = {V6(i)};
    }
    objects.push_back(std::move(pod));
  }
  const uint32_t policies = c.Next(5);
  for (uint32_t i = 0; i < policies; ++i) {
    api::NetworkPolicy p;
    p.metadata = Meta("np" + std::to_string(i), "ns" + std::to_string(c.Next(namespaces)));
    p.pod_selector = SmallSelector(c);
    switch (c.Next(4)) {
      case 0:
        break;
      case 1:
        p.policy_types = {api::PolicyType::kIngress};
        break;
      case 2:
        p.policy_types = {api::PolicyType::kEgress};
        break;
      default:
        p.policy_types = {api::PolicyType::kIngress, api::PolicyType::kEgress};
        break;
    }
    p.ingress = SmallRules(c);
    p.egress = SmallRules(c);
    objects.push_back(std::move(p));
  }
  return objects;
}

namespace {

api::ClusterProtocol SmallClusterProtocol(Choices& c, bool named_ok) {
  api::ClusterProtocol protocol;
  api::ClusterProtocolMatch match;
  match.destination_port.emplace();
  if (c.Coin()) {
    match.destination_port->number = c.Coin() ? 80 : (c.Coin() ? 53 : 9);
  } else {
    match.destination_port->range = api::PortRange{79, static_cast<int32_t>(80 + c.Next(8002))};
  }
  switch (c.Next(named_ok ? 4 : 3)) {
    case 0:
      protocol.tcp = match;
      break;
    case 1:
      protocol.udp = match;
      break;
    case 2:
      protocol.sctp = match;
      break;
    default:
      protocol.destination_named_port = c.Coin() ? "http" : "dns";
      break;
  }
  return protocol;
}

std::vector<api::ClusterRule> SmallClusterRules(Choices& c, bool egress) {
  std::vector<api::ClusterRule> rules(c.Next(3));
  for (api::ClusterRule& rule : rules) {
    rule.action = static_cast<api::RuleAction>(c.Next(3));
    if (c.Coin()) rule.name = "r" + std::to_string(c.Next(9));
    rule.peers.emplace(1 + c.Next(2));
    bool named_ok = true;
    for (api::ClusterPeer& peer : *rule.peers) {
      switch (c.Next(egress ? 5 : 2)) {
        case 0:
          peer.namespaces = SmallNamespaceSelector(c);
          break;
        case 1:
          peer.pods = api::NamespacedPod{SmallNamespaceSelector(c), SmallSelector(c)};
          break;
        case 2:
          peer.networks = std::vector<std::string>{c.Coin() ? "198.18.0.0/30" : "198.18.0.0/15"};
          if (c.Coin()) peer.networks->push_back("2001:2::/126");
          named_ok = false;
          break;
        case 3: {
          api::LabelSelector nodes;
          if (c.Coin()) nodes.match_labels = {{"role", c.Coin() ? "a" : "b"}};
          peer.nodes = nodes;
          named_ok = false;
          break;
        }
        default:
          peer.domain_names = std::vector<std::string>{"example.com"};
          named_ok = false;
          break;
      }
    }
    if (c.Coin()) {
      rule.protocols.emplace();
      for (uint32_t i = 0, n = 1 + c.Next(2); i < n; ++i) {
        rule.protocols->push_back(SmallClusterProtocol(c, named_ok));
      }
    }
  }
  return rules;
}

}  // namespace

std::vector<api::Object> GenerateTieredCluster(Choices& c) {
  std::vector<api::Object> objects = GenerateSmallCluster(c);
  for (int n = 0; n < 2; ++n) {
    if (c.Coin(3)) continue;  // a node without a Node object
    api::Node node;
    node.metadata = Meta("node-" + std::to_string(n), "", {{"role", c.Coin() ? "a" : "b"}});
    node.addresses = {{"InternalIP", "198.19.0." + std::to_string(n + 1)}, {"Hostname", node.metadata.name}};
    objects.push_back(std::move(node));
  }
  const uint32_t policies = c.Next(5);
  for (uint32_t i = 0; i < policies; ++i) {
    api::ClusterNetworkPolicy p;
    p.metadata = Meta("cnp" + std::to_string(i), "");
    p.tier = c.Coin() ? api::Tier::kAdmin : api::Tier::kBaseline;
    p.priority = static_cast<int32_t>(c.Next(3));  // ties on purpose
    p.subject.emplace();
    if (c.Coin()) {
      p.subject->namespaces = SmallNamespaceSelector(c);
    } else {
      p.subject->pods = api::NamespacedPod{SmallNamespaceSelector(c), SmallSelector(c)};
    }
    p.ingress = SmallClusterRules(c, false);
    p.egress = SmallClusterRules(c, true);
    objects.push_back(std::move(p));
  }
  return objects;
}

std::vector<api::Object> GenerateRealisticClusterPolicies(int count, uint64_t seed) {
  SeededChoices c(seed);
  const char* const kTeams[] = {"payments", "search", "identity", "platform", "data"};
  const char* const kEnvs[] = {"prod", "staging", "dev"};
  const auto selector = [](api::Labels labels) {
    api::LabelSelector s;
    s.match_labels = std::move(labels);
    return s;
  };
  const auto tcp = [](int32_t port) {
    api::ClusterProtocol p;
    p.tcp.emplace();
    p.tcp->destination_port = api::ClusterPort{port, std::nullopt};
    return std::vector<api::ClusterProtocol>{p};
  };
  std::vector<api::Object> objects;
  for (int i = 0; i < count; ++i) {
    api::ClusterNetworkPolicy p;
    p.metadata = Meta("cnp-" + std::to_string(i), "");
    p.tier = i % 3 == 2 ? api::Tier::kBaseline : api::Tier::kAdmin;
    p.priority = static_cast<int32_t>(c.Next(1001));
    const std::string team = kTeams[c.Next(5)];
    const std::string other = kTeams[c.Next(5)];
    p.subject.emplace();
    p.subject->namespaces = selector({{"team", team}, {"env", kEnvs[c.Next(3)]}});
    const auto rule = [](std::string name, api::RuleAction action, api::ClusterPeer peer) {
      api::ClusterRule r;
      r.name = std::move(name);
      r.action = action;
      r.peers = std::vector<api::ClusterPeer>{std::move(peer)};
      return r;
    };
    api::ClusterPeer peer;
    if (p.tier == api::Tier::kBaseline) {
      peer.namespaces = selector({{"team", other}});
      p.ingress.push_back(rule("deny-" + other, api::RuleAction::kDeny, peer));
    } else {
      peer.namespaces = selector({{"team", other}, {"env", "dev"}});
      api::ClusterRule deny = rule("no-dev", api::RuleAction::kDeny, peer);
      deny.protocols = tcp(static_cast<int32_t>(5000 + c.Next(1000)));
      p.ingress.push_back(std::move(deny));
      peer.namespaces = selector({{"team", team}});
      p.ingress.push_back(rule("team", api::RuleAction::kPass, peer));
      peer.namespaces.reset();
      peer.pods = api::NamespacedPod{selector({{"env", "prod"}}), selector({{"tier", "frontend"}})};
      api::ClusterRule accept = rule("frontends", api::RuleAction::kAccept, peer);
      accept.protocols = tcp(443);
      p.ingress.push_back(std::move(accept));
      api::ClusterPeer range;
      range.networks = std::vector<std::string>{"198.19." + std::to_string(c.Next(256)) + ".0/24"};
      p.egress.push_back(rule("no-range", api::RuleAction::kDeny, range));
    }
    objects.push_back(std::move(p));
  }
  return objects;
}

std::vector<api::Object> GenerateRealisticCluster(const ClusterShape& shape, uint64_t seed) {
  SeededChoices c(seed);
  std::vector<api::Object> objects;
  const char* const kTeams[] = {"payments", "search", "identity", "platform", "data"};
  const char* const kEnvs[] = {"prod", "staging", "dev"};
  const char* const kTierNames[] = {"frontend", "backend", "db", "cache", "worker"};
  for (int i = 0; i < shape.namespaces; ++i) {
    api::Labels labels{{"team", kTeams[c.Next(5)]}, {"env", kEnvs[c.Next(3)]}};
    objects.push_back(api::Namespace{Meta("ns-" + std::to_string(i), "", labels)});
  }
  // Apps of 1-8 replicas; pods of one app share labels (and so a class).
  std::vector<App> apps;
  int pods = 0;
  while (pods < shape.pods) {
    App app{"ns-" + std::to_string(c.Next(static_cast<uint32_t>(shape.namespaces))),
            "app-" + std::to_string(apps.size()), kTierNames[c.Next(5)],
            std::min(1 + static_cast<int>(c.Next(8)), shape.pods - pods)};
    pods += app.replicas;
    apps.push_back(std::move(app));
  }
  uint32_t ip = 0;
  for (const App& app : apps) {
    for (int r = 0; r < app.replicas; ++r) {
      api::Pod pod;
      pod.metadata = Meta(app.name + "-" + std::to_string(r), app.ns,
                          {{"app", app.name}, {"tier", app.tier}, {"version", c.Coin() ? "v1" : "v2"}});
      pod.spec.node_name = "node-" + std::to_string(c.Next(50));
      api::Container container;
      container.name = "main";
      if (app.tier == "db") {
        container.ports.push_back({"sql", 5432, api::Protocol::kTCP});
      } else if (app.tier == "cache") {
        container.ports.push_back({"redis", 6379, api::Protocol::kTCP});
      } else {
        container.ports.push_back({"http", c.Coin() ? 8080 : 80, api::Protocol::kTCP});
        container.ports.push_back({"metrics", 9090, api::Protocol::kTCP});
      }
      pod.spec.containers.push_back(std::move(container));
      pod.pod_ips.push_back(V4(ip++));
      objects.push_back(std::move(pod));
    }
  }
  for (int i = 0; i < shape.policies; ++i) {
    api::NetworkPolicy p;
    const App& target = apps[c.Next(static_cast<uint32_t>(apps.size()))];
    p.metadata = Meta("policy-" + std::to_string(i), target.ns);
    switch (c.Next(10)) {
      case 0: {  // default deny for the namespace
        p.policy_types = {api::PolicyType::kIngress, api::PolicyType::kEgress};
        break;
      }
      case 1: {  // allow from the same namespace, egress to DNS
        p.pod_selector.match_labels["tier"] = target.tier;
        api::NetworkPolicyRule in;
        in.peers.push_back(api::NetworkPolicyPeer{LabelSelector{}, std::nullopt, std::nullopt});
        p.ingress.push_back(std::move(in));
        api::NetworkPolicyRule dns;
        dns.ports.push_back({api::Protocol::kUDP, int32_t{53}, std::nullopt});
        dns.ports.push_back({api::Protocol::kTCP, int32_t{53}, std::nullopt});
        p.egress.push_back(std::move(dns));
        break;
      }
      default: {  // app-to-app: a tier or app from namespaces of a team, on a port
        p.pod_selector.match_labels["app"] = target.name;
        api::NetworkPolicyRule rule;
        api::NetworkPolicyPeer peer;
        const App& source = apps[c.Next(static_cast<uint32_t>(apps.size()))];
        LabelSelector pods_sel;
        if (c.Coin()) {
          pods_sel.match_labels["app"] = source.name;
        } else {
          pods_sel.match_labels["tier"] = source.tier;
        }
        peer.pod_selector = pods_sel;
        if (source.ns != target.ns || c.Coin(3)) {
          LabelSelector ns_sel;
          if (c.Coin()) {
            ns_sel.match_labels["kubernetes.io/metadata.name"] = source.ns;
          } else {
            ns_sel.match_expressions.push_back(
                {"team", SelectorOperator::kIn, {kTeams[c.Next(5)], kTeams[c.Next(5)]}});
          }
          peer.namespace_selector = ns_sel;
        }
        rule.peers.push_back(std::move(peer));
        if (c.Coin(4)) {
          api::IpBlock block{"198.18." + std::to_string(c.Next(256)) + ".0/24", {}};
          if (c.Coin()) block.except.push_back("198.18.0.0/28");
          if (!block.except.empty()) block.cidr = "198.18.0.0/16";
          rule.peers.push_back(api::NetworkPolicyPeer{std::nullopt, std::nullopt, block});
        }
        switch (c.Next(4)) {
          case 0:
            rule.ports.push_back({api::Protocol::kTCP, std::string("http"), std::nullopt});
            break;
          case 1:
            rule.ports.push_back({api::Protocol::kTCP, int32_t{5432}, std::nullopt});
            break;
          case 2:
            rule.ports.push_back({api::Protocol::kTCP, int32_t{8000}, int32_t{8100}});
            break;
          default:
            rule.ports.push_back({api::Protocol::kTCP, int32_t{80}, std::nullopt});
            break;
        }
        p.ingress.push_back(std::move(rule));
        if (c.Coin(5)) {
          p.policy_types = {api::PolicyType::kIngress, api::PolicyType::kEgress};
          api::NetworkPolicyRule out;
          out.peers.push_back(api::NetworkPolicyPeer{std::nullopt, LabelSelector{}, std::nullopt});
          p.egress.push_back(std::move(out));
        }
      }
    }
    objects.push_back(std::move(p));
  }
  return objects;
}

std::map<std::string, std::string> FirstPodsAsLocal(const policy::Engine& engine, size_t count) {
  std::map<std::string, std::string> local;
  for (const policy::PodId id : engine.Pods()) {
    if (local.size() == count) break;
    local[engine.pod(id).FullName()] = "veth" + std::to_string(local.size());
  }
  return local;
}

}  // namespace netpol::testing
