#include "lab/internal/defaults.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <set>
#include <string_view>

#include "api/diagnostic.h"

namespace netpol::lab::internal {
namespace {

// `object[key]`, made an object when absent or null; nullptr when it holds
// something else (the decoder has answered such a value already).
Json* ObjectField(Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  Json& field = object[key];
  if (field.is_null()) field = Json::object();
  return field.is_object() ? &field : nullptr;
}

void Default(Json& object, const char* key, const Json& value) {
  if (object.is_object() && (!object.contains(key) || object[key].is_null())) object[key] = value;
}

// Each element of a list field that is an object.
template <typename F>
void EachObject(Json& object, const char* key, F&& f) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_array()) return;
  for (Json& e : object[key]) {
    if (e.is_object()) f(e);
  }
}

// The tag of an image reference as the API server's defaulting reads it
// (parsers.ParseImageName): "latest" when none, "" with a digest or no image.
std::string ImageTag(const std::string& image) {
  if (image.empty() || image.find('@') != std::string::npos) return "";
  const size_t slash = image.rfind('/');
  const std::string last = slash == std::string::npos ? image : image.substr(slash + 1);
  const size_t colon = last.find(':');
  return colon == std::string::npos ? "latest" : last.substr(colon + 1);
}

void ProbeDefaults(Json& container, const char* key) {
  if (!container.contains(key) || !container[key].is_object()) return;
  Json& probe = container[key];
  Default(probe, "timeoutSeconds", 1);
  Default(probe, "periodSeconds", 10);
  Default(probe, "successThreshold", 1);
  Default(probe, "failureThreshold", 3);
  if (probe.contains("httpGet") && probe["httpGet"].is_object()) {
    Default(probe["httpGet"], "path", "/");
    Default(probe["httpGet"], "scheme", "HTTP");
  }
}

void ContainerDefaults(Json& c) {
  const std::string image =
      c.contains("image") && c["image"].is_string() ? c["image"].get<std::string>() : "";
  Default(c, "imagePullPolicy", ImageTag(image) == "latest" ? "Always" : "IfNotPresent");
  Default(c, "terminationMessagePath", "/dev/termination-log");
  Default(c, "terminationMessagePolicy", "File");
  Default(c, "resources", Json::object());
  EachObject(c, "ports", [](Json& port) { Default(port, "protocol", "TCP"); });
  EachObject(c, "env", [](Json& env) {
    if (env.contains("valueFrom") && env["valueFrom"].is_object() && env["valueFrom"].contains("fieldRef") &&
        env["valueFrom"]["fieldRef"].is_object()) {
      Default(env["valueFrom"]["fieldRef"], "apiVersion", "v1");
    }
  });
  for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) ProbeDefaults(c, probe);
}

void PodSpecDefaults(Json& spec) {
  Default(spec, "restartPolicy", "Always");
  Default(spec, "terminationGracePeriodSeconds", 30);
  Default(spec, "dnsPolicy", "ClusterFirst");
  Default(spec, "securityContext", Json::object());
  Default(spec, "schedulerName", "default-scheduler");
  EachObject(spec, "containers", ContainerDefaults);
  EachObject(spec, "initContainers", ContainerDefaults);
}

void PolicyPortDefaults(Json& rule) {
  EachObject(rule, "ports", [](Json& port) { Default(port, "protocol", "TCP"); });
}

void PolicyDefaults(Json& spec) {
  // An empty list is no list once decoded (omitempty): `egress: []` does not
  // make a policy an egress policy.
  for (const char* key : {"ingress", "egress"}) {
    if (spec.contains(key) && (spec[key].is_null() || (spec[key].is_array() && spec[key].empty()))) {
      spec.erase(key);
    }
  }
  EachObject(spec, "ingress", PolicyPortDefaults);
  EachObject(spec, "egress", PolicyPortDefaults);
  const bool none = !spec.contains("policyTypes") || spec["policyTypes"].is_null() ||
                    (spec["policyTypes"].is_array() && spec["policyTypes"].empty());
  if (none) {
    Json types = Json::array({"Ingress"});
    if (spec.contains("egress")) types.push_back("Egress");
    spec["policyTypes"] = types;
  }
}

