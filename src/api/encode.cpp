#include "api/encode.h"

#include <memory>
#include <utility>

#include "api/diagnostic.h"

namespace netpol::api {
namespace {

// A tiny document model printed as block-style YAML. Strings are always
// double-quoted (so "80", "true" or "" stay strings); keys written by netpol
// are plain, keys that come from data (labels) are quoted.
class Value {
 public:
  enum class Kind { kString, kInt, kBool, kMap, kList };

  static Value Str(std::string s) { return Value(Kind::kString, std::move(s)); }
  static Value Int(int64_t i) { return Value(Kind::kInt, std::to_string(i)); }
  static Value Bool(bool b) { return Value(Kind::kBool, b ? "true" : "false"); }
  static Value Map() { return Value(Kind::kMap, ""); }
  static Value List() { return Value(Kind::kList, ""); }

  Value& Set(std::string key, Value value, bool quote_key = false) {
    keys_.emplace_back(std::move(key), quote_key);
    values_.push_back(std::move(value));
    return *this;
  }
  Value& Add(Value value) {
    items_.push_back(std::move(value));
    return *this;
  }
  bool empty() const { return keys_.empty() && items_.empty(); }

  void Print(std::string& out, size_t indent) const {
    const std::string pad(indent, ' ');
    if (kind_ == Kind::kMap) {
      for (size_t i = 0; i < keys_.size(); ++i) {
        out += pad + (keys_[i].second ? Quote(keys_[i].first) : keys_[i].first) + ":";
        values_[i].PrintAfterKey(out, indent);
      }
    } else if (kind_ == Kind::kList) {
      for (const Value& item : items_) {
        if (item.IsContainer() && !item.empty() && item.kind_ == Kind::kMap) {
          // "- first: x" then the other keys aligned under "first".
          std::string nested;
          item.Print(nested, indent + 2);
          out += pad + "- " + nested.substr(indent + 2);
        } else {
          out += pad + "-";
          item.PrintAfterKey(out, indent);
        }
      }
    }
  }

 private:
  Value(Kind kind, std::string scalar) : kind_(kind), scalar_(std::move(scalar)) {}

  bool IsContainer() const { return kind_ == Kind::kMap || kind_ == Kind::kList; }

  // Prints what follows "key:" or "-": a scalar on the same line, an empty
  // container in flow style, anything else indented on the next lines.
  void PrintAfterKey(std::string& out, size_t indent) const {
    if (!IsContainer()) {
      out += " " + (kind_ == Kind::kString ? Quote(scalar_) : scalar_) + "\n";
    } else if (empty()) {
      out += kind_ == Kind::kMap ? " {}\n" : " []\n";
    } else {
      out += "\n";
      Print(out, indent + 2);
    }
  }

