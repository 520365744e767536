#include "cni/registry.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cni/internal/registration_json.h"

namespace netpol::cni {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string PodsDir(const std::string& state_dir) {
  return state_dir + "/pods";
}

std::string FileOf(const std::string& state_dir, const Owner& owner) {
  return PodsDir(state_dir) + "/" + owner.container_id + "_" + owner.ifname + ".json";
}

}  // namespace

std::string EncodeRegistration(const PodRegistration& pod) {
  return internal::RegistrationToJson(pod).dump();
}

Result<PodRegistration> DecodeRegistration(const std::string& text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("invalid pod registration: not JSON");
  return internal::RegistrationFromJson(j);
}

Status Register(const std::string& state_dir, const PodRegistration& pod) {
  std::error_code ec;
  fs::create_directories(PodsDir(state_dir), ec);
  if (ec) return PermissionDenied("cannot create " + PodsDir(state_dir) + ": " + ec.message());
  const std::string path = FileOf(state_dir, pod.owner);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << EncodeRegistration(pod) << "\n";
    out.flush();
    if (!out) return PermissionDenied("cannot write " + temp);
  }
  fs::rename(temp, path, ec);
  if (ec) return PermissionDenied("cannot write " + path + ": " + ec.message());
  return Ok();
}

Status Unregister(const std::string& state_dir, const Owner& owner) {
  std::error_code ec;
  fs::remove(FileOf(state_dir, owner), ec);
  if (ec) return PermissionDenied("cannot remove " + FileOf(state_dir, owner) + ": " + ec.message());
  return Ok();
}

Result<std::vector<PodRegistration>> ListRegistrations(const std::string& state_dir) {
  std::vector<PodRegistration> out;
  std::error_code ec;
  if (!fs::exists(PodsDir(state_dir), ec)) return out;
  for (const auto& entry : fs::directory_iterator(PodsDir(state_dir), ec)) {
    if (entry.path().extension() != ".json") continue;  // skips half-written .tmp files
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    NETPOL_ASSIGN_OR_RETURN(PodRegistration pod, DecodeRegistration(text.str()), entry.path().string());
    out.push_back(std::move(pod));
  }
  if (ec) return PermissionDenied("cannot read " + PodsDir(state_dir) + ": " + ec.message());
  return out;
}

Result<PodRegistration> FindRegistration(const std::string& state_dir, const Owner& owner) {
  std::ifstream in(FileOf(state_dir, owner));
  if (!in) return NotFound("no registration for " + owner.container_id + "/" + owner.ifname);
  std::stringstream text;
  text << in.rdbuf();
  return DecodeRegistration(text.str());
}

}  // namespace netpol::cni