// The pod's QoS class as the API server computes it at create
// (qos.GetPodQOS): BestEffort without any cpu or memory request or limit,
// Guaranteed when every container limits both and requests (if given) equal
// the limits, Burstable otherwise. Quantities are compared as written.
std::string QosClass(const Json& spec) {
  bool any = false;
  bool guaranteed = true;
  for (const char* list : {"containers", "initContainers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (const Json& c : spec[list]) {
      const Json resources = c.is_object() ? c.value("resources", Json::object()) : Json::object();
      const Json requests = resources.is_object() ? resources.value("requests", Json::object()) : Json();
      const Json limits = resources.is_object() ? resources.value("limits", Json::object()) : Json();
      for (const char* name : {"cpu", "memory"}) {
        const bool requested = requests.is_object() && requests.contains(name);
        const bool limited = limits.is_object() && limits.contains(name);
        any = any || requested || limited;
        guaranteed = guaranteed && limited && (!requested || requests[name] == limits[name]);
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

void ServiceDefaults(Json& spec) {
  Default(spec, "type", "ClusterIP");
  Default(spec, "sessionAffinity", "None");
  const Json type = spec["type"];
  if (type == "ClusterIP" || type == "NodePort" || type == "LoadBalancer") {
    Default(spec, "internalTrafficPolicy", "Cluster");
  }
  EachObject(spec, "ports", [](Json& port) {
    Default(port, "protocol", "TCP");
    if (port.contains("port")) Default(port, "targetPort", port["port"]);
  });
  if (spec.contains("clusterIP") && spec["clusterIP"].is_string()) {
    Default(spec, "clusterIPs", Json::array({spec["clusterIP"]}));
  }
}

void DeploymentDefaults(Json& spec) {
  Default(spec, "replicas", 1);
  Default(spec, "revisionHistoryLimit", 10);
  Default(spec, "progressDeadlineSeconds", 600);
  if (Json* strategy = ObjectField(spec, "strategy")) {
    Default(*strategy, "type", "RollingUpdate");
    if ((*strategy)["type"] == "RollingUpdate") {
      if (Json* rolling = ObjectField(*strategy, "rollingUpdate")) {
        Default(*rolling, "maxUnavailable", "25%");
        Default(*rolling, "maxSurge", "25%");
      }
    }
  }
  if (Json* tmpl = ObjectField(spec, "template")) {
    if (Json* pod = ObjectField(*tmpl, "spec")) PodSpecDefaults(*pod);
  }
}

// "spec.ingress[0].fro" -> "spec.ingress[0]" + "fro"; the paths the walk below builds.
std::string Child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void Drop(Json& node, const std::string& path, const std::set<std::string>& paths,
          std::vector<std::string>& found) {
  if (node.is_object()) {
    std::vector<std::string> keys;
    for (auto it = node.begin(); it != node.end(); ++it) keys.push_back(it.key());
    for (const std::string& key : keys) {
      const std::string child = Child(path, key);
      if (paths.contains(child)) {
        found.push_back(child);
        node.erase(key);
      } else {
        Drop(node[key], child, paths, found);
      }
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i)
      Drop(node[i], path + "[" + std::to_string(i) + "]", paths, found);
  }
}

void Unknown(const Json& object, const std::string& path, std::initializer_list<std::string_view> known,
             std::vector<std::string>& out) {
  if (!object.is_object()) return;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) == known.end()) out.push_back(Child(path, it.key()));
  }
}

// A string field's value; nullopt when absent or null, and `bad` set when it
// is something else.
std::optional<std::string> StringField(const Json& object, const char* key, bool& bad) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  if (!object[key].is_string()) {
    bad = true;
    return std::nullopt;
  }
  return object[key].get<std::string>();
}

