// Patches as kubectl sends them: JSON merge patch (RFC 7386) and the strategic
// merge patch `kubectl apply` uses, for the lab's kinds.
//
//   Json merged = StrategicMerge(current, patch, "Service");  // ports merged by port, ...
//   Json plain = MergePatch(current, patch);                   // lists replaced
//
// Strategic merge follows the kind's schema (the patchStrategy and
// patchMergeKey tags of k8s.io/api): lists with a merge key merge element by
// element (a Pod's containers by name and their ports by containerPort, env by
// name, volumeMounts by mountPath; a Service's ports by port; volumes by name;
// conditions by type; ownerReferences by uid; ...); an element
// `{"$patch": "delete", <key>: ...}` removes one; lists of scalars with the
// merge strategy (finalizers, a Node's podCIDRs) merge as sets, less
// `$deleteFromPrimitiveList/<list>`; `$setElementOrder/<list>` orders the
// result; `$retainKeys` drops the fields it does not name. Every other list
// is replaced, as the API server does for lists without a strategy
// (NetworkPolicy rules among them), and so is every list of a kind the lab
// does not know. Not done: `$patch: replace` and `$patch: delete` on maps, and
// an element without its merge key, an error for the API server, is ignored.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace netpol::lab::internal {

using Json = nlohmann::json;

Json MergePatch(const Json& target, const Json& patch);
Json StrategicMerge(const Json& target, const Json& patch, const std::string& kind);

}  // namespace netpol::lab::internal
