#include "cni/internal/registration_json.h"

#include <string>

namespace netpol::cni::internal {
namespace {

using nlohmann::json;

// A string field: `fallback` when absent (and not `required`); an error when
// it has another type.
Result<std::string> StringField(const json& j, const char* name, bool required) {
  const auto it = j.find(name);
  if (it == j.end()) {
    if (required) return InvalidArgument(std::string("invalid pod registration: no ") + name);
    return std::string();
  }
  if (!it->is_string())
    return InvalidArgument(std::string("invalid pod registration: ") + name + " is not a string");
  return it->get<std::string>();
}

}  // namespace

json RegistrationToJson(const PodRegistration& pod) {
  json ips = json::array();
  for (const IpAddress& ip : pod.ips) ips.push_back(ip.ToString());
  return {{"containerID", pod.owner.container_id},
          {"ifname", pod.owner.ifname},
          {"namespace", pod.pod_namespace},
          {"name", pod.pod_name},
          {"uid", pod.pod_uid},
          {"ips", ips},
          {"hostInterface", pod.host_interface},
          {"netns", pod.netns},
          {"chained", pod.chained}};
}

Result<PodRegistration> RegistrationFromJson(const json& j) {
  if (!j.is_object()) return InvalidArgument("invalid pod registration: not an object");
  PodRegistration pod;
  NETPOL_ASSIGN_OR_RETURN(pod.owner.container_id, StringField(j, "containerID", true), "");
  NETPOL_ASSIGN_OR_RETURN(pod.owner.ifname, StringField(j, "ifname", true), "");
  NETPOL_ASSIGN_OR_RETURN(pod.pod_namespace, StringField(j, "namespace", false), "");
  NETPOL_ASSIGN_OR_RETURN(pod.pod_name, StringField(j, "name", false), "");
  NETPOL_ASSIGN_OR_RETURN(pod.pod_uid, StringField(j, "uid", false), "");
  NETPOL_ASSIGN_OR_RETURN(pod.host_interface, StringField(j, "hostInterface", false), "");
  NETPOL_ASSIGN_OR_RETURN(pod.netns, StringField(j, "netns", false), "");
  const auto ips = j.find("ips");
  if (ips == j.end() || !ips->is_array())
    return InvalidArgument("invalid pod registration: ips is not a list");
  for (const json& ip : *ips) {
    if (!ip.is_string()) return InvalidArgument("invalid pod registration: an address is not a string");
    NETPOL_ASSIGN_OR_RETURN(IpAddress parsed, IpAddress::Parse(ip.get<std::string>()), "registration ips");
    pod.ips.push_back(parsed);
  }
  if (const auto chained = j.find("chained"); chained != j.end()) {
    if (!chained->is_boolean())
      return InvalidArgument("invalid pod registration: chained is not true or false");
    pod.chained = chained->get<bool>();
  }
  return pod;
}

}  // namespace netpol::cni::internal