  Kind kind_;
  std::string scalar_;
  std::vector<std::pair<std::string, bool>> keys_;  // map keys, and whether to quote them
  std::vector<Value> values_;                       // map values, parallel to keys_
  std::vector<Value> items_;                        // list items
};

Value LabelMap(const Labels& labels) {
  Value map = Value::Map();
  for (const auto& [k, v] : labels) map.Set(k, Value::Str(v), true);
  return map;
}

Value StrList(const std::vector<std::string>& values) {
  Value list = Value::List();
  for (const auto& v : values) list.Add(Value::Str(v));
  return list;
}

Value Selector(const LabelSelector& selector) {
  Value map = Value::Map();
  if (!selector.match_labels.empty()) map.Set("matchLabels", LabelMap(selector.match_labels));
  if (!selector.match_expressions.empty()) {
    Value exprs = Value::List();
    for (const auto& req : selector.match_expressions) {
      Value e = Value::Map();
      e.Set("key", Value::Str(req.key))
          .Set("operator", Value::Str(std::string(SelectorOperatorName(req.op))));
      if (!req.values.empty()) e.Set("values", StrList(req.values));
      exprs.Add(std::move(e));
    }
    map.Set("matchExpressions", std::move(exprs));
  }
  return map;
}

Value Meta(const ObjectMeta& meta) {
  Value map = Value::Map();
  map.Set("name", Value::Str(meta.name));
  if (!meta.namespace_.empty()) map.Set("namespace", Value::Str(meta.namespace_));
  if (!meta.labels.empty()) map.Set("labels", LabelMap(meta.labels));
  return map;
}

Value Spec(const PodSpec& spec) {
  Value map = Value::Map();
  if (!spec.node_name.empty()) map.Set("nodeName", Value::Str(spec.node_name));
  if (spec.host_network) map.Set("hostNetwork", Value::Bool(true));
  Value containers = Value::List();
  for (const Container& c : spec.containers) {
    Value container = Value::Map();
    container.Set("name", Value::Str(c.name));
    if (!c.image.empty()) container.Set("image", Value::Str(c.image));
    if (!c.command.empty()) container.Set("command", StrList(c.command));
    if (!c.args.empty()) container.Set("args", StrList(c.args));
    if (!c.env.empty()) {
      Value env = Value::List();
      for (const EnvVar& e : c.env) {
        Value var = Value::Map();
        var.Set("name", Value::Str(e.name)).Set("value", Value::Str(e.value));
        env.Add(std::move(var));
      }
      container.Set("env", std::move(env));
    }
    if (!c.ports.empty()) {
      Value ports = Value::List();
      for (const ContainerPort& p : c.ports) {
        Value port = Value::Map();
        if (!p.name.empty()) port.Set("name", Value::Str(p.name));
        port.Set("containerPort", Value::Int(p.container_port));
        port.Set("protocol", Value::Str(std::string(ProtocolName(p.protocol))));
        ports.Add(std::move(port));
      }
      container.Set("ports", std::move(ports));
    }
    containers.Add(std::move(container));
  }
  map.Set("containers", std::move(containers));
  return map;
}

Value Rules(const std::vector<NetworkPolicyRule>& rules, const char* peers_key) {
  Value list = Value::List();
  for (const NetworkPolicyRule& rule : rules) {
    Value r = Value::Map();
    if (!rule.ports.empty()) {
      Value ports = Value::List();
      for (const NetworkPolicyPort& port : rule.ports) {
        Value p = Value::Map();
        p.Set("protocol", Value::Str(std::string(ProtocolName(port.protocol))));
        if (port.port) {
          if (const auto* n = std::get_if<int32_t>(&*port.port)) {
            p.Set("port", Value::Int(*n));
          } else {
            p.Set("port", Value::Str(std::get<std::string>(*port.port)));
          }
        }
        if (port.end_port) p.Set("endPort", Value::Int(*port.end_port));
        ports.Add(std::move(p));
      }
      r.Set("ports", std::move(ports));
    }
    if (!rule.peers.empty()) {
      Value peers = Value::List();
      for (const NetworkPolicyPeer& peer : rule.peers) {
        Value p = Value::Map();
        if (peer.pod_selector) p.Set("podSelector", Selector(*peer.pod_selector));
        if (peer.namespace_selector) p.Set("namespaceSelector", Selector(*peer.namespace_selector));
        if (peer.ip_block) {
          Value block = Value::Map();
          block.Set("cidr", Value::Str(peer.ip_block->cidr));
          if (!peer.ip_block->except.empty()) block.Set("except", StrList(peer.ip_block->except));
          p.Set("ipBlock", std::move(block));
        }
        peers.Add(std::move(p));
      }
      r.Set(peers_key, std::move(peers));
    }
    list.Add(std::move(r));
  }
  return list;
}

Value Header(const char* api_version, std::string_view kind) {
  Value doc = Value::Map();
  doc.Set("apiVersion", Value::Str(api_version)).Set("kind", Value::Str(std::string(kind)));
  return doc;
}

Value NamespacedPodValue(const NamespacedPod& pods) {
  Value map = Value::Map();
  map.Set("namespaceSelector", Selector(pods.namespace_selector));
  if (pods.pod_selector) map.Set("podSelector", Selector(*pods.pod_selector));
  return map;
}

Value ProtocolMatchValue(const ClusterProtocolMatch& match) {
  Value map = Value::Map();
  if (!match.destination_port) return map;
  Value port = Value::Map();
  if (match.destination_port->number) port.Set("number", Value::Int(*match.destination_port->number));
  if (const auto& range = match.destination_port->range) {
    Value r = Value::Map();
    r.Set("start", Value::Int(range->start)).Set("end", Value::Int(range->end));
    port.Set("range", std::move(r));
  }
  map.Set("destinationPort", std::move(port));
  return map;
}

Value ClusterRulesValue(const std::vector<ClusterRule>& rules, const char* peers_key) {
  Value list = Value::List();
  for (const ClusterRule& rule : rules) {
    Value r = Value::Map();
    if (!rule.name.empty()) r.Set("name", Value::Str(rule.name));
    if (rule.action) r.Set("action", Value::Str(std::string(RuleActionName(*rule.action))));
    if (rule.peers) {
      Value peers = Value::List();
      for (const ClusterPeer& peer : *rule.peers) {
        Value p = Value::Map();
        if (peer.namespaces) p.Set("namespaces", Selector(*peer.namespaces));
        if (peer.pods) p.Set("pods", NamespacedPodValue(*peer.pods));
        if (peer.nodes) p.Set("nodes", Selector(*peer.nodes));
        if (peer.networks) p.Set("networks", StrList(*peer.networks));
        if (peer.domain_names) p.Set("domainNames", StrList(*peer.domain_names));
        peers.Add(std::move(p));
      }
      r.Set(peers_key, std::move(peers));
    }
    if (rule.protocols) {
      Value protocols = Value::List();
      for (const ClusterProtocol& protocol : *rule.protocols) {
        Value p = Value::Map();
        if (protocol.tcp) p.Set("tcp", ProtocolMatchValue(*protocol.tcp));
        if (protocol.udp) p.Set("udp", ProtocolMatchValue(*protocol.udp));
        if (protocol.sctp) p.Set("sctp", ProtocolMatchValue(*protocol.sctp));
        if (protocol.destination_named_port) {
          p.Set("destinationNamedPort", Value::Str(*protocol.destination_named_port));
        }
        protocols.Add(std::move(p));
      }
      r.Set("protocols", std::move(protocols));
    }
    list.Add(std::move(r));
  }
  return list;
}

struct Emit {
  Value operator()(const Namespace& ns) const {
    return std::move(Header("v1", "Namespace").Set("metadata", Meta(ns.metadata)));
  }

