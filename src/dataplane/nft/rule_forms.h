// What the rules of netpol's chains must be, for the periodic read-back to
// compare rule contents and not only their counts: a rule edited in place,
// or deleted and replaced by another, leaves the count as it was.
//
//   Result<RuleForms> want = ReferenceRuleForms(options);        // once
//   ObservedTable have = ParseListing(json);                     // every check
//   for (const auto& [chain, forms] : have.rule_forms)
//     if (forms != want->at(ChainKind(chain))) ...               // changed behind us
//
// A rule's form is its expressions and comment as the kernel lists them (JSON),
// with counters' values dropped and, in class and group chains, the chain's
// own name (which prefixes the names of its sets) replaced by "@self": all
// group chains of one direction and family have equal forms, and so have all
// tier class chains of one tier, direction and family. The reference is what
// this kernel lists for a table rendered with the same options, built fresh
// for the purpose (so no form is learned from a table someone else may have
// edited, and a restarted agent adopting its table checks it): table
// `inet netpol_reference`, its chains without hooks (no packet ever passes
// them), created, listed and deleted in the node's namespace. netpold needs
// nothing for it but the CAP_NET_ADMIN it programs with (the DaemonSet grants
// no CAP_SYS_ADMIN, so no namespace of its own).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {

// Chain kind -> the forms of its rules, in order.
using RuleForms = std::map<std::string, std::vector<std::string>>;

// "in_np_g*_v4" for group chains, "in_admin_c*_v4" (and friends) for tier
// class chains; any other chain is a kind of its own: its name.
std::string ChainKind(std::string_view chain);

// `rule` (a rule's JSON, counters already zeroed) with the name of its class
// or group chain replaced by "@self"; as it is for other chains.
std::string SelfNamed(std::string_view chain, std::string rule);

// Runs nft commands where the table is (`json`: the output as JSON).
using NftRunner = std::function<Result<std::string>(const std::string& commands, bool json)>;

inline constexpr const char* kReferenceTableName = "netpol_reference";

// The forms of every chain kind a table rendered with `options` can have,
// read from the reference table built, listed and deleted through `run`.
[[nodiscard]] Result<RuleForms> ReferenceRuleForms(const NftOptions& options, const NftRunner& run);

// The reference table's text: `table` (TableDefinition of the reference
// program) under kReferenceTableName, its base chains' hook lines left out.
std::string InertTable(const std::string& table);

}  // namespace netpol::dataplane::nft
