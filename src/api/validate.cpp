#include "api/validate.h"

#include <algorithm>
#include <map>
#include <set>

#include "base/ip.h"

namespace netpol::api {
namespace {

// apimachinery's RegexError: "msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')".
std::string RegexError(const std::string& msg, const std::string& fmt,
                       std::initializer_list<std::string_view> examples) {
  std::string out = msg + " (e.g. ";
  size_t i = 0;
  for (const std::string_view example : examples) {
    if (i++ > 0) out += " or ";
    out += "'" + std::string(example) + "', ";
  }
  return out + "regex used for validation is '" + fmt + "')";
}

std::string MaxLenError(size_t length) {
  return "must be no more than " + std::to_string(length) + " characters";
}

constexpr std::string_view kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool MatchesDns1123Label(std::string_view v) {
  if (v.empty() || !IsLowerAlnum(v.front()) || !IsLowerAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

// Labels joined by single dots.
bool MatchesDns1123Subdomain(std::string_view v) {
  while (true) {
    const size_t dot = v.find('.');
    if (!MatchesDns1123Label(v.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    v = v.substr(dot + 1);
  }
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool MatchesQualifiedName(std::string_view v) {
  if (v.empty() || !IsAlnum(v.front()) || !IsAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// The CRD's DomainName pattern.
constexpr std::string_view kDomainNamePattern =
    R"(^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$)";

// [a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?
bool MatchesDomainLabel(std::string_view v) {
  if (v.empty() || !IsAlnum(v.front()) || !IsAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return IsAlnum(c) || c == '-' || c == '_'; });
}

// kDomainNamePattern: an optional "*." prefix, then at least two labels, and
// an optional final dot.
bool MatchesDomainName(std::string_view v) {
  if (v.starts_with("*.")) v.remove_prefix(2);
  if (v.ends_with('.')) v.remove_suffix(1);
  size_t labels = 0;
  while (true) {
    const size_t dot = v.find('.');
    if (!MatchesDomainLabel(v.substr(0, dot))) return false;
    ++labels;
    if (dot == std::string_view::npos) break;
    v.remove_prefix(dot + 1);
  }
  return labels >= 2;
}

// CEL's isCIDR(self) && cidr(self) == cidr(self).masked(): a prefix without
// host bits set.
bool IsMaskedCidr(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  const Result<IpPrefix> prefix = IpPrefix::Parse(text);
  const Result<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  return prefix && address && prefix->address() == *address;
}

const std::string& Dns1123SubdomainFmt() {
  static const std::string kFmt =
      std::string(kDns1123LabelFmt) + "(\\." + std::string(kDns1123LabelFmt) + ")*";
  return kFmt;
}

// Collects diagnostics for one object, resolving field paths to file positions.
class Validator {
 public:
  explicit Validator(const Object& object) : ref_(ObjectRef(object)), source_(MetaOf(object).source) {}

  void Add(const std::string& field, std::string detail) {
    diagnostics_.push_back({Severity::kError, source_.Locate(field), ref_, field, std::move(detail)});
  }

  void Warn(const std::string& field, std::string detail) {
    diagnostics_.push_back({Severity::kWarning, source_.Locate(field), ref_, field, std::move(detail)});
  }

  void Invalid(const std::string& field, const std::string& quoted, const std::string& msg) {
    Add(field, InvalidValue(quoted, msg));
  }

  void EachInvalid(const std::string& field, const std::string& value,
                   const std::vector<std::string>& messages) {
    for (const auto& msg : messages) Invalid(field, Quote(value), msg);
  }

  void Meta(const ObjectMeta& meta, bool namespaced, bool name_is_label) {
    if (meta.name.empty()) {
      Add("metadata.name", RequiredValue("name or generateName is required"));
    } else {
      EachInvalid("metadata.name", meta.name,
                  name_is_label ? IsDns1123Label(meta.name) : IsDns1123Subdomain(meta.name));
    }
    if (namespaced) EachInvalid("metadata.namespace", meta.namespace_, IsDns1123Label(meta.namespace_));
    Labels("metadata.labels", meta.labels);
  }

  void Labels(const std::string& field, const api::Labels& labels) {
    for (const auto& [key, value] : labels) {
      EachInvalid(field, key, IsQualifiedName(key));
      EachInvalid(field, value, IsValidLabelValue(value));
    }
  }

  void Selector(const std::string& field, const LabelSelector& selector) {
    Labels(field + ".matchLabels", selector.match_labels);
    for (size_t i = 0; i < selector.match_expressions.size(); ++i) {
      const LabelSelectorRequirement& req = selector.match_expressions[i];
      const std::string path = field + ".matchExpressions[" + std::to_string(i) + "]";
      switch (req.op) {
        case SelectorOperator::kIn:
        case SelectorOperator::kNotIn:
          if (req.values.empty()) {
            Add(path + ".values", RequiredValue("must be specified when `operator` is 'In' or 'NotIn'"));
          }
          break;
        case SelectorOperator::kExists:
        case SelectorOperator::kDoesNotExist:
          if (!req.values.empty()) {
            Add(path + ".values",
                ForbiddenValue("may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
          }
          break;
      }
      EachInvalid(path + ".key", req.key, IsQualifiedName(req.key));
      for (size_t v = 0; v < req.values.size(); ++v) {
        EachInvalid(path + ".values[" + std::to_string(v) + "]", req.values[v],
                    IsValidLabelValue(req.values[v]));
      }
    }
  }

  void PodSpecFields(const std::string& field, const PodSpec& spec) {
    if (spec.containers.empty()) Add(field + ".containers", RequiredValue(""));
    std::map<std::string, std::string, std::less<>> pod_port_names;  // name -> first field
    std::set<std::string, std::less<>> container_names;
    for (size_t c = 0; c < spec.containers.size(); ++c) {
      const Container& container = spec.containers[c];
      const std::string path = field + ".containers[" + std::to_string(c) + "]";
      if (container.name.empty()) {
        Add(path + ".name", RequiredValue(""));
      } else {
        EachInvalid(path + ".name", container.name, IsDns1123Label(container.name));
        if (!container_names.insert(container.name).second) {
          Add(path + ".name", DuplicateValue(Quote(container.name)));
        }
      }
      std::set<std::string, std::less<>> port_names;
      for (size_t p = 0; p < container.ports.size(); ++p) {
        const ContainerPort& port = container.ports[p];
        const std::string port_path = path + ".ports[" + std::to_string(p) + "]";
        if (!port.name.empty()) {
          EachInvalid(port_path + ".name", port.name, IsValidPortName(port.name));
          // Names are unique within a container; across containers the API
          // server only warns, and the first declaration is the one that counts.
          if (!port_names.insert(port.name).second) {
            Add(port_path + ".name", DuplicateValue(Quote(port.name)));
          } else if (const auto [it, inserted] = pod_port_names.emplace(port.name, port_path); !inserted) {
            Warn(port_path, "duplicate port name " + Quote(port.name) + " with " + it->second +
                                ", services and probes that select ports by name will use " + it->second);
          }
        }
        if (port.container_port == 0) {
          Add(port_path + ".containerPort", RequiredValue(""));
        } else {
          for (const auto& msg : IsValidPortNum(port.container_port)) {
            Invalid(port_path + ".containerPort", std::to_string(port.container_port), msg);
          }
        }
      }
    }
  }

  void PolicyPort(const std::string& path, const NetworkPolicyPort& port) {
    if (port.port.has_value()) {
      if (const auto* number = std::get_if<int32_t>(&*port.port)) {
        for (const auto& msg : IsValidPortNum(*number)) {
          Invalid(path + ".port", std::to_string(*number), msg);
        }
        if (port.end_port) {
          if (*port.end_port < *number) {
            Invalid(path + ".endPort", std::to_string(*port.end_port),
                    "must be greater than or equal to `port`");
          }
          for (const auto& msg : IsValidPortNum(*port.end_port)) {
            Invalid(path + ".endPort", std::to_string(*port.end_port), msg);
          }
        }
      } else {
        const auto& name = std::get<std::string>(*port.port);
        if (port.end_port) {
          Invalid(path + ".endPort", std::to_string(*port.end_port),
                  "may not be specified when `port` is non-numeric");
        }
        EachInvalid(path + ".port", name, IsValidPortName(name));
      }
    } else if (port.end_port) {
      Invalid(path + ".endPort", std::to_string(*port.end_port),
              "may not be specified when `port` is not specified");
    }
  }

  void Cidr(const std::string& path, const std::string& cidr) {
    Invalid(path, Quote(cidr), "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
  }

  void Peer(const std::string& path, const NetworkPolicyPeer& peer) {
    int count = 0;
    if (peer.pod_selector) {
      ++count;
      Selector(path + ".podSelector", *peer.pod_selector);
    }
    if (peer.namespace_selector) {
      ++count;
      Selector(path + ".namespaceSelector", *peer.namespace_selector);
    }
    if (peer.ip_block) {
      ++count;
      const std::string block_path = path + ".ipBlock";
      const IpBlock& block = *peer.ip_block;
      if (block.cidr.empty()) {
        Add(block_path + ".cidr", RequiredValue(""));
      } else if (Result<IpPrefix> cidr = IpPrefix::Parse(block.cidr); !cidr) {
        Cidr(block_path + ".cidr", block.cidr);
      } else {
        for (size_t i = 0; i < block.except.size(); ++i) {
          const std::string except_path = block_path + ".except[" + std::to_string(i) + "]";
          const Result<IpPrefix> except = IpPrefix::Parse(block.except[i]);
          if (!except) {
            Cidr(except_path, block.except[i]);
          } else if (!cidr->Contains(*except) || except->length() <= cidr->length()) {
            Invalid(except_path, Quote(block.except[i]), "must be a strict subset of `cidr`");
          }
        }
      }
    }
    if (count == 0) {
      Add(path, RequiredValue("must specify a peer"));
    } else if (count > 1 && peer.ip_block) {
      Add(path, ForbiddenValue("may not specify both ipBlock and another peer"));
    }
  }

  void Rules(const std::string& field, const char* peers_field, const std::vector<NetworkPolicyRule>& rules) {
    for (size_t r = 0; r < rules.size(); ++r) {
      const std::string rule_path = field + "[" + std::to_string(r) + "]";
      for (size_t p = 0; p < rules[r].ports.size(); ++p) {
        PolicyPort(rule_path + ".ports[" + std::to_string(p) + "]", rules[r].ports[p]);
      }
      for (size_t p = 0; p < rules[r].peers.size(); ++p) {
        Peer(rule_path + "." + peers_field + "[" + std::to_string(p) + "]", rules[r].peers[p]);
      }
    }
  }

  void operator()(const Namespace& ns) { Meta(ns.metadata, false, true); }

  void operator()(const Pod& pod) {
    Meta(pod.metadata, true, false);
    PodSpecFields("spec", pod.spec);
    for (size_t i = 0; i < pod.pod_ips.size(); ++i) {
      if (!IpAddress::Parse(pod.pod_ips[i])) {
        Invalid("status.podIPs[" + std::to_string(i) + "].ip", Quote(pod.pod_ips[i]),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
      }
    }
  }

  void operator()(const Workload& w) {
    Meta(w.metadata, true, false);
    const bool cron = w.kind == WorkloadKind::kCronJob;
    const std::string spec = cron ? "spec.jobTemplate.spec" : "spec";
    const bool job = w.kind == WorkloadKind::kJob || cron;
    if (w.replicas < 0) {
      Invalid(spec + (job ? ".parallelism" : ".replicas"), std::to_string(w.replicas),
              "must be greater than or equal to 0");
    }
    const bool selector_required = !job && w.kind != WorkloadKind::kReplicationController;
    if (w.selector) {
      Selector(spec + ".selector", *w.selector);
      if (w.selector->empty() && selector_required) {
        Invalid(spec + ".selector", "{}",
                "empty selector is invalid for " + std::string(WorkloadKindName(w.kind)));
      } else if (!w.selector->Matches(w.pod_template.labels)) {
        Invalid(spec + ".template.metadata.labels", FormatLabels(w.pod_template.labels),
                "`selector` does not match template `labels`");
      }
    } else if (selector_required) {
      Add(spec + ".selector", RequiredValue(""));
    }
    Labels(spec + ".template.metadata.labels", w.pod_template.labels);
    PodSpecFields(spec + ".template.spec", w.pod_template.spec);
  }

  void operator()(const NetworkPolicy& policy) {
    Meta(policy.metadata, true, false);
    Selector("spec.podSelector", policy.pod_selector);
    Rules("spec.ingress", "from", policy.ingress);
    Rules("spec.egress", "to", policy.egress);
    if (policy.policy_types.size() > 2) {
      Invalid("spec.policyTypes", "[...]", "may not specify more than two policyTypes");
    }
  }

  void operator()(const Node& node) { Meta(node.metadata, false, false); }

  // ---- ClusterNetworkPolicy: the CRD's schema and CEL rules, in the words of
  // the API server's CRD validation (k8s.io/apiextensions-apiserver: kube-openapi
  // messages "<path> in body should ..." as Invalid values, TooMany, TooLong,
  // Required; a failed CEL rule as Invalid value "object"/"string": message).

  void InBody(const std::string& path, const std::string& quoted, const std::string& should) {
    Invalid(path, quoted, path + " in body should " + should);
  }
  void TooMany(const std::string& path, size_t actual, size_t max) {
    Add(path, "Too many: " + std::to_string(actual) + ": must have at most " + std::to_string(max) +
                  (max == 1 ? " item" : " items"));
  }
  // minItems 1 (when present) and maxItems `max`.
  void ItemCount(const std::string& path, size_t count, size_t max) {
    if (count == 0) InBody(path, "0", "have at least 1 items");
    if (count > max) TooMany(path, count, max);
  }
  // minProperties 1 and maxProperties 1: exactly one field set.
  void OneProperty(const std::string& path, int count) {
    if (count == 0) InBody(path, "0", "have at least 1 properties");
    if (count > 1) TooMany(path, static_cast<size_t>(count), 1);
  }
  void PortNumber(const std::string& path, int32_t value) {
    if (value < 1) InBody(path, std::to_string(value), "be greater than or equal to 1");
    if (value > 65535) InBody(path, std::to_string(value), "be less than or equal to 65535");
  }
  // listType=set: every item once.
  void SetItems(const std::string& path, const std::vector<std::string>& items) {
    std::set<std::string, std::less<>> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!seen.insert(items[i]).second) {
        Add(path + "[" + std::to_string(i) + "]", DuplicateValue(Quote(items[i])));
      }
    }
  }

  void NamespacedPodField(const std::string& path, const NamespacedPod& pods) {
    Selector(path + ".namespaceSelector", pods.namespace_selector);
    if (!pods.pod_selector) {
      Add(path + ".podSelector", RequiredValue(""));
    } else {
      Selector(path + ".podSelector", *pods.pod_selector);
    }
  }

  void ClusterPeerField(const std::string& path, const ClusterPeer& peer) {
    int count = 0;
    if (peer.namespaces) {
      ++count;
      Selector(path + ".namespaces", *peer.namespaces);
    }
    if (peer.pods) {
      ++count;
      NamespacedPodField(path + ".pods", *peer.pods);
    }
    if (peer.nodes) {
      ++count;
      Selector(path + ".nodes", *peer.nodes);
    }
    if (peer.networks) {
      ++count;
      const std::string networks = path + ".networks";
      ItemCount(networks, peer.networks->size(), 25);
      SetItems(networks, *peer.networks);
      for (size_t i = 0; i < peer.networks->size(); ++i) {
        const std::string& cidr = (*peer.networks)[i];
        const std::string item = networks + "[" + std::to_string(i) + "]";
        if (cidr.size() > 43) Add(item, "Too long: may not be more than 43 bytes");
        if (!IsMaskedCidr(cidr)) Invalid(item, Quote("string"), "Invalid CIDR format provided");
      }
    }
    if (peer.domain_names) {
      ++count;
      const std::string domains = path + ".domainNames";
      ItemCount(domains, peer.domain_names->size(), 25);
      SetItems(domains, *peer.domain_names);
      for (size_t i = 0; i < peer.domain_names->size(); ++i) {
        const std::string& name = (*peer.domain_names)[i];
        const std::string item = domains + "[" + std::to_string(i) + "]";
        if (!MatchesDomainName(name))
          InBody(item, Quote(name), "match '" + std::string(kDomainNamePattern) + "'");
      }
    }
    OneProperty(path, count);
  }

  void ProtocolMatch(const std::string& path, const ClusterProtocolMatch& match) {
    if (!match.destination_port) {
      InBody(path, "0", "have at least 1 properties");
      return;
    }
    const std::string port_path = path + ".destinationPort";
    const ClusterPort& port = *match.destination_port;
    OneProperty(port_path, (port.number ? 1 : 0) + (port.range ? 1 : 0));
    if (port.number) PortNumber(port_path + ".number", *port.number);
    if (port.range) {
      const std::string range = port_path + ".range";
      for (const auto& [field, value] : {std::pair{".start", port.range->start}, {".end", port.range->end}}) {
        if (value == 0) {
          Add(range + field, RequiredValue(""));
        } else {
          PortNumber(range + field, value);
        }
      }
      if (port.range->start >= port.range->end) {
        Invalid(range, Quote("object"), "Start port must be less than End port");
      }
    }
  }

  void ClusterRules(const std::string& field, bool egress, const std::vector<ClusterRule>& rules) {
    if (rules.size() > 25) TooMany(field, rules.size(), 25);
    const std::string peers_field = egress ? "to" : "from";
    for (size_t r = 0; r < rules.size(); ++r) {
      const ClusterRule& rule = rules[r];
      const std::string path = field + "[" + std::to_string(r) + "]";
      if (rule.name.size() > 100) Add(path + ".name", "Too long: may not be more than 100 bytes");
      if (!rule.action) Add(path + ".action", RequiredValue(""));
      const std::string peers_path = path + "." + peers_field;
      bool no_named_ports = false;  // a peer that has no named ports (networks, nodes, domainNames)
      if (!rule.peers) {
        Add(peers_path, RequiredValue(""));
      } else {
        ItemCount(peers_path, rule.peers->size(), 25);
        for (size_t p = 0; p < rule.peers->size(); ++p) {
          const ClusterPeer& peer = (*rule.peers)[p];
          ClusterPeerField(peers_path + "[" + std::to_string(p) + "]", peer);
          no_named_ports = no_named_ports || peer.networks || peer.nodes || peer.domain_names;
          if (peer.domain_names && rule.action && *rule.action != RuleAction::kAccept) {
            Warn(peers_path + "[" + std::to_string(p) + "].domainNames",
                 "DomainNames is only supported for Accept rules");
          }
        }
      }
      bool named_port = false;
      if (rule.protocols) {
        const std::string protocols = path + ".protocols";
        ItemCount(protocols, rule.protocols->size(), 25);
        for (size_t p = 0; p < rule.protocols->size(); ++p) {
          const ClusterProtocol& protocol = (*rule.protocols)[p];
          const std::string item = protocols + "[" + std::to_string(p) + "]";
          OneProperty(item, (protocol.tcp ? 1 : 0) + (protocol.udp ? 1 : 0) + (protocol.sctp ? 1 : 0) +
                                (protocol.destination_named_port ? 1 : 0));
          if (protocol.tcp) ProtocolMatch(item + ".tcp", *protocol.tcp);
          if (protocol.udp) ProtocolMatch(item + ".udp", *protocol.udp);
          if (protocol.sctp) ProtocolMatch(item + ".sctp", *protocol.sctp);
          named_port = named_port || protocol.destination_named_port.has_value();
        }
      }
      if (egress && no_named_ports && named_port) {
        Invalid(path, Quote("object"),
                "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts "
                "for networks/nodes/domainNames");
      }
    }
  }

  void operator()(const ClusterNetworkPolicy& policy) {
    Meta(policy.metadata, false, false);
    if (!policy.tier) Add("spec.tier", RequiredValue(""));
    if (!policy.priority) {
      Add("spec.priority", RequiredValue(""));
    } else if (*policy.priority < 0) {
      InBody("spec.priority", std::to_string(*policy.priority), "be greater than or equal to 0");
    } else if (*policy.priority > 1000) {
      InBody("spec.priority", std::to_string(*policy.priority), "be less than or equal to 1000");
    }
    if (!policy.subject) {
      Add("spec.subject", RequiredValue(""));
    } else {
      const ClusterSubject& subject = *policy.subject;
      OneProperty("spec.subject", (subject.namespaces ? 1 : 0) + (subject.pods ? 1 : 0));
      if (subject.namespaces) Selector("spec.subject.namespaces", *subject.namespaces);
      if (subject.pods) NamespacedPodField("spec.subject.pods", *subject.pods);
    }
    ClusterRules("spec.ingress", false, policy.ingress);
    ClusterRules("spec.egress", true, policy.egress);
  }

  Diagnostics Take() && { return std::move(diagnostics_); }

 private:
  std::string ref_;
  const Provenance& source_;
  Diagnostics diagnostics_;
};

}  // namespace

std::vector<std::string> IsDns1123Label(std::string_view value) {
  std::vector<std::string> errors;
  if (value.size() > 63) errors.push_back(MaxLenError(63));
  if (!MatchesDns1123Label(value)) {
    errors.push_back(
        RegexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                   "and must start and end with an alphanumeric character",
                   std::string(kDns1123LabelFmt), {"my-name", "123-abc"}));
  }
  return errors;
}

std::vector<std::string> IsDns1123Subdomain(std::string_view value) {
  std::vector<std::string> errors;
  if (value.size() > 253) errors.push_back(MaxLenError(253));
  if (!MatchesDns1123Subdomain(value)) {
    errors.push_back(
        RegexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                   "or '.', and must start and end with an alphanumeric character",
                   Dns1123SubdomainFmt(), {"example.com"}));
  }
  return errors;
}

std::vector<std::string> IsQualifiedName(std::string_view value) {
  // Written only for a name that has the error (every label key is checked).
  const auto name_error = [] {
    return RegexError(
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character",
        std::string(kQualifiedNameFmt), {"MyName", "my.name", "123-abc"});
  };
  std::vector<std::string> errors;
  std::string_view name = value;
  if (const size_t slash = value.find('/'); slash != std::string_view::npos) {
    if (value.find('/', slash + 1) != std::string_view::npos) {
      errors.push_back("a qualified name " + name_error() +
                       " with an optional DNS subdomain prefix and '/' (e.g. "
                       "'example.com/MyName')");
      return errors;
    }
    const std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errors.push_back("prefix part must be non-empty");
    } else {
      for (const auto& msg : IsDns1123Subdomain(prefix)) errors.push_back("prefix part " + msg);
    }
  }
  if (name.empty()) {
    errors.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errors.push_back("name part " + MaxLenError(63));
  }
  if (!MatchesQualifiedName(name)) errors.push_back("name part " + name_error());
  return errors;
}

std::vector<std::string> IsValidLabelValue(std::string_view value) {
  static const std::string kFmt = "(" + std::string(kQualifiedNameFmt) + ")?";
  std::vector<std::string> errors;
  if (value.size() > 63) errors.push_back(MaxLenError(63));
  if (!value.empty() && !MatchesQualifiedName(value)) {
    errors.push_back(
        RegexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                   "'.', and must start and end with an alphanumeric character",
                   kFmt, {"MyValue", "my_value", "12345"}));
  }
  return errors;
}

std::vector<std::string> IsValidPortNum(int64_t port) {
  if (port >= 1 && port <= 65535) return {};
  return {"must be between 1 and 65535, inclusive"};
}

std::vector<std::string> IsValidPortName(std::string_view port) {
  std::vector<std::string> errors;
  if (port.size() > 15) errors.push_back(MaxLenError(15));
  if (port.empty() ||
      !std::all_of(port.begin(), port.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; })) {
    errors.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  }
  if (port.find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string_view::npos) {
    errors.push_back("must contain at least one letter (a-z)");
  }
  if (port.find("--") != std::string_view::npos) {
    errors.push_back("must not contain consecutive hyphens (--)");
  }
  if (!port.empty() && (port.front() == '-' || port.back() == '-')) {
    errors.push_back("must not begin or end with a hyphen (-)");
  }
  return errors;
}

Diagnostics Validate(const Object& object) {
  Validator validator(object);
  std::visit(validator, object);
  return std::move(validator).Take();
}

}  // namespace netpol::api