// A list of strings' values (empty when absent or null); `bad` set when it is
// something else.
std::vector<std::string> StringList(const Json& object, const char* key, bool& bad) {
  std::vector<std::string> out;
  if (!object.contains(key) || object[key].is_null()) return out;
  if (!object[key].is_array()) {
    bad = true;
    return out;
  }
  for (const Json& e : object[key]) {
    if (!e.is_string()) {
      bad = true;
      return out;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

// A Service spec's fields in the registry's terms (its Go struct: a nil
// pointer, a nil slice).
struct ServiceIps {
  std::string type;
  std::string cluster_ip;
  std::vector<std::string> cluster_ips;
  std::optional<std::string> policy;
  std::vector<std::string> families;
  bool selector = false;
  bool bad = false;  // a field of the wrong type

  explicit ServiceIps(const Json& spec) {
    type = StringField(spec, "type", bad).value_or("");
    cluster_ip = StringField(spec, "clusterIP", bad).value_or("");
    cluster_ips = StringList(spec, "clusterIPs", bad);
    policy = StringField(spec, "ipFamilyPolicy", bad);
    families = StringList(spec, "ipFamilies", bad);
    selector = spec.contains("selector") && spec["selector"].is_object() && !spec["selector"].empty();
  }
  bool NeedsClusterIp() const { return type != "ExternalName"; }
  bool HeadlessWithoutSelector() const { return cluster_ip == "None" && !selector; }

  void WriteTo(Json& spec) const {
    const auto set = [&spec](const char* key, bool present, const Json& value) {
      if (present) {
        spec[key] = value;
      } else {
        spec.erase(key);
      }
    };
    set("clusterIP", !cluster_ip.empty(), cluster_ip);
    set("clusterIPs", !cluster_ips.empty(), cluster_ips);
    set("ipFamilyPolicy", policy.has_value(), policy.value_or(""));
    set("ipFamilies", !families.empty(), families);
  }
};

std::string OtherFamily(const std::string& family) {
  return family == "IPv4" ? "IPv6" : "IPv4";
}

FieldError Invalid(const std::string& field, const std::string& value, const std::string& detail) {
  return {field, "FieldValueInvalid", api::InvalidValue(api::Quote(value), detail)};
}

// initIPFamilyFields (with the stand-alone checks of ipFamilies and
// ipFamilyPolicy of ValidateServiceClusterIPsRelatedFields, which it runs
// first); the lab's Services have no cluster IP but "None", so the checks of
// addresses do not arise.
std::vector<FieldError> InitIpFamilies(ServiceIps& s, const ServiceIps* old,
                                       const std::vector<std::string>& cluster) {
  std::vector<FieldError> errors;
  if (!s.NeedsClusterIp()) return errors;
  const auto is_cluster_ip_type = [](const std::string& type) {
    return type == "ClusterIP" || type == "NodePort" || type == "LoadBalancer";
  };
  // A PreferDualStack Service whose addresses and families did not change
  // stays as it is, whatever the cluster has become.
  if (old != nullptr && s.policy.has_value() && old->type == s.type && is_cluster_ip_type(s.type) &&
      *s.policy == "PreferDualStack" && (!old->policy || *old->policy == "PreferDualStack") &&
      s.cluster_ips == old->cluster_ips && s.families == old->families) {
    return errors;
  }
  if (!s.policy) {
    if (old != nullptr && old->policy) {
      s.policy = old->policy;
    } else if (s.HeadlessWithoutSelector()) {
      s.policy = "RequireDualStack";
    } else {
      s.policy = "SingleStack";
    }
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < s.families.size(); ++i) {
    const std::string field = "spec.ipFamilies[" + std::to_string(i) + "]";
    if (s.families[i] != "IPv4" && s.families[i] != "IPv6") {
      errors.push_back({field, "FieldValueNotSupported",
                        api::UnsupportedValue(api::Quote(s.families[i]), {"IPv4", "IPv6"})});
    }
    if (!seen.insert(s.families[i]).second) {
      errors.push_back({field, "FieldValueDuplicate", api::DuplicateValue(api::Quote(s.families[i]))});
    }
  }
  if (*s.policy != "SingleStack" && *s.policy != "PreferDualStack" && *s.policy != "RequireDualStack") {
    errors.push_back({"spec.ipFamilyPolicy", "FieldValueNotSupported",
                      api::UnsupportedValue(api::Quote(*s.policy),
                                            {"PreferDualStack", "RequireDualStack", "SingleStack"})});
  }
  if (!errors.empty()) return errors;
  if (old != nullptr) {
    if (*s.policy == "SingleStack") {
      // Single-stack with the addresses and families unchanged: the
      // secondary ones are released.
      if (s.cluster_ips == old->cluster_ips && s.cluster_ips.size() > 1) s.cluster_ips.resize(1);
      if (s.families == old->families && s.families.size() > 1) s.families.resize(1);
    } else {
      if (!s.cluster_ips.empty() && s.cluster_ips.size() < old->cluster_ips.size()) {
        errors.push_back(Invalid("spec.ipFamilyPolicy", *s.policy,
                                 "must be 'SingleStack' to release the secondary cluster IP"));
      }
      if (!s.families.empty() && s.families.size() < old->families.size()) {
        errors.push_back(Invalid("spec.ipFamilyPolicy", *s.policy,
                                 "must be 'SingleStack' to release the secondary IP family"));
      }
    }
  }
  if (*s.policy == "SingleStack" && s.families.size() == 2) {
    errors.push_back(Invalid("spec.ipFamilyPolicy", *s.policy,
                             "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are "
                             "specified"));
  }
  if (!errors.empty()) return errors;
  const std::string primary = cluster.empty() ? "IPv4" : cluster.front();
  // Headless without selector: any family, on any cluster.
  if (s.HeadlessWithoutSelector()) {
    if (s.families.empty()) s.families.push_back(primary);
    if (s.families.size() < 2 && *s.policy != "SingleStack") s.families.push_back(OtherFamily(s.families[0]));
    return errors;
  }
  if (*s.policy == "RequireDualStack" && cluster.size() < 2) {
    errors.push_back(
        Invalid("spec.ipFamilyPolicy", *s.policy, "this cluster is not configured for dual-stack services"));
  }
  for (size_t i = 0; i < s.families.size(); ++i) {
    if (std::find(cluster.begin(), cluster.end(), s.families[i]) == cluster.end()) {
      errors.push_back(Invalid("spec.ipFamilies[" + std::to_string(i) + "]", s.families[i],
                               "not configured on this cluster"));
    }
  }
  if (!errors.empty()) return errors;
  if (s.families.empty()) s.families.push_back(primary);
  if (*s.policy != "SingleStack" && s.families.size() == 1 && cluster.size() == 2) {
    s.families.push_back(OtherFamily(s.families[0]));
  }
  return errors;
}

}  // namespace

std::vector<FieldError> SettleServiceIpFamilies(Json& service, const Json* old,
                                                const std::vector<std::string>& families) {
  Json* spec = service.is_object() && service.contains("spec") ? &service["spec"] : nullptr;
  if (spec == nullptr || !spec->is_object()) return {};
  ServiceIps s(*spec);
  std::optional<ServiceIps> before;
  if (old != nullptr && old->is_object() && old->contains("spec") && (*old)["spec"].is_object()) {
    before.emplace((*old)["spec"]);
  }
  if (s.bad || (before && before->bad)) return {};
  if (before) {
    // dropTypeDependentFields: turned into a type without cluster IPs, the
    // fields it had for them go unless the request changed them.
    if (before->NeedsClusterIp() && !s.NeedsClusterIp()) {
      if (s.cluster_ips == before->cluster_ips) {
        s.cluster_ip.clear();
        s.cluster_ips.clear();
      }
      if (s.families == before->families) s.families.clear();
      if (s.policy == before->policy) s.policy.reset();
    }
    // patchAllocatedValues: an update that leaves the cluster IPs out keeps them.
    if (before->NeedsClusterIp() && s.NeedsClusterIp()) {
      if (s.cluster_ip.empty()) s.cluster_ip = before->cluster_ip;
      if (s.cluster_ips.empty()) s.cluster_ips = before->cluster_ips;
    }
  } else if (!s.cluster_ip.empty() && s.cluster_ips.empty()) {
    s.cluster_ips = {s.cluster_ip};  // normalizeClusterIPs
  }
  std::vector<FieldError> errors = InitIpFamilies(s, before ? &*before : nullptr, families);
  if (errors.empty()) s.WriteTo(*spec);
  return errors;
}

std::vector<std::string> UnknownServiceFields(const Json& service) {
  std::vector<std::string> out;
  // Sorted keys: walked in the order the decoder meets them (kubectl sends
  // keys sorted), each level's unknown keys before its children's.
  if (!service.is_object()) return out;
  for (auto it = service.begin(); it != service.end(); ++it) {
    const std::string& key = it.key();
    if (key == "metadata") {
      Unknown(*it, "metadata",
              {"name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion",
               "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
               "ownerReferences", "finalizers", "managedFields", "selfLink"},
              out);
    } else if (key == "spec" && it->is_object()) {
      const Json& spec = *it;
      for (auto field = spec.begin(); field != spec.end(); ++field) {
        static constexpr std::string_view kSpec[] = {"ports",
                                                     "selector",
                                                     "clusterIP",
                                                     "clusterIPs",
                                                     "type",
                                                     "externalIPs",
                                                     "sessionAffinity",
                                                     "loadBalancerIP",
                                                     "loadBalancerSourceRanges",
                                                     "externalName",
                                                     "externalTrafficPolicy",
                                                     "healthCheckNodePort",
                                                     "publishNotReadyAddresses",
                                                     "sessionAffinityConfig",
                                                     "ipFamilies",
                                                     "ipFamilyPolicy",
                                                     "allocateLoadBalancerNodePorts",
                                                     "loadBalancerClass",
                                                     "internalTrafficPolicy",
                                                     "trafficDistribution"};
        if (std::find(std::begin(kSpec), std::end(kSpec), field.key()) == std::end(kSpec)) {
          out.push_back("spec." + field.key());
        } else if (field.key() == "ports" && field->is_array()) {
          for (size_t i = 0; i < field->size(); ++i) {
            Unknown((*field)[i], "spec.ports[" + std::to_string(i) + "]",
                    {"name", "protocol", "appProtocol", "port", "targetPort", "nodePort"}, out);
          }
        }
      }
    } else if (key != "apiVersion" && key != "kind" && key != "status") {
      out.push_back(key);
    }
  }
  return out;
}

void ApplyDefaults(const std::string& plural, Json& object, bool create) {
  if (!object.is_object()) return;
  if (plural == "namespaces") {
    if (Json* spec = ObjectField(object, "spec")) Default(*spec, "finalizers", Json::array({"kubernetes"}));
    return;
  }
  Json* spec = ObjectField(object, "spec");
  if (spec == nullptr) return;
  if (plural == "pods") {
    PodSpecDefaults(*spec);
    if (create) {
      // What a create's admission adds (ServiceAccount, Priority, the pod
      // registry's PrepareForCreate), without the token volume the lab has no
      // service accounts for.
      Default(*spec, "serviceAccountName", "default");
      Default(*spec, "serviceAccount", (*spec)["serviceAccountName"]);
      Default(*spec, "enableServiceLinks", true);
      Default(*spec, "priority", 0);
      Default(*spec, "preemptionPolicy", "PreemptLowerPriority");
      if (Json* status = ObjectField(object, "status")) Default(*status, "qosClass", QosClass(*spec));
    }
  } else if (plural == "deployments") {
    DeploymentDefaults(*spec);
  } else if (plural == "services") {
    ServiceDefaults(*spec);
  } else if (plural == "networkpolicies") {
    PolicyDefaults(*spec);
  }
}

std::vector<std::string> DropFields(Json& object, const std::set<std::string>& paths) {
  std::vector<std::string> found;
  if (!paths.empty()) Drop(object, "", paths, found);
  return found;
}

}  // namespace netpol::lab::internal