  Value operator()(const Pod& pod) const {
    Value doc = Header("v1", "Pod");
    doc.Set("metadata", Meta(pod.metadata)).Set("spec", Spec(pod.spec));
    if (!pod.phase.empty() || !pod.pod_ips.empty()) {
      Value status = Value::Map();
      if (!pod.phase.empty()) status.Set("phase", Value::Str(pod.phase));
      if (!pod.pod_ips.empty()) {
        status.Set("podIP", Value::Str(pod.pod_ips.front()));
        Value ips = Value::List();
        for (const auto& ip : pod.pod_ips) {
          Value entry = Value::Map();
          entry.Set("ip", Value::Str(ip));
          ips.Add(std::move(entry));
        }
        status.Set("podIPs", std::move(ips));
      }
      doc.Set("status", std::move(status));
    }
    return doc;
  }

  Value operator()(const Workload& w) const {
    const bool job = w.kind == WorkloadKind::kJob || w.kind == WorkloadKind::kCronJob;
    const bool rc = w.kind == WorkloadKind::kReplicationController;
    Value doc = Header(rc ? "v1" : job ? "batch/v1" : "apps/v1", WorkloadKindName(w.kind));
    doc.Set("metadata", Meta(w.metadata));
    Value body = Value::Map();
    if (w.kind != WorkloadKind::kDaemonSet)
      body.Set(job ? "parallelism" : "replicas", Value::Int(w.replicas));
    if (w.selector) body.Set("selector", rc ? LabelMap(w.selector->match_labels) : Selector(*w.selector));
    Value tmpl = Value::Map();
    if (!w.pod_template.labels.empty()) {
      Value meta = Value::Map();
      meta.Set("labels", LabelMap(w.pod_template.labels));
      tmpl.Set("metadata", std::move(meta));
    }
    tmpl.Set("spec", Spec(w.pod_template.spec));
    body.Set("template", std::move(tmpl));
    if (w.kind == WorkloadKind::kCronJob) {
      Value job_template = Value::Map();
      job_template.Set("spec", std::move(body));
      Value spec = Value::Map();
      spec.Set("schedule", Value::Str("* * * * *")).Set("jobTemplate", std::move(job_template));
      doc.Set("spec", std::move(spec));
    } else {
      doc.Set("spec", std::move(body));
    }
    return doc;
  }

  Value operator()(const NetworkPolicy& policy) const {
    Value doc = Header("networking.k8s.io/v1", "NetworkPolicy");
    doc.Set("metadata", Meta(policy.metadata));
    Value spec = Value::Map();
    spec.Set("podSelector", Selector(policy.pod_selector));
    if (!policy.policy_types.empty()) {
      Value types = Value::List();
      for (PolicyType t : policy.policy_types) types.Add(Value::Str(std::string(PolicyTypeName(t))));
      spec.Set("policyTypes", std::move(types));
    }
    if (!policy.ingress.empty()) spec.Set("ingress", Rules(policy.ingress, "from"));
    if (!policy.egress.empty()) spec.Set("egress", Rules(policy.egress, "to"));
    doc.Set("spec", std::move(spec));
    return doc;
  }

  Value operator()(const Node& node) const {
    Value doc = Header("v1", "Node");
    doc.Set("metadata", Meta(node.metadata));
    if (!node.addresses.empty()) {
      Value addresses = Value::List();
      for (const NodeAddress& a : node.addresses) {
        Value entry = Value::Map();
        entry.Set("type", Value::Str(a.type)).Set("address", Value::Str(a.address));
        addresses.Add(std::move(entry));
      }
      Value status = Value::Map();
      status.Set("addresses", std::move(addresses));
      doc.Set("status", std::move(status));
    }
    return doc;
  }

  Value operator()(const ClusterNetworkPolicy& policy) const {
    Value doc = Header("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy");
    doc.Set("metadata", Meta(policy.metadata));
    Value spec = Value::Map();
    if (policy.tier) spec.Set("tier", Value::Str(std::string(TierName(*policy.tier))));
    if (policy.priority) spec.Set("priority", Value::Int(*policy.priority));
    if (policy.subject) {
      Value subject = Value::Map();
      if (policy.subject->namespaces) subject.Set("namespaces", Selector(*policy.subject->namespaces));
      if (policy.subject->pods) subject.Set("pods", NamespacedPodValue(*policy.subject->pods));
      spec.Set("subject", std::move(subject));
    }
    if (!policy.ingress.empty()) spec.Set("ingress", ClusterRulesValue(policy.ingress, "from"));
    if (!policy.egress.empty()) spec.Set("egress", ClusterRulesValue(policy.egress, "to"));
    doc.Set("spec", std::move(spec));
    return doc;
  }
};

}  // namespace

std::string Encode(const Object& object) {
  std::string out;
  std::visit(Emit{}, object).Print(out, 0);
  return out;
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
