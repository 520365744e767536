#include "api/decode.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>

namespace netpol::api {
namespace {

using FieldList = std::initializer_list<std::string_view>;

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// sigs.k8s.io/yaml reads YAML 1.1 into JSON, so a plain (unquoted) scalar that
// looks like a number, boolean or null is not a string to the API server.
bool IsPlainNonString(const YAML::Node& node) {
  if (!node.IsScalar() || node.Tag() != "?") return false;
  static const std::set<std::string, std::less<>> kWords = {
      "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
      "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", "null", "Null", "NULL", "~"};
  const std::string& text = node.Scalar();
  if (text.empty() || kWords.contains(text)) return true;
  // Integers and floats: optional sign, digits, optional fraction and exponent.
  size_t i = (text[0] == '+' || text[0] == '-') ? 1 : 0;
  bool digits = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0)) {
    ++i;
    digits = true;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0)) {
      ++i;
      digits = true;
    }
  }
  if (digits && i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (i == text.size()) return false;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0)) ++i;
  }
  return digits && i == text.size();
}

// Decodes one object. Records the position of every field it visits, reports type
// errors and unknown fields, and builds the value.
class ObjectDecoder {
 public:
  ObjectDecoder(std::string file, const DecodeOptions& options, Diagnostics& diagnostics)
      : file_(std::move(file)),
        options_(options),
        diagnostics_(diagnostics),
        positions_(std::make_shared<FieldPositions>()) {}

  void set_object_ref(std::string ref) { object_ref_ = std::move(ref); }

