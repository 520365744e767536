// A pod as a real API server returns it (managedFields, owner references,
// tolerations, status conditions and container statuses; fields in the API's
// order), for the decoding benchmarks.
//
//   nlohmann::ordered_json pod = netpol::bench::RealisticPod(7);   // web-7 in ns-7
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace netpol::bench {

inline nlohmann::ordered_json RealisticPod(int i) {
  using Json = nlohmann::ordered_json;

  const std::string name = "web-" + std::to_string(i);
  const std::string ns = "ns-" + std::to_string(i % 100);
  const Json managed_fields = Json::array(
      {{{"manager", "kube-controller-manager"},
        {"operation", "Update"},
        {"apiVersion", "v1"},
        {"time", "2026-11-26T10:00:00Z"},
        {"fieldsType", "FieldsV1"},
        {"fieldsV1",
         {{"f:metadata",
           {{"f:generateName", Json::object()},
            {"f:labels",
             {{".", Json::object()}, {"f:app", Json::object()}, {"f:pod-template-hash", Json::object()}}},
            {"f:ownerReferences", {{".", Json::object()}, {"k:{\"uid\":\"6b9c\"}", Json::object()}}}}},
          {"f:spec",
           {{"f:containers",
             {{"k:{\"name\":\"web\"}", {{".", Json::object()}, {"f:image", Json::object()}}}}},
            {"f:dnsPolicy", Json::object()},
            {"f:restartPolicy", Json::object()}}}}}},
       {{"manager", "kubelet"},
        {"operation", "Update"},
        {"apiVersion", "v1"},
        {"time", "2026-11-26T10:00:05Z"},
        {"fieldsType", "FieldsV1"},
        {"subresource", "status"},
        {"fieldsV1", {{"f:status", {{"f:conditions", Json::object()}, {"f:podIP", Json::object()}}}}}}});
  return {
      {"metadata",
       {{"name", name},
        {"generateName", "web-6b9c8d7f5-"},
        {"namespace", ns},
        {"uid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f" + std::to_string(i % 10)},
        {"resourceVersion", std::to_string(100000 + i)},
        {"creationTimestamp", "2026-11-26T10:00:00Z"},
        {"labels", {{"app", "app-" + std::to_string(i % 40)}, {"pod-template-hash", "6b9c8d7f5"}}},
        {"annotations", {{"kubectl.kubernetes.io/restartedAt", "2026-11-26T09:59:00Z"}}},
        {"ownerReferences",
         {{{"apiVersion", "apps/v1"},
           {"kind", "ReplicaSet"},
           {"name", "web-6b9c8d7f5"},
           {"uid", "6b9c"},
           {"controller", true},
           {"blockOwnerDeletion", true}}}},
        {"managedFields", managed_fields}}},
      {"spec",
       {{"containers",
         {{{"name", "web"},
           {"image", "registry.example/web:1.2.3"},
           {"ports", {{{"name", "http"}, {"containerPort", 8080}, {"protocol", "TCP"}}}},
           {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
           {"env", {{{"name", "MODE"}, {"value", "production"}}}},
           {"terminationMessagePath", "/dev/termination-log"},
           {"imagePullPolicy", "IfNotPresent"}}}},
        {"restartPolicy", "Always"},
        {"terminationGracePeriodSeconds", 30},
        {"dnsPolicy", "ClusterFirst"},
        {"serviceAccountName", "default"},
        {"nodeName", "node-" + std::to_string(i % 20)},
        {"schedulerName", "default-scheduler"},
        {"tolerations",
         {{{"key", "node.kubernetes.io/not-ready"},
           {"operator", "Exists"},
           {"effect", "NoExecute"},
           {"tolerationSeconds", 300}}}}}},
      {"status",
       {{"phase", "Running"},
        {"conditions",
         {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2026-11-26T10:00:05Z"}},
          {{"type", "ContainersReady"}, {"status", "True"}, {"lastTransitionTime", "2026-11-26T10:00:05Z"}},
          {{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", "2026-11-26T10:00:00Z"}}}},
        {"hostIP", "198.18.255." + std::to_string(i % 20 + 1)},
        {"podIP", "198.19." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)},
        {"podIPs", {{{"ip", "198.19." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)}}}},
        {"startTime", "2026-11-26T10:00:00Z"},
        {"containerStatuses",
         {{{"name", "web"},
           {"ready", true},
           {"restartCount", 0},
           {"image", "registry.example/web:1.2.3"},
           {"imageID", "registry.example/web@sha256:0123456789abcdef"},
           {"containerID", "containerd://0123456789abcdef"},
           {"started", true},
           {"state", {{"running", {{"startedAt", "2026-11-26T10:00:04Z"}}}}}}}}}}};
}

}  // namespace netpol::bench
