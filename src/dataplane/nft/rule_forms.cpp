#include "dataplane/nft/rule_forms.h"

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

std::string InertTable(const std::string& table) {
  std::string out;
  out.reserve(table.size());
  size_t at = 0;
  while (at < table.size()) {
    size_t end = table.find('\n', at);
    end = end == std::string::npos ? table.size() : end + 1;
    const std::string_view line(table.data() + at, end - at);
    // A base chain's hook line ("type filter hook input ..."): none here.
    // (Sets' "type ipv4_addr" lines stay.)
    if (!line.starts_with("\t\ttype filter hook ")) out += line;
    at = end;
  }
  const std::string from = std::string("table ") + kTableFamily + " " + kTableName + " {";
  if (out.starts_with(from)) {
    out.replace(0, from.size(), std::string("table ") + kTableFamily + " " + kReferenceTableName + " {");
  }
  return out;
}

Result<RuleForms> ReferenceRuleForms(const NftOptions& options, const NftRunner& run) {
  const std::string table = InertTable(TableDefinition(RenderRuleset(ReferenceProgram(), options)));
  if (!table.starts_with(std::string("table ") + kTableFamily + " " + kReferenceTableName + " {")) {
    return Internal("the reference table is not named " + std::string(kReferenceTableName));
  }
  const std::string name = std::string(kTableFamily) + " " + kReferenceTableName;
  // One left by an agent that died here goes first (add: there either way).
  NETPOL_RETURN_IF_ERROR(run("add table " + name + "\ndelete table " + name + "\n" + table, false),
                         "building the reference rules");
  Result<std::string> listing = run("list table " + name, true);
  Result<std::string> deleted = run("delete table " + name, false);
  if (!listing) return std::move(listing).error().WithContext("listing the reference rules");
  if (!deleted) return std::move(deleted).error().WithContext("deleting the reference rules");
  NETPOL_ASSIGN_OR_RETURN(ObservedTable observed, ParseListing(*listing), "reading the reference rules");
  RuleForms forms;
  for (auto& [chain, rules] : observed.rule_forms) forms[ChainKind(chain)] = std::move(rules);
  return forms;
}

}  // namespace netpol::dataplane::nft
