// The conversation between netpol-cni and netpold on the agent's unix socket:
// one JSON object per line each way, typed here so that neither side builds
// or picks apart the text itself.
//
//   std::string line = EncodeRequest({.op = AgentOp::kAdd, .registration = pod});
//   Result<AgentRequest> request = DecodeRequest(line);     // the agent's side
//   std::string answer = EncodeReply({.ok = false, .error = "not synced yet"});
//   Result<AgentReply> reply = DecodeReply(answer);         // the plugin's side
//
// An ADD's connection carries "prepare" (the pod's identity: the agent starts
// reading its policies), "stage" (its registration once its addresses are
// known: the agent programs it), then "add" with the same registration, the
// only one answered. Other connections carry one answered request. Encoding
// never fails; decoding names what is wrong and never throws. The text is the
// one earlier versions spoke, so a plugin and an agent of different versions
// still understand each other during an upgrade.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "cni/registry.h"

namespace netpol::cni {

enum class AgentOp : uint8_t {
  kPrepare,  // the pod's identity, before anything is allocated (not answered)
  kStage,    // its registration, before it is wired (not answered)
  kAdd,      // attach it; answered once its rules are in force
  kDel,      // detach the attachment named
  kCheck,    // answered once the rules in force are the current ones
  kStatus,   // whether the agent has synced (the plugin's STATUS)
};

// "prepare", "stage", "add", "del", "check", "status".
std::string_view OpName(AgentOp op);
std::optional<AgentOp> ParseOp(std::string_view name);
// Whether the agent answers a request of `op`.
bool Answered(AgentOp op);

struct AgentRequest {
  AgentOp op = AgentOp::kStatus;
  // kPrepare: the pod.
  std::string pod_namespace{};
  std::string pod_name{};
  // kStage, kAdd, kDel, kCheck: the attachment (required); kStatus: none.
  std::optional<PodRegistration> registration{};
  friend bool operator==(const AgentRequest&, const AgentRequest&) = default;
};

struct AgentReply {
  bool ok = false;
  std::string error{};  // why not, when !ok
  friend bool operator==(const AgentReply&, const AgentReply&) = default;
};

// One line, without its newline (JSON escapes any newline in the values).
std::string EncodeRequest(const AgentRequest& request);
Result<AgentRequest> DecodeRequest(std::string_view line);
std::string EncodeReply(const AgentReply& reply);
Result<AgentReply> DecodeReply(std::string_view line);

}  // namespace netpol::cni
