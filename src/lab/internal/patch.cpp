#include "lab/internal/patch.h"

#include <algorithm>
#include <map>
#include <string>

namespace netpol::lab::internal {
namespace {

// A field of a kind's schema, as strategic merge sees it: the type of its
// value (of its elements, for a list) and, for a list with patch strategy
// "merge", its merge key (empty for a list of scalars merged as a set).
struct Field {
  const char* type = nullptr;  // nullptr: nothing below it has a strategy
  bool merge = false;          // a list with patchStrategy "merge"
  const char* key = "";        // its patchMergeKey
};
using Type = std::map<std::string, Field>;

// The struct tags (patchStrategy, patchMergeKey) of k8s.io/api v0.34 for the
// kinds the lab serves and the types under them that have any. A list not
// here is replaced whole (NetworkPolicy rules, tolerations, a Service's
// externalIPs, a container's args among them).
const std::map<std::string, Type>& Schema() {
  static const std::map<std::string, Type> kSchema = {
      // apimachinery meta/v1
      {"ObjectMeta", {{"ownerReferences", {nullptr, true, "uid"}}, {"finalizers", {nullptr, true, ""}}}},
      // core/v1
      {"Pod", {{"metadata", {"ObjectMeta"}}, {"spec", {"PodSpec"}}, {"status", {"PodStatus"}}}},
      {"PodTemplateSpec", {{"metadata", {"ObjectMeta"}}, {"spec", {"PodSpec"}}}},
      {"PodSpec",
       {{"volumes", {nullptr, true, "name"}},
        {"initContainers", {"Container", true, "name"}},
        {"containers", {"Container", true, "name"}},
        {"ephemeralContainers", {"Container", true, "name"}},
        {"imagePullSecrets", {nullptr, true, "name"}},
        {"hostAliases", {nullptr, true, "ip"}},
        {"topologySpreadConstraints", {nullptr, true, "topologyKey"}},
        {"schedulingGates", {nullptr, true, "name"}},
        {"resourceClaims", {nullptr, true, "name"}}}},
      {"Container",
       {{"ports", {nullptr, true, "containerPort"}},
        {"env", {nullptr, true, "name"}},
        {"volumeMounts", {nullptr, true, "mountPath"}},
        {"volumeDevices", {nullptr, true, "devicePath"}}}},
      {"PodStatus",
       {{"conditions", {nullptr, true, "type"}},
        {"hostIPs", {nullptr, true, "ip"}},
        {"podIPs", {nullptr, true, "ip"}},
        {"resourceClaimStatuses", {nullptr, true, "name"}}}},
      {"Service", {{"metadata", {"ObjectMeta"}}, {"spec", {"ServiceSpec"}}, {"status", {"Conditions"}}}},
      // A Service's ports merge by port alone (the tag; server-side apply's
      // keys are port and protocol).
      {"ServiceSpec", {{"ports", {nullptr, true, "port"}}}},
      {"Conditions", {{"conditions", {nullptr, true, "type"}}}},
      {"Namespace", {{"metadata", {"ObjectMeta"}}, {"status", {"Conditions"}}}},
      {"Node", {{"metadata", {"ObjectMeta"}}, {"spec", {"NodeSpec"}}, {"status", {"NodeStatus"}}}},
      {"NodeSpec", {{"podCIDRs", {nullptr, true, ""}}}},
      {"NodeStatus", {{"conditions", {nullptr, true, "type"}}, {"addresses", {nullptr, true, "type"}}}},
      // apps/v1
      {"Deployment",
       {{"metadata", {"ObjectMeta"}}, {"spec", {"DeploymentSpec"}}, {"status", {"Conditions"}}}},
      {"DeploymentSpec", {{"template", {"PodTemplateSpec"}}}},
      // networking.k8s.io/v1: no list of a NetworkPolicy has a strategy.
      {"NetworkPolicy", {{"metadata", {"ObjectMeta"}}}},
  };
  return kSchema;
}

const Type* FindType(const char* name) {
  if (name == nullptr) return nullptr;
  const auto it = Schema().find(name);
  return it == Schema().end() ? nullptr : &it->second;
}

const Field* FindField(const Type* type, const std::string& name) {
  if (type == nullptr) return nullptr;
  const auto it = type->find(name);
  return it == type->end() ? nullptr : &it->second;
}

bool IsDelete(const Json& item) {
  return item.is_object() && item.value("$patch", "") == "delete";
}

Json Strategic(const Json& target, const Json& patch, const Type* type);

// Orders a merged list as $setElementOrder/<list> says: the elements it names
// first, in its order, then the others as they were.
Json Ordered(const Json& list, const Json& order, const std::string& key) {
  auto same = [&](const Json& e, const Json& o) {
    return key.empty() ? e == o
                       : e.is_object() && o.is_object() && e.value(key, Json()) == o.value(key, Json());
  };
  Json ordered = Json::array();
  for (const Json& o : order) {
    const auto it = std::find_if(list.begin(), list.end(), [&](const Json& e) { return same(e, o); });
    if (it != list.end()) ordered.push_back(*it);
  }
  for (const Json& e : list) {
    if (std::find(ordered.begin(), ordered.end(), e) == ordered.end()) ordered.push_back(e);
  }
  return ordered;
}

// A list of objects merged element by element on the field's merge key.
Json MergeList(const Json& target, const Json& patch, const Field& field) {
  const std::string key = field.key;
  const Type* element = FindType(field.type);
  Json out = target;
  for (const Json& item : patch) {
    if (!item.is_object() || !item.contains(key)) continue;
    const Json& id = item[key];
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const Json& e) { return e.is_object() && e.value(key, Json()) == id; });
    if (IsDelete(item)) {
      if (it != out.end()) out.erase(it);
      continue;
    }
    if (it != out.end()) {
      *it = Strategic(*it, item, element);
    } else {
      out.push_back(Strategic(Json::object(), item, element));
    }
  }
  return out;
}

