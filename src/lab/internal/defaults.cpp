#include "lab/internal/defaults.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <string_view>

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

}  // namespace

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
