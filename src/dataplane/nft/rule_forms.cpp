#include "dataplane/nft/rule_forms.h"

#include <nftables/libnftables.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "dataplane/nft/nft_backend.h"

namespace netpol::dataplane::nft {

namespace {

// A pod isolated both ways in both families, with a NetworkPolicy group and
// Admin tier decisions, and a pod not isolated, with both tiers' decisions:
// every chain kind exists.
policy::NodeProgram ReferenceProgram() {
  std::vector<policy::DecisionBox> boxes;
  for (const char* peer : {"198.18.0.9", "2001:2::9"}) {
    const IpAddress ip = *IpAddress::Parse(peer);
    boxes.push_back({{ip, ip}, 0, 255, 0, 65535, policy::TierAction::kDeny, "reference"});
  }
  const policy::TierDecisions tier(boxes);
  policy::DirectionProgram isolated;
  isolated.admin = tier;
  isolated.isolated = true;
  isolated.allow.push_back({std::nullopt, {{api::Protocol::kTCP, 80, 80}}, "reference"});
  policy::DirectionProgram open;
  open.admin = tier;
  open.baseline = tier;
  policy::NodeProgram program;
  program.pods["reference/isolated"] = {
      {*IpAddress::Parse("198.18.0.1"), *IpAddress::Parse("2001:2::1")}, "ref0", isolated, isolated, false};
  program.pods["reference/open"] = {
      {*IpAddress::Parse("198.18.0.2"), *IpAddress::Parse("2001:2::2")}, "ref1", open, open, false};
  return program;
}

// Runs `commands`, then `listing` (one run would list what its cache held
// before the commands), in a network namespace made for this call: a thread
// of its own unshares it (namespaces are per thread), and it goes with the
// thread. The listing's output.
Result<std::string> RunInPrivateNamespace(const std::string& commands, const std::string& listing) {
  Result<std::string> out = Internal("not run");
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      out = FailedPrecondition(std::string("cannot make a network namespace for the reference rules: ") +
                               std::strerror(errno));
      return;
    }
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == nullptr) {
      out = Internal("cannot create a libnftables context");
      return;
    }
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    if (nft_run_cmd_from_buffer(ctx, commands.c_str()) != 0 ||
        nft_run_cmd_from_buffer(ctx, listing.c_str()) != 0) {
      const char* err = nft_ctx_get_error_buffer(ctx);
      out = Internal(std::string("the reference table was rejected: ") + (err != nullptr ? err : ""));
    } else {
      const char* text = nft_ctx_get_output_buffer(ctx);
      out = std::string(text != nullptr ? text : "");
    }
    nft_ctx_free(ctx);
  }).join();
  return out;
}

}  // namespace

std::string ChainKind(std::string_view chain) {
  if (GroupIdOf(chain))
    return std::string(chain.substr(0, 7)) + "*" + std::string(chain.substr(chain.size() - 3));
  if (const std::optional<std::string> owner = TierClassOf(chain); owner && *owner == chain) {
    // "in_admin_c" + 16 hex digits + "_v4"
    return std::string(chain.substr(0, chain.size() - 19)) + "*" +
           std::string(chain.substr(chain.size() - 3));
  }
  return std::string(chain);
}

std::string SelfNamed(std::string_view chain, std::string rule) {
  if (ChainKind(chain) == chain) return rule;
  for (size_t at = rule.find(chain); at != std::string::npos; at = rule.find(chain, at + 5)) {
    rule.replace(at, chain.size(), "@self");
  }
  return rule;
}

Result<RuleForms> ReferenceRuleForms(const NftOptions& options) {
  const std::string table = TableDefinition(RenderRuleset(ReferenceProgram(), options));
  NETPOL_ASSIGN_OR_RETURN(
      const std::string listing,
      RunInPrivateNamespace(table, "list table " + std::string(kTableFamily) + " " + std::string(kTableName)),
      "building the reference rules");
  NETPOL_ASSIGN_OR_RETURN(ObservedTable observed, ParseListing(listing), "reading the reference rules");
  RuleForms forms;
  for (auto& [chain, rules] : observed.rule_forms) forms[ChainKind(chain)] = std::move(rules);
  return forms;
}

}  // namespace netpol::dataplane::nft
