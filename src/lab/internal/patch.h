// Patches as kubectl sends them: JSON merge patch (RFC 7386) and the strategic
// merge patch `kubectl apply` uses, for the lists our kinds have.
//
//   Json merged = StrategicMerge(current, patch);   // containers merged by name, ...
//   Json plain = MergePatch(current, patch);        // lists replaced
//
// Strategic merge: lists whose elements have a merge key (containers and
// initContainers by name, ports by containerPort, env by name, volumes by
// name, volumeMounts by mountPath) merge element by element; an element
// `{"$patch": "delete", <key>: ...}` removes one; `$setElementOrder/<list>`
// orders the result; `$retainKeys` and other directives are dropped. Every
// other list is replaced, as the API server does for lists without a strategy
// (NetworkPolicy rules among them).
#pragma once

#include <nlohmann/json.hpp>

namespace netpol::lab::internal {

using Json = nlohmann::json;

Json MergePatch(const Json& target, const Json& patch);
Json StrategicMerge(const Json& target, const Json& patch);

}  // namespace netpol::lab::internal
