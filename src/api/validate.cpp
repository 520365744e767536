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
  const std::string name_error = RegexError(
      "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character",
      std::string(kQualifiedNameFmt), {"MyName", "my.name", "123-abc"});
  std::vector<std::string> errors;
  std::string_view name = value;
  if (const size_t slash = value.find('/'); slash != std::string_view::npos) {
    if (value.find('/', slash + 1) != std::string_view::npos) {
      errors.push_back("a qualified name " + name_error +
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
  if (!MatchesQualifiedName(name)) errors.push_back("name part " + name_error);
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