  SourceLocation Where(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line < 0) return {file_, 0, 0};
    return {file_, mark.line + 1, mark.column + 1};
  }

  void Record(const std::string& path, const YAML::Node& node) {
    if (!path.empty()) positions_->emplace(path, Where(node));
  }

  void Report(Severity severity, const YAML::Node& node, const std::string& path,
              std::string detail) {
    diagnostics_.push_back(
        {severity, Where(node), object_ref_, path, std::move(detail)});
  }
  void Error(const YAML::Node& node, const std::string& path, std::string detail) {
    Report(Severity::kError, node, path, std::move(detail));
  }

  Provenance TakeProvenance(const YAML::Node& root) {
    return Provenance{Where(root), std::move(positions_)};
  }

  // Every key of `map` must be in `known`; others are warnings (errors with --strict).
  void CheckFields(const YAML::Node& map, const std::string& path, FieldList known) {
    for (const auto& entry : map) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "?";
      bool found = false;
      for (const std::string_view k : known) found = found || k == key;
      if (!found) {
        Report(options_.strict ? Severity::kError : Severity::kWarning, entry.first,
               "", "unknown field " + Quote(Child(path, key)));
      }
    }
  }

  // A mapping (or null, which reads as empty). False, with an error, otherwise.
  bool ExpectMap(const YAML::Node& node, const std::string& path) {
    Record(path, node);
    if (node.IsMap()) {
      // YAML allows nothing twice in one mapping; yaml-cpp would keep one silently.
      std::set<std::string, std::less<>> seen;
      for (const auto& entry : node) {
        if (entry.first.IsScalar() && !seen.insert(entry.first.Scalar()).second) {
          Error(entry.first, Child(path, entry.first.Scalar()),
                "key " + Quote(entry.first.Scalar()) + " already set in map");
        }
      }
      return true;
    }
    if (node.IsNull()) return true;
    Error(node, path, "Invalid value: expected an object");
    return false;
  }

  bool ExpectSequence(const YAML::Node& node, const std::string& path) {
    Record(path, node);
    if (node.IsSequence() || node.IsNull()) return true;
    Error(node, path, "Invalid value: expected a list");
    return false;
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    Record(path, node);
    if (node.IsNull()) return std::string();
    if (!node.IsScalar()) {
      Error(node, path, "Invalid value: expected a string");
      return std::nullopt;
    }
    if (IsPlainNonString(node)) {
      Error(node, path,
            InvalidValue(node.Scalar(), "expected a string; quote the value (\"" +
                                            node.Scalar() + "\")"));
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<int32_t> Int32(const YAML::Node& node, const std::string& path) {
    Record(path, node);
    if (!node.IsScalar() || node.Tag() != "?") {
      Error(node, path,
            "Invalid value: " + (node.IsScalar() ? Quote(node.Scalar()) : std::string("<")) +
                (node.IsScalar() ? "" : "object>") + ": expected an integer");
      return std::nullopt;
    }
    const std::string& text = node.Scalar();
    int64_t value = 0;
    const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
    const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() ||
        value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
      Error(node, path, InvalidValue(text, "expected a 32-bit integer"));
      return std::nullopt;
    }
    return static_cast<int32_t>(value);
  }

  std::optional<bool> Bool(const YAML::Node& node, const std::string& path) {
    Record(path, node);
    if (node.IsScalar() && node.Tag() == "?") {
      const std::string& t = node.Scalar();
      if (t == "true" || t == "True" || t == "TRUE") return true;
      if (t == "false" || t == "False" || t == "FALSE") return false;
    }
    Error(node, path, "Invalid value: expected a boolean (true or false)");
    return std::nullopt;
  }

  std::vector<std::string> StringList(const YAML::Node& node, const std::string& path) {
    std::vector<std::string> out;
    if (!ExpectSequence(node, path)) return out;
    for (size_t i = 0; i < node.size(); ++i) {
      if (auto s = String(node[i], Index(path, i))) out.push_back(std::move(*s));
    }
    return out;
  }

  Labels StringMap(const YAML::Node& node, const std::string& path) {
    Labels out;
    if (!ExpectMap(node, path)) return out;
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      if (auto value = String(entry.second, Child(path, key))) out[key] = std::move(*value);
    }
    return out;
  }

  ObjectMeta Meta(const YAML::Node& node, bool namespaced) {
    ObjectMeta meta;
    if (namespaced) meta.namespace_ = options_.default_namespace;
    if (!node || !ExpectMap(node, "metadata")) return meta;
    CheckFields(node, "metadata",
                {"name", "generateName", "namespace", "labels", "annotations", "uid",
                 "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "ownerReferences", "finalizers", "managedFields",
                 "selfLink"});
    if (node["name"]) meta.name = String(node["name"], "metadata.name").value_or("");
    if (namespaced && node["namespace"]) {
      meta.namespace_ = String(node["namespace"], "metadata.namespace").value_or("");
      if (meta.namespace_.empty()) meta.namespace_ = options_.default_namespace;
    }
    if (node["labels"]) meta.labels = StringMap(node["labels"], "metadata.labels");
    return meta;
  }

  LabelSelector Selector(const YAML::Node& node, const std::string& path) {
    LabelSelector selector;
    if (!ExpectMap(node, path)) return selector;
    CheckFields(node, path, {"matchLabels", "matchExpressions"});
    if (node["matchLabels"]) {
      selector.match_labels = StringMap(node["matchLabels"], Child(path, "matchLabels"));
    }
    if (const YAML::Node exprs = node["matchExpressions"]) {
      const std::string exprs_path = Child(path, "matchExpressions");
      if (!ExpectSequence(exprs, exprs_path)) return selector;
      for (size_t i = 0; i < exprs.size(); ++i) {
        const YAML::Node expr = exprs[i];
        const std::string expr_path = Index(exprs_path, i);
        if (!ExpectMap(expr, expr_path)) continue;
        CheckFields(expr, expr_path, {"key", "operator", "values"});
        LabelSelectorRequirement req;
        if (expr["key"]) req.key = String(expr["key"], Child(expr_path, "key")).value_or("");
        const std::string op_path = Child(expr_path, "operator");
        const std::string op = expr["operator"] ? String(expr["operator"], op_path).value_or("") : "";
        if (op == "In") {
          req.op = SelectorOperator::kIn;
        } else if (op == "NotIn") {
          req.op = SelectorOperator::kNotIn;
        } else if (op == "Exists") {
          req.op = SelectorOperator::kExists;
        } else if (op == "DoesNotExist") {
          req.op = SelectorOperator::kDoesNotExist;
        } else {
          Error(expr["operator"] ? expr["operator"] : expr, op_path,
                InvalidValue(Quote(op), "not a valid selector operator"));
          continue;
        }
        if (expr["values"]) req.values = StringList(expr["values"], Child(expr_path, "values"));
        selector.match_expressions.push_back(std::move(req));
      }
    }
    return selector;
  }

  Protocol ProtocolField(const YAML::Node& node, const std::string& path) {
    const std::optional<std::string> text = String(node, path);
    if (!text) return Protocol::kTCP;
    if (text->empty()) return Protocol::kTCP;  // defaulted, as the API server does
    if (const auto protocol = ParseProtocol(*text)) return *protocol;
    Error(node, path, UnsupportedValue(Quote(*text), {"TCP", "UDP", "SCTP"}));
    return Protocol::kTCP;
  }

  PodSpec Spec(const YAML::Node& node, const std::string& path) {
    PodSpec spec;
    if (!ExpectMap(node, path)) return spec;
    CheckFields(node, path,
                {"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
                 "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy",
                 "nodeSelector", "serviceAccountName", "serviceAccount",
                 "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
                 "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname",
                 "subdomain", "affinity", "schedulerName", "tolerations", "hostAliases",
                 "priorityClassName", "priority", "dnsConfig", "readinessGates",
                 "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
                 "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
                 "schedulingGates", "resourceClaims", "resources"});
    if (node["nodeName"]) spec.node_name = String(node["nodeName"], Child(path, "nodeName")).value_or("");
    if (node["hostNetwork"] && !node["hostNetwork"].IsNull()) {
      spec.host_network = Bool(node["hostNetwork"], Child(path, "hostNetwork")).value_or(false);
    }
    const std::string containers_path = Child(path, "containers");
    const YAML::Node containers = node["containers"];
    if (!containers || !ExpectSequence(containers, containers_path)) return spec;
    for (size_t i = 0; i < containers.size(); ++i) {
      spec.containers.push_back(ContainerField(containers[i], Index(containers_path, i)));
    }
    return spec;
  }

  Container ContainerField(const YAML::Node& node, const std::string& path) {
    Container c;
    if (!ExpectMap(node, path)) return c;
    CheckFields(node, path,
                {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
                 "resources", "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices",
                 "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                 "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
                 "securityContext", "stdin", "stdinOnce", "tty"});
    if (node["name"]) c.name = String(node["name"], Child(path, "name")).value_or("");
    if (node["image"]) c.image = String(node["image"], Child(path, "image")).value_or("");
    if (node["command"]) c.command = StringList(node["command"], Child(path, "command"));
    if (node["args"]) c.args = StringList(node["args"], Child(path, "args"));
    if (const YAML::Node env = node["env"]; env && ExpectSequence(env, Child(path, "env"))) {
      for (size_t i = 0; i < env.size(); ++i) {
        const std::string env_path = Index(Child(path, "env"), i);
        if (!ExpectMap(env[i], env_path)) continue;
        CheckFields(env[i], env_path, {"name", "value", "valueFrom"});
        EnvVar var;
        if (env[i]["name"]) var.name = String(env[i]["name"], Child(env_path, "name")).value_or("");
        if (env[i]["value"]) var.value = String(env[i]["value"], Child(env_path, "value")).value_or("");
        c.env.push_back(std::move(var));
      }
    }
    if (const YAML::Node ports = node["ports"]; ports && ExpectSequence(ports, Child(path, "ports"))) {
      for (size_t i = 0; i < ports.size(); ++i) {
        const std::string port_path = Index(Child(path, "ports"), i);
        if (!ExpectMap(ports[i], port_path)) continue;
        CheckFields(ports[i], port_path, {"name", "hostPort", "containerPort", "protocol", "hostIP"});
        ContainerPort port;
        if (ports[i]["name"]) port.name = String(ports[i]["name"], Child(port_path, "name")).value_or("");
        if (ports[i]["containerPort"]) {
          port.container_port =
              Int32(ports[i]["containerPort"], Child(port_path, "containerPort")).value_or(0);
        }
        if (ports[i]["protocol"]) port.protocol = ProtocolField(ports[i]["protocol"], Child(port_path, "protocol"));
        c.ports.push_back(std::move(port));
      }
    }
    return c;
  }

  PodTemplate Template(const YAML::Node& node, const std::string& path) {
    PodTemplate t;
    if (!ExpectMap(node, path)) return t;
    CheckFields(node, path, {"metadata", "spec"});
    if (const YAML::Node meta = node["metadata"]; meta && ExpectMap(meta, Child(path, "metadata"))) {
      if (meta["labels"]) t.labels = StringMap(meta["labels"], Child(path, "metadata.labels"));
    }
    if (node["spec"]) t.spec = Spec(node["spec"], Child(path, "spec"));
    return t;
  }

  Pod DecodePod(const YAML::Node& root) {
    Pod pod;
    pod.metadata = Meta(root["metadata"], true);
    if (root["spec"]) pod.spec = Spec(root["spec"], "spec");
    if (const YAML::Node status = root["status"]; status && ExpectMap(status, "status")) {
      if (status["phase"]) pod.phase = String(status["phase"], "status.phase").value_or("");
      if (status["podIP"]) {
        const std::string ip = String(status["podIP"], "status.podIP").value_or("");
        if (!ip.empty()) pod.pod_ips.push_back(ip);
      }
      if (const YAML::Node ips = status["podIPs"]; ips && ExpectSequence(ips, "status.podIPs")) {
        for (size_t i = 0; i < ips.size(); ++i) {
          const std::string path = Index("status.podIPs", i);
          if (!ExpectMap(ips[i], path) || !ips[i]["ip"]) continue;
          std::string ip = String(ips[i]["ip"], Child(path, "ip")).value_or("");
          // podIPs[0] repeats podIP; keep each address once, in order.
          if (!ip.empty() && std::find(pod.pod_ips.begin(), pod.pod_ips.end(), ip) == pod.pod_ips.end()) {
            pod.pod_ips.push_back(std::move(ip));
          }
        }
      }
    }
    return pod;
  }

  Workload DecodeWorkload(const YAML::Node& root, WorkloadKind kind) {
    Workload w;
    w.kind = kind;
    w.metadata = Meta(root["metadata"], true);
    const YAML::Node spec_node = root["spec"];
    if (!spec_node || !ExpectMap(spec_node, "spec")) return w;
    const YAML::Node spec = spec_node;
    std::string spec_path = "spec";
    switch (kind) {
      case WorkloadKind::kDeployment:
        CheckFields(spec, "spec", {"replicas", "selector", "template", "strategy", "minReadySeconds",
                                   "revisionHistoryLimit", "paused", "progressDeadlineSeconds"});
        break;
      case WorkloadKind::kStatefulSet:
        CheckFields(spec, "spec",
                    {"replicas", "selector", "template", "volumeClaimTemplates", "serviceName",
                     "podManagementPolicy", "updateStrategy", "revisionHistoryLimit",
                     "minReadySeconds", "persistentVolumeClaimRetentionPolicy", "ordinals"});
        break;
      case WorkloadKind::kDaemonSet:
        CheckFields(spec, "spec", {"selector", "template", "updateStrategy", "minReadySeconds",
                                   "revisionHistoryLimit"});
        break;
      case WorkloadKind::kReplicaSet:
      case WorkloadKind::kReplicationController:
        CheckFields(spec, "spec", {"replicas", "minReadySeconds", "selector", "template"});
        break;
      case WorkloadKind::kJob:
        CheckFields(spec, "spec",
                    {"parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy",
                     "successPolicy", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
                     "selector", "manualSelector", "template", "ttlSecondsAfterFinished",
                     "completionMode", "suspend", "podReplacementPolicy", "managedBy"});
        break;
      case WorkloadKind::kCronJob:
        CheckFields(spec, "spec",
                    {"schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy",
                     "suspend", "jobTemplate", "successfulJobsHistoryLimit",
                     "failedJobsHistoryLimit"});
        break;
    }
    if (kind == WorkloadKind::kCronJob) {
      // A CronJob's pods come from spec.jobTemplate.spec (a JobSpec).
      const YAML::Node job = spec["jobTemplate"];
      if (!job || !ExpectMap(job, "spec.jobTemplate")) return w;
      CheckFields(job, "spec.jobTemplate", {"metadata", "spec"});
      if (!job["spec"] || !ExpectMap(job["spec"], "spec.jobTemplate.spec")) return w;
      spec_path = "spec.jobTemplate.spec";
    }
    // yaml-cpp nodes are references: bind a fresh const node, never reassign one.
    const YAML::Node body = kind == WorkloadKind::kCronJob ? spec["jobTemplate"]["spec"] : spec;
    const char* count_field = (kind == WorkloadKind::kJob || kind == WorkloadKind::kCronJob)
                                  ? "parallelism"
                                  : "replicas";
    if (kind != WorkloadKind::kDaemonSet && body[count_field] && !body[count_field].IsNull()) {
      w.replicas = Int32(body[count_field], Child(spec_path, count_field)).value_or(1);
    }
    if (const YAML::Node sel = body["selector"]; sel && !sel.IsNull()) {
      if (kind == WorkloadKind::kReplicationController) {
        // ReplicationController's selector is a plain label map.
        LabelSelector s;
        s.match_labels = StringMap(sel, Child(spec_path, "selector"));
        w.selector = std::move(s);
      } else {
        w.selector = Selector(sel, Child(spec_path, "selector"));
      }
    }
    if (body["template"]) w.pod_template = Template(body["template"], Child(spec_path, "template"));
    return w;
  }

  NetworkPolicyPeer Peer(const YAML::Node& node, const std::string& path) {
    NetworkPolicyPeer peer;
    if (!ExpectMap(node, path)) return peer;
    CheckFields(node, path, {"podSelector", "namespaceSelector", "ipBlock"});
    // A null selector is an absent one (a nil pointer to the API server).
    if (node["podSelector"] && !node["podSelector"].IsNull()) {
      peer.pod_selector = Selector(node["podSelector"], Child(path, "podSelector"));
    }
    if (node["namespaceSelector"] && !node["namespaceSelector"].IsNull()) {
      peer.namespace_selector = Selector(node["namespaceSelector"], Child(path, "namespaceSelector"));
    }
    if (const YAML::Node block = node["ipBlock"]; block && !block.IsNull()) {
      const std::string block_path = Child(path, "ipBlock");
      IpBlock ip_block;
      if (ExpectMap(block, block_path)) {
        CheckFields(block, block_path, {"cidr", "except"});
        if (block["cidr"]) ip_block.cidr = String(block["cidr"], Child(block_path, "cidr")).value_or("");
        if (block["except"]) ip_block.except = StringList(block["except"], Child(block_path, "except"));
      }
      peer.ip_block = std::move(ip_block);
    }
    return peer;
  }

  NetworkPolicyPort PolicyPort(const YAML::Node& node, const std::string& path) {
    NetworkPolicyPort port;
    if (!ExpectMap(node, path)) return port;
    CheckFields(node, path, {"protocol", "port", "endPort"});
    if (node["protocol"] && !node["protocol"].IsNull()) {
      port.protocol = ProtocolField(node["protocol"], Child(path, "protocol"));
    }
    if (const YAML::Node value = node["port"]; value && !value.IsNull()) {
      const std::string port_path = Child(path, "port");
      Record(port_path, value);
      if (value.IsScalar() && value.Tag() == "?" && IsPlainNonString(value)) {
        if (auto number = Int32(value, port_path)) port.port = *number;
      } else if (value.IsScalar()) {
        port.port = value.Scalar();  // quoted: a named port, even if it looks numeric
      } else {
        Error(value, port_path, "Invalid value: expected a port number or name");
      }
    }
    if (node["endPort"] && !node["endPort"].IsNull()) {
      port.end_port = Int32(node["endPort"], Child(path, "endPort"));
    }
    return port;
  }

  std::vector<NetworkPolicyRule> Rules(const YAML::Node& node, const std::string& path,
                                       const char* peers_field) {
    std::vector<NetworkPolicyRule> rules;
    if (!ExpectSequence(node, path)) return rules;
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string rule_path = Index(path, i);
      NetworkPolicyRule rule;
      if (ExpectMap(node[i], rule_path)) {
        CheckFields(node[i], rule_path, {"ports", peers_field});
        if (const YAML::Node ports = node[i]["ports"];
            ports && ExpectSequence(ports, Child(rule_path, "ports"))) {
          for (size_t j = 0; j < ports.size(); ++j) {
            rule.ports.push_back(PolicyPort(ports[j], Index(Child(rule_path, "ports"), j)));
          }
        }
        const std::string peers_path = Child(rule_path, peers_field);
        if (const YAML::Node peers = node[i][peers_field]; peers && ExpectSequence(peers, peers_path)) {
          for (size_t j = 0; j < peers.size(); ++j) rule.peers.push_back(Peer(peers[j], Index(peers_path, j)));
        }
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

  NetworkPolicy DecodePolicy(const YAML::Node& root) {
    NetworkPolicy policy;
    policy.metadata = Meta(root["metadata"], true);
    const YAML::Node spec = root["spec"];
    if (!spec || !ExpectMap(spec, "spec")) return policy;
    CheckFields(spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"});
    if (spec["podSelector"]) policy.pod_selector = Selector(spec["podSelector"], "spec.podSelector");
    if (const YAML::Node types = spec["policyTypes"]; types && ExpectSequence(types, "spec.policyTypes")) {
      for (size_t i = 0; i < types.size(); ++i) {
        const std::string path = Index("spec.policyTypes", i);
        const std::optional<std::string> text = String(types[i], path);
        if (!text) continue;
        if (*text == "Ingress") {
          policy.policy_types.push_back(PolicyType::kIngress);
        } else if (*text == "Egress") {
          policy.policy_types.push_back(PolicyType::kEgress);
        } else {
          Error(types[i], path, UnsupportedValue(Quote(*text), {"Ingress", "Egress"}));
        }
      }
    }
    if (spec["ingress"]) policy.ingress = Rules(spec["ingress"], "spec.ingress", "from");
    if (spec["egress"]) policy.egress = Rules(spec["egress"], "spec.egress", "to");
    return policy;
  }

 private:
  std::string file_;
  const DecodeOptions& options_;
  Diagnostics& diagnostics_;
  std::string object_ref_;
  std::shared_ptr<FieldPositions> positions_;
};

struct KindInfo {
  std::string_view kind;
  std::string_view api_version;  // the one version netpol reads
};

constexpr KindInfo kKinds[] = {
    {"Namespace", "v1"},
    {"Pod", "v1"},
    {"ReplicationController", "v1"},
    {"NetworkPolicy", "networking.k8s.io/v1"},
    {"Deployment", "apps/v1"},
    {"StatefulSet", "apps/v1"},
    {"DaemonSet", "apps/v1"},
    {"ReplicaSet", "apps/v1"},
    {"Job", "batch/v1"},
    {"CronJob", "batch/v1"},
};

class Decoder {
 public:
  Decoder(std::string_view file, const DecodeOptions& options) : file_(file), options_(options) {}

  DecodeResult Run(std::string_view text) {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {
      const int line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
      const int column = e.mark.column >= 0 ? e.mark.column + 1 : 0;
      result_.diagnostics.push_back({Severity::kError, {file_, line, column}, "", "",
                                     "invalid YAML or JSON: " + e.msg});
      return std::move(result_);
    }
    for (const YAML::Node& doc : documents) {
      try {
        Document(doc, 0);
      } catch (const YAML::Exception& e) {
        FileError(doc, "cannot decode document: " + e.msg);
      }
    }
    return std::move(result_);
  }

 private:
  void FileError(const YAML::Node& node, std::string detail) {
    const YAML::Mark mark = node.Mark();
    result_.diagnostics.push_back({Severity::kError,
                                   {file_, mark.line >= 0 ? mark.line + 1 : 0,
                                    mark.column >= 0 ? mark.column + 1 : 0},
                                   "", "", std::move(detail)});
  }

  void Document(const YAML::Node& doc, int depth) {
    if (!doc || doc.IsNull()) return;  // empty document ("---" alone)
    if (!doc.IsMap()) {
      FileError(doc, "expected a Kubernetes object (a mapping with apiVersion and kind)");
      return;
    }
    const YAML::Node kind_node = doc["kind"];
    if (!kind_node || !kind_node.IsScalar() || kind_node.Scalar().empty()) {
      FileError(doc, "Object 'Kind' is missing");
      return;
    }
    const std::string kind = kind_node.Scalar();
    if (kind == "List" || (kind.size() > 4 && kind.ends_with("List") && doc["items"])) {
      const YAML::Node items = doc["items"];
      if (items && !items.IsNull() && !items.IsSequence()) {
        FileError(items, "items: expected a list");
        return;
      }
      if (depth > 0) {
        FileError(doc, "a List may not contain another List");
        return;
      }
      if (items) {
        for (const YAML::Node& item : items) Document(item, depth + 1);
      }
      return;
    }
    const KindInfo* info = nullptr;
    for (const KindInfo& k : kKinds) {
      if (k.kind == kind) info = &k;
    }
    if (info == nullptr) {
      ++result_.ignored[kind];
      return;
    }
    const YAML::Node version_node = doc["apiVersion"];
    const std::string version =
        version_node && version_node.IsScalar() ? version_node.Scalar() : std::string();
    if (version.empty()) {
      FileError(doc, "Object 'apiVersion' is missing for kind " + Quote(kind));
      return;
    }
    if (version != info->api_version) {
      FileError(version_node, "no matches for kind " + Quote(kind) + " in version " +
                                  Quote(version) + " (netpol reads " +
                                  std::string(info->api_version) + ")");
      return;
    }

    ObjectDecoder d(file_, options_, result_.diagnostics);
    // The object reference in diagnostics needs name and namespace, which are
    // read first without recording anything.
    std::string ref = kind + " ";
    if (const YAML::Node meta = doc["metadata"]; meta && meta.IsMap()) {
      const bool cluster_scoped = kind == "Namespace";
      std::string ns = options_.default_namespace;
      if (meta["namespace"] && meta["namespace"].IsScalar() && !meta["namespace"].Scalar().empty()) {
        ns = meta["namespace"].Scalar();
      }
      if (!cluster_scoped) ref += ns + "/";
      ref += meta["name"] && meta["name"].IsScalar() ? meta["name"].Scalar() : "<unnamed>";
    } else {
      ref += "<unnamed>";
    }
    d.set_object_ref(ref);
    d.CheckFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"});

    Object object;
    try {
      object = DecodeKind(d, doc, kind);
    } catch (const YAML::Exception& e) {
      // yaml-cpp throws on some malformed trees; the object is rejected, nothing escapes.
      FileError(doc, "cannot decode " + ref + ": " + e.msg);
      return;
    }
    MetaOf(object).source = d.TakeProvenance(doc);
    result_.objects.push_back(std::move(object));
  }

  static Object DecodeKind(ObjectDecoder& d, const YAML::Node& doc, const std::string& kind) {
    Object object;
    if (kind == "Namespace") {
      Namespace ns;
      ns.metadata = d.Meta(doc["metadata"], false);
      object = std::move(ns);
    } else if (kind == "Pod") {
      object = d.DecodePod(doc);
    } else if (kind == "NetworkPolicy") {
      object = d.DecodePolicy(doc);
    } else {
      object = d.DecodeWorkload(doc, *ParseWorkloadKind(kind));
    }
    return object;
  }

  std::string file_;
  const DecodeOptions& options_;
  DecodeResult result_;
};

}  // namespace

DecodeResult Decode(std::string_view text, std::string_view file, const DecodeOptions& options) {
  return Decoder(file, options).Run(text);
}

}  // namespace netpol::api
