#include "lab/internal/patch.h"

#include <algorithm>
#include <map>
#include <string>

namespace netpol::lab::internal {
namespace {

// The merge key of the lists that have one, by field name.
const std::map<std::string, std::string>& MergeKeys() {
  static const std::map<std::string, std::string> kKeys = {
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"ports", "containerPort"},
      {"env", "name"},
      {"volumes", "name"},
      {"volumeMounts", "mountPath"},
      {"imagePullSecrets", "name"},
  };
  return kKeys;
}

Json Strategic(const Json& target, const Json& patch);

Json MergeList(const Json& target, const Json& patch, const std::string& key, const Json* order) {
  Json out = target;
  for (const Json& item : patch) {
    if (!item.is_object() || !item.contains(key)) continue;
    const Json& id = item[key];
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const Json& e) { return e.is_object() && e.value(key, Json()) == id; });
    if (item.value("$patch", "") == "delete") {
      if (it != out.end()) out.erase(it);
      continue;
    }
    if (it != out.end()) {
      *it = Strategic(*it, item);
    } else {
      out.push_back(Strategic(Json::object(), item));
    }
  }
  if (order != nullptr && order->is_array()) {
    Json ordered = Json::array();
    for (const Json& o : *order) {
      const auto it = std::find_if(out.begin(), out.end(), [&](const Json& e) {
        return e.value(key, Json()) == o.value(key, Json());
      });
      if (it != out.end()) ordered.push_back(*it);
    }
    for (const Json& e : out) {
      if (std::find(ordered.begin(), ordered.end(), e) == ordered.end()) ordered.push_back(e);
    }
    out = ordered;
  }
  return out;
}

Json Strategic(const Json& target, const Json& patch) {
  if (!patch.is_object()) return patch;
  Json out = target.is_object() ? target : Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& field = it.key();
    if (field.rfind('$', 0) == 0) continue;  // directives
    const Json& value = it.value();
    if (value.is_null()) {
      out.erase(field);
      continue;
    }
    const auto key = MergeKeys().find(field);
    if (value.is_array() && key != MergeKeys().end() && out.contains(field) && out[field].is_array()) {
      const std::string order_field = "$setElementOrder/" + field;
      out[field] = MergeList(out[field], value, key->second,
                             patch.contains(order_field) ? &patch[order_field] : nullptr);
      continue;
    }
    if (value.is_array() && key != MergeKeys().end()) {
      Json clean = Json::array();
      for (const Json& e : value) {
        if (!(e.is_object() && e.value("$patch", "") == "delete"))
          clean.push_back(Strategic(Json::object(), e));
      }
      out[field] = clean;
      continue;
    }
    if (value.is_object()) {
      out[field] = Strategic(out.contains(field) ? out[field] : Json::object(), value);
      continue;
    }
    out[field] = value;
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

Json StrategicMerge(const Json& target, const Json& patch) {
  return Strategic(target, patch);
}

}  // namespace netpol::lab::internal
