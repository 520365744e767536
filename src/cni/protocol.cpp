#include "cni/protocol.h"

#include <nlohmann/json.hpp>

#include "cni/internal/registration_json.h"

namespace netpol::cni {
namespace {

using nlohmann::json;

constexpr std::string_view kOpNames[] = {"prepare", "stage", "add", "del", "check", "status"};

// `line` as a JSON object, without exceptions.
Result<json> ParseObject(std::string_view line, const char* what) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(std::string("unreadable ") + what + ": not JSON");
  if (!j.is_object()) return InvalidArgument(std::string("unreadable ") + what + ": not a JSON object");
  return j;
}

// A string field of `j`, "" when absent; an error when of another type.
Result<std::string> OptionalString(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end()) return std::string();
  if (!it->is_string()) return InvalidArgument(std::string(name) + " is not a string");
  return it->get<std::string>();
}

// Text that is not UTF-8 (a pod name from CNI_ARGS, an error message) is
// replaced, not thrown over: encoding never fails.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string_view OpName(AgentOp op) {
  return kOpNames[static_cast<size_t>(op)];
}

std::optional<AgentOp> ParseOp(std::string_view name) {
  for (size_t i = 0; i < std::size(kOpNames); ++i) {
    if (kOpNames[i] == name) return static_cast<AgentOp>(i);
  }
  return std::nullopt;
}

bool Answered(AgentOp op) {
  return op != AgentOp::kPrepare && op != AgentOp::kStage;
}

std::string EncodeRequest(const AgentRequest& request) {
  json j = {{"op", OpName(request.op)}};
  if (request.op == AgentOp::kPrepare) {
    j["namespace"] = request.pod_namespace;
    j["name"] = request.pod_name;
  }
  if (request.registration) j["registration"] = internal::RegistrationToJson(*request.registration);
  return Dump(j);
}

Result<AgentRequest> DecodeRequest(std::string_view line) {
  NETPOL_ASSIGN_OR_RETURN(const json j, ParseObject(line, "request"), "");
  NETPOL_ASSIGN_OR_RETURN(const std::string op, OptionalString(j, "op"), "request");
  AgentRequest request;
  const std::optional<AgentOp> parsed = ParseOp(op);
  if (!parsed) return InvalidArgument("unknown op " + op);
  request.op = *parsed;
  if (request.op == AgentOp::kPrepare) {
    NETPOL_ASSIGN_OR_RETURN(request.pod_namespace, OptionalString(j, "namespace"), "prepare");
    NETPOL_ASSIGN_OR_RETURN(request.pod_name, OptionalString(j, "name"), "prepare");
  }
  if (const auto reg = j.find("registration"); reg != j.end()) {
    NETPOL_ASSIGN_OR_RETURN(request.registration, internal::RegistrationFromJson(*reg), "");
  }
  const bool needs_registration = request.op != AgentOp::kPrepare && request.op != AgentOp::kStatus;
  if (needs_registration && !request.registration) {
    return InvalidArgument("invalid pod registration: \"" + op + "\" without one");
  }
  return request;
}

std::string EncodeReply(const AgentReply& reply) {
  json j = {{"ok", reply.ok}};
  if (!reply.ok || !reply.error.empty()) j["error"] = reply.error;
  return Dump(j);
}

Result<AgentReply> DecodeReply(std::string_view line) {
  NETPOL_ASSIGN_OR_RETURN(const json j, ParseObject(line, "answer from the node agent"), "");
  AgentReply reply;
  if (const auto ok = j.find("ok"); ok != j.end()) {
    if (!ok->is_boolean())
      return InvalidArgument("unreadable answer from the node agent: ok is not true or false");
    reply.ok = ok->get<bool>();
  }
  NETPOL_ASSIGN_OR_RETURN(reply.error, OptionalString(j, "error"), "unreadable answer from the node agent");
  return reply;
}

}  // namespace netpol::cni
