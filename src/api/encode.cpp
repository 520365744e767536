#include "api/encode.h"

#include <yaml-cpp/yaml.h>

namespace netpol::api {
namespace {

// Strings are always double-quoted so that "80" or "true" stay strings.
void Str(YAML::Emitter& out, const std::string& value) { out << YAML::DoubleQuoted << value; }

void LabelMap(YAML::Emitter& out, const Labels& labels) {
  out << YAML::BeginMap;
  for (const auto& [k, v] : labels) {
    out << YAML::Key;
    Str(out, k);
    out << YAML::Value;
    Str(out, v);
  }
  out << YAML::EndMap;
}

void Selector(YAML::Emitter& out, const LabelSelector& selector) {
  if (selector.empty()) {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    return;
  }
  out << YAML::BeginMap;
  if (!selector.match_labels.empty()) {
    out << YAML::Key << "matchLabels" << YAML::Value;
    LabelMap(out, selector.match_labels);
  }
  if (!selector.match_expressions.empty()) {
    out << YAML::Key << "matchExpressions" << YAML::Value << YAML::BeginSeq;
    for (const auto& req : selector.match_expressions) {
      out << YAML::BeginMap << YAML::Key << "key" << YAML::Value;
      Str(out, req.key);
      out << YAML::Key << "operator" << YAML::Value << std::string(SelectorOperatorName(req.op));
      if (!req.values.empty()) {
        out << YAML::Key << "values" << YAML::Value << YAML::BeginSeq;
        for (const auto& v : req.values) Str(out, v);
        out << YAML::EndSeq;
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
}

void Meta(YAML::Emitter& out, const ObjectMeta& meta) {
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  Str(out, meta.name);
  if (!meta.namespace_.empty()) {
    out << YAML::Key << "namespace" << YAML::Value;
    Str(out, meta.namespace_);
  }
  if (!meta.labels.empty()) {
    out << YAML::Key << "labels" << YAML::Value;
    LabelMap(out, meta.labels);
  }
  out << YAML::EndMap;
}

void StrList(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
  if (values.empty()) return;
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const auto& v : values) Str(out, v);
  out << YAML::EndSeq;
}

void Spec(YAML::Emitter& out, const PodSpec& spec) {
  out << YAML::BeginMap;
  if (!spec.node_name.empty()) {
    out << YAML::Key << "nodeName" << YAML::Value;
    Str(out, spec.node_name);
  }
  if (spec.host_network) out << YAML::Key << "hostNetwork" << YAML::Value << true;
  out << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  for (const Container& c : spec.containers) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
    Str(out, c.name);
    if (!c.image.empty()) {
      out << YAML::Key << "image" << YAML::Value;
      Str(out, c.image);
    }
    StrList(out, "command", c.command);
    StrList(out, "args", c.args);
    if (!c.env.empty()) {
      out << YAML::Key << "env" << YAML::Value << YAML::BeginSeq;
      for (const EnvVar& e : c.env) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value;
        Str(out, e.name);
        out << YAML::Key << "value" << YAML::Value;
        Str(out, e.value);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    if (!c.ports.empty()) {
      out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
      for (const ContainerPort& p : c.ports) {
        out << YAML::BeginMap;
        if (!p.name.empty()) {
          out << YAML::Key << "name" << YAML::Value;
          Str(out, p.name);
        }
        out << YAML::Key << "containerPort" << YAML::Value << p.container_port;
        out << YAML::Key << "protocol" << YAML::Value << std::string(ProtocolName(p.protocol));
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
}

void Rules(YAML::Emitter& out, const char* key, const char* peers_key,
           const std::vector<NetworkPolicyRule>& rules) {
  if (rules.empty()) return;
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const NetworkPolicyRule& rule : rules) {
    out << YAML::BeginMap;
    if (!rule.ports.empty()) {
      out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq;
      for (const NetworkPolicyPort& port : rule.ports) {
        out << YAML::BeginMap << YAML::Key << "protocol" << YAML::Value
            << std::string(ProtocolName(port.protocol));
        if (port.port) {
          out << YAML::Key << "port" << YAML::Value;
          if (const auto* n = std::get_if<int32_t>(&*port.port)) {
            out << *n;
          } else {
            Str(out, std::get<std::string>(*port.port));
          }
        }
        if (port.end_port) out << YAML::Key << "endPort" << YAML::Value << *port.end_port;
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    if (!rule.peers.empty()) {
      out << YAML::Key << peers_key << YAML::Value << YAML::BeginSeq;
      for (const NetworkPolicyPeer& peer : rule.peers) {
        out << YAML::BeginMap;
        if (peer.pod_selector) {
          out << YAML::Key << "podSelector" << YAML::Value;
          Selector(out, *peer.pod_selector);
        }
        if (peer.namespace_selector) {
          out << YAML::Key << "namespaceSelector" << YAML::Value;
          Selector(out, *peer.namespace_selector);
        }
        if (peer.ip_block) {
          out << YAML::Key << "ipBlock" << YAML::Value << YAML::BeginMap << YAML::Key << "cidr"
              << YAML::Value;
          Str(out, peer.ip_block->cidr);
          StrList(out, "except", peer.ip_block->except);
          out << YAML::EndMap;
        }
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

struct Emit {
  YAML::Emitter& out;

  void Header(const char* api_version, std::string_view kind) {
    out << YAML::Key << "apiVersion" << YAML::Value << api_version;
    out << YAML::Key << "kind" << YAML::Value << std::string(kind);
  }

  void operator()(const Namespace& ns) {
    Header("v1", "Namespace");
    Meta(out, ns.metadata);
  }

  void operator()(const Pod& pod) {
    Header("v1", "Pod");
    Meta(out, pod.metadata);
    out << YAML::Key << "spec" << YAML::Value;
    Spec(out, pod.spec);
    if (!pod.phase.empty() || !pod.pod_ips.empty()) {
      out << YAML::Key << "status" << YAML::Value << YAML::BeginMap;
      if (!pod.phase.empty()) {
        out << YAML::Key << "phase" << YAML::Value;
        Str(out, pod.phase);
      }
      if (!pod.pod_ips.empty()) {
        out << YAML::Key << "podIP" << YAML::Value;
        Str(out, pod.pod_ips.front());
        out << YAML::Key << "podIPs" << YAML::Value << YAML::BeginSeq;
        for (const auto& ip : pod.pod_ips) {
          out << YAML::BeginMap << YAML::Key << "ip" << YAML::Value;
          Str(out, ip);
          out << YAML::EndMap;
        }
        out << YAML::EndSeq;
      }
      out << YAML::EndMap;
    }
  }

  void operator()(const Workload& w) {
    const std::string_view kind = WorkloadKindName(w.kind);
    const bool job = w.kind == WorkloadKind::kJob || w.kind == WorkloadKind::kCronJob;
    const bool rc = w.kind == WorkloadKind::kReplicationController;
    Header(rc ? "v1" : job ? "batch/v1" : "apps/v1", kind);
    Meta(out, w.metadata);
    out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
    if (w.kind == WorkloadKind::kCronJob) {
      out << YAML::Key << "schedule" << YAML::Value << YAML::DoubleQuoted << "* * * * *";
      out << YAML::Key << "jobTemplate" << YAML::Value << YAML::BeginMap << YAML::Key << "spec"
          << YAML::Value << YAML::BeginMap;
    }
    if (w.kind != WorkloadKind::kDaemonSet) {
      out << YAML::Key << (job ? "parallelism" : "replicas") << YAML::Value << w.replicas;
    }
    if (w.selector) {
      out << YAML::Key << "selector" << YAML::Value;
      if (rc) {
        LabelMap(out, w.selector->match_labels);
      } else {
        Selector(out, *w.selector);
      }
    }
    out << YAML::Key << "template" << YAML::Value << YAML::BeginMap;
    if (!w.pod_template.labels.empty()) {
      out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap << YAML::Key << "labels"
          << YAML::Value;
      LabelMap(out, w.pod_template.labels);
      out << YAML::EndMap;
    }
    out << YAML::Key << "spec" << YAML::Value;
    Spec(out, w.pod_template.spec);
    out << YAML::EndMap;
    if (w.kind == WorkloadKind::kCronJob) out << YAML::EndMap << YAML::EndMap;
    out << YAML::EndMap;
  }

  void operator()(const NetworkPolicy& policy) {
    Header("networking.k8s.io/v1", "NetworkPolicy");
    Meta(out, policy.metadata);
    out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "podSelector" << YAML::Value;
    Selector(out, policy.pod_selector);
    if (!policy.policy_types.empty()) {
      out << YAML::Key << "policyTypes" << YAML::Value << YAML::BeginSeq;
      for (PolicyType t : policy.policy_types) out << std::string(PolicyTypeName(t));
      out << YAML::EndSeq;
    }
    Rules(out, "ingress", "from", policy.ingress);
    Rules(out, "egress", "to", policy.egress);
    out << YAML::EndMap;
  }
};

}  // namespace

std::string Encode(const Object& object) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::visit(Emit{out}, object);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string Encode(const std::vector<Object>& objects) {
  std::string text;
  for (const Object& object : objects) {
    if (!text.empty()) text += "---\n";
    text += Encode(object);
  }
  return text;
}

}  // namespace netpol::api