// A list of scalars merged as a set: the patch's values added, those of
// $deleteFromPrimitiveList/<list> removed.
Json MergeSet(const Json& target, const Json& patch, const Json* deleted) {
  Json out = target;
  for (const Json& v : patch) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (deleted != nullptr && deleted->is_array()) {
    Json kept = Json::array();
    for (const Json& v : out) {
      if (std::find(deleted->begin(), deleted->end(), v) == deleted->end()) kept.push_back(v);
    }
    out = kept;
  }
  return out;
}

Json Strategic(const Json& target, const Json& patch, const Type* type) {
  if (!patch.is_object()) return patch;
  Json out = target.is_object() ? target : Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& name = it.key();
    if (name.rfind('$', 0) == 0) continue;  // directives
    const Json& value = it.value();
    if (value.is_null()) {
      out.erase(name);
      continue;
    }
    const Field* field = FindField(type, name);
    if (value.is_array() && field != nullptr && field->merge) {
      const Json current = out.contains(name) && out[name].is_array() ? out[name] : Json::array();
      Json merged;
      if (*field->key == '\0') {
        const std::string deletions = "$deleteFromPrimitiveList/" + name;
        merged = MergeSet(current, value, patch.contains(deletions) ? &patch[deletions] : nullptr);
      } else {
        merged = MergeList(current, value, *field);
      }
      const std::string order = "$setElementOrder/" + name;
      if (patch.contains(order) && patch[order].is_array())
        merged = Ordered(merged, patch[order], field->key);
      out[name] = merged;
      continue;
    }
    if (value.is_object()) {
      out[name] = Strategic(out.contains(name) ? out[name] : Json::object(), value,
                            FindType(field != nullptr ? field->type : nullptr));
      continue;
    }
    out[name] = value;
  }
  // A list of scalars may lose values without the patch naming the list.
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string prefix = "$deleteFromPrimitiveList/";
    if (it.key().rfind(prefix, 0) != 0) continue;
    const std::string name = it.key().substr(prefix.size());
    const Field* field = FindField(type, name);
    if (field == nullptr || !field->merge || *field->key != '\0' || patch.contains(name)) continue;
    if (out.contains(name) && out[name].is_array())
      out[name] = MergeSet(out[name], Json::array(), &it.value());
  }
  // $retainKeys (a volume's source, a Deployment's strategy): the fields it
  // does not name go.
  if (patch.contains("$retainKeys") && patch["$retainKeys"].is_array()) {
    const Json& retain = patch["$retainKeys"];
    for (auto it = out.begin(); it != out.end();) {
      if (std::find(retain.begin(), retain.end(), it.key()) == retain.end()) {
        it = out.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

}  // namespace

Json MergePatch(const Json& target, const Json& patch) {
  if (!patch.is_object()) return patch;
  Json out = target.is_object() ? target : Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      out.erase(it.key());
    } else {
      out[it.key()] = MergePatch(out.contains(it.key()) ? out[it.key()] : Json(), it.value());
    }
  }
  return out;
}

Json StrategicMerge(const Json& target, const Json& patch, const std::string& kind) {
  return Strategic(target, patch, FindType(kind.c_str()));
}

}  // namespace netpol::lab::internal
