#include "dataplane/nft/nft_backend.h"

#include <nftables/libnftables.h>

#include <algorithm>
#include <chrono>
#include <set>

#include <nlohmann/json.hpp>

#include "base/netns.h"
#include "dataplane/nflog.h"

namespace netpol::dataplane::nft {
namespace {

using nlohmann::json;

const std::string kTable = std::string(kTableFamily) + " " + kTableName;

// A number of a listing: a protocol as a name or a number, a port.
Result<FieldValue> NumberOf(const json& v, FieldKind kind) {
  if (v.is_number_unsigned()) return FieldValue{v.get<uint64_t>()};
  if (kind == FieldKind::kProto && v.is_string()) {
    const std::string name = v.get<std::string>();
    if (name == "tcp") return FieldValue{6};
    if (name == "udp") return FieldValue{17};
    if (name == "sctp") return FieldValue{132};
  }
  return InvalidArgument("not a number: " + v.dump());
}

Result<IpAddress> AddressOf(const json& v, FieldKind kind) {
  if (!v.is_string()) return InvalidArgument("not an address: " + v.dump());
  NETPOL_ASSIGN_OR_RETURN(IpAddress ip, IpAddress::Parse(v.get<std::string>()), "reading an address");
  if (ip.is_v4() != (kind == FieldKind::kIpv4)) return InvalidArgument("an address of the other family");
  return ip;
}

// One field of a listed element, typed by its set's type: a value, a range
// or (addresses) a prefix. An ifname's name views into `v`.
Result<Field> FieldOf(const json& v, FieldKind kind) {
  const bool address = kind == FieldKind::kIpv4 || kind == FieldKind::kIpv6;
  if (kind == FieldKind::kIfname) {
    if (!v.is_string()) return InvalidArgument("not an interface name: " + v.dump());
    return Field::Ifname(v.get_ref<const std::string&>());
  }
  if (v.is_object() && v.contains("prefix") && address) {
    const json& p = v["prefix"];
    NETPOL_ASSIGN_OR_RETURN(IpAddress first, AddressOf(p.at("addr"), kind), "reading a field");
    NETPOL_ASSIGN_OR_RETURN(IpPrefix prefix, IpPrefix::Make(first, p.at("len").get<int>()),
                            "reading a field");
    // The last address of the prefix: every host bit set.
    const int host_bits = first.bits() - prefix.length();
    const FieldValue host = host_bits == 0 ? 0 : (~FieldValue{0} >> (128 - host_bits));
    Field f = Field::Address(prefix.address());
    f.last = f.first | host;
    return f;
  }
  if (v.is_object() && v.contains("range")) {
    const json& r = v["range"];
    if (address) {
      NETPOL_ASSIGN_OR_RETURN(IpAddress first, AddressOf(r.at(0), kind), "reading a field");
      NETPOL_ASSIGN_OR_RETURN(IpAddress last, AddressOf(r.at(1), kind), "reading a field");
      return Field::Addresses(first, last);
    }
    NETPOL_ASSIGN_OR_RETURN(FieldValue first, NumberOf(r.at(0), kind), "reading a field");
    NETPOL_ASSIGN_OR_RETURN(FieldValue last, NumberOf(r.at(1), kind), "reading a field");
    return Field{kind, first, last, {}};
  }
  if (address) {
    NETPOL_ASSIGN_OR_RETURN(IpAddress ip, AddressOf(v, kind), "reading a field");
    return Field::Address(ip);
  }
  NETPOL_ASSIGN_OR_RETURN(FieldValue n, NumberOf(v, kind), "reading a field");
  return Field{kind, n, n, {}};
}

// A listed element's key of `kinds` (an interval set's when `ranged`).
Result<Element> ElementFromJson(const json& value, const std::vector<FieldKind>& kinds, bool ranged) {
  Field fields[Element::kMaxFields];
  const bool concat = value.is_object() && value.contains("concat");
  const size_t n = concat ? value["concat"].size() : 1;
  if (n != kinds.size()) return InvalidArgument("element " + value.dump() + " does not fit the set type");
  for (size_t i = 0; i < n; ++i) {
    NETPOL_ASSIGN_OR_RETURN(fields[i], FieldOf(concat ? value["concat"][i] : value, kinds[i]),
                            "reading element " + value.dump());
  }
  return Element::Of(std::span<const Field>(fields, n), ranged);
}

// Counter statements' packets and bytes set to 0: they change with traffic.
void ZeroCounters(json& v) {
  if (v.is_array()) {
    for (json& e : v) ZeroCounters(e);
  } else if (v.is_object()) {
    for (auto& [key, value] : v.items()) {
      if (key == "counter" && value.is_object()) {
        value["packets"] = 0;
        value["bytes"] = 0;
      } else {
        ZeroCounters(value);
      }
    }
  }
}

// A verdict map element's value: {"goto": {"target": "chain"}}, {"accept": null}.
Element WithVerdict(Element key, const json& v) {
  if (!v.is_object() || v.empty()) return key;
  const auto it = v.begin();
  const std::optional<Verdict> verdict = VerdictNamed(it.key());
  if (!verdict) return key;
  const bool chain = it->is_object() && it->contains("target");
  return std::move(key).To(*verdict, chain ? (*it)["target"].get_ref<const std::string&>() : std::string());
}

}  // namespace

Result<ObservedTable> ParseListing(const std::string& text, std::string_view only_table) {
  ObservedTable table;
  try {
    const json doc = json::parse(text);
    for (const json& item : doc.at("nftables")) {
      if (!only_table.empty()) {
        if (!item.is_object() || item.empty()) continue;
        // A table names itself "name"; its chains, rules and sets, "table".
        const json& object = item.contains("table") ? item["table"] : item.begin().value();
        const char* const key = item.contains("table") ? "name" : "table";
        if (!object.is_object() || !object.contains(key) || object[key] != only_table) continue;
      }
      if (item.contains("table")) table.exists = true;
      if (item.contains("chain")) table.chains.push_back(item["chain"].at("name").get<std::string>());
      if (item.contains("rule")) {
        const json& rule = item["rule"];
        const std::string chain = rule.at("chain").get<std::string>();
        ++table.rules[chain];
        json form = json::object();
        if (rule.contains("comment")) form["comment"] = rule["comment"];
        form["expr"] = rule.contains("expr") ? rule["expr"] : json::array();
        ZeroCounters(form);
        table.rule_forms[chain].push_back(SelfNamed(chain, form.dump()));
      }
      if (!item.contains("set") && !item.contains("map")) continue;
      const bool map = item.contains("map");
      const json& set = map ? item["map"] : item["set"];
      ObservedSet observed;
      std::vector<std::string> types;
      if (set.at("type").is_array()) {
        for (const json& t : set["type"]) types.push_back(t.get<std::string>());
      } else {
        types.push_back(set["type"].get<std::string>());
      }
      for (size_t i = 0; i < types.size(); ++i) observed.type += (i ? " . " : "") + types[i];
      if (map) observed.type += " : " + set.value("map", std::string());
      if (set.contains("flags")) {
        for (const json& f : set["flags"]) observed.interval = observed.interval || f == "interval";
      }
      if (set.contains("stmt")) {
        for (const json& s : set["stmt"]) observed.counter = observed.counter || s.contains("counter");
      }
      if (set.contains("comment")) observed.comment = set["comment"].get<std::string>();
      // A set of a type netpol never makes is someone else's (or of another
      // shape): it is found by its name or type, its elements are not read.
      Result<std::vector<FieldKind>> kinds = KindsOf(observed.type);
      if (set.contains("elem") && kinds) {
        for (const json& item_or_pair : set["elem"]) {
          // A map element is [key, value].
          const json& e = map ? item_or_pair.at(0) : item_or_pair;
          const bool wrapped = e.is_object() && e.contains("elem");
          const json& value = wrapped ? e["elem"].at("val") : e;
          NETPOL_ASSIGN_OR_RETURN(Element element, ElementFromJson(value, *kinds, observed.interval),
                                  "set " + set.at("name").get<std::string>());
          if (map) element = WithVerdict(std::move(element), item_or_pair.at(1));
          uint64_t packets = 0;
          if (wrapped && e["elem"].contains("counter"))
            packets = e["elem"]["counter"].value("packets", uint64_t{0});
          observed.elements[element] = packets;
        }
      }
      table.sets[set.at("name").get<std::string>()] = std::move(observed);
    }
  } catch (const json::exception& e) {
    return Internal(std::string("cannot read the nftables listing: ") + e.what());
  }
  return table;
}

std::map<std::string, size_t> RuleCounts(const NftRuleset& ruleset) {
  std::map<std::string, size_t> counts;
  const auto count = [&](const std::string& chain) {
    size_t& n = counts[chain.substr(6, chain.find(' ', 6) - 6)];  // "chain NAME {"
    const std::string_view text = chain;
    for (size_t at = text.find('\n'); at != std::string_view::npos; at = text.find('\n', at + 1)) {
      const std::string_view line = text.substr(at + 1);
      if (line.starts_with("\t\t") && !line.starts_with("\t\ttype ")) ++n;
    }
  };
  for (const std::string& chain : ruleset.chains) count(chain);
  for (const auto& [name, c] : ruleset.classes) count(c.definition);
  return counts;
}

namespace {

// The sets or maps of a class or group chain.
std::vector<std::string> SharedSets(const std::string& chain) {
  if (GroupIdOf(chain)) return GroupSetNames(chain);
  return {chain + "_port", chain + "_all"};
}

bool SameShape(const NftSet& want, const ObservedSet& have) {
  // The schema and options ride in the set comments: another comment means
  // another layout or log group.
  return have.type == want.type && have.interval == want.interval && have.counter == want.counter &&
         have.comment == want.comment && !have.unreadable;
}

}  // namespace

std::string PlanCommands(const NftRuleset& desired, const ObservedTable& observed, ApplyStats& stats,
                         bool rebuild) {
  bool same_shape = observed.exists && !rebuild;
  const std::map<std::string, size_t> counts = RuleCounts(desired);
  // Class chains the table has that are not wanted any more (deleted after
  // the element edits), and the wanted ones it lacks (created before).
  std::vector<std::string> removed;
  std::vector<const TierClass*> added;
  if (same_shape) {
    std::vector<std::string> want_chains;
    for (const std::string& chain : desired.chains) {
      want_chains.push_back(chain.substr(6, chain.find(' ', 6) - 6));  // "chain NAME {"
    }
    std::vector<std::string> have_chains;
    for (const std::string& chain : observed.chains) {
      if (!TierClassOf(chain)) {
        have_chains.push_back(chain);
      } else if (!desired.classes.contains(chain)) {
        removed.push_back(chain);
      }
    }
    for (const std::string& chain : removed) {
      for (const std::string& set : SharedSets(chain)) same_shape = same_shape && observed.sets.contains(set);
    }
    std::sort(want_chains.begin(), want_chains.end());
    std::sort(have_chains.begin(), have_chains.end());
    size_t static_sets = 0;
    for (const auto& [name, set] : observed.sets) {
      const std::optional<std::string> owner = TierClassOf(name);
      if (!owner) {
        ++static_sets;
        continue;
      }
      // A class map without its chain: left by hand, or a half-made class.
      const bool chain_there =
          std::find(observed.chains.begin(), observed.chains.end(), *owner) != observed.chains.end();
      same_shape = same_shape && chain_there;
    }
    same_shape = same_shape && want_chains == have_chains && static_sets == desired.sets.size();
    // A rule deleted or added (by someone else) changes its chain's count.
    for (const auto& [chain, count] : counts) {
      const auto it = observed.rules.find(chain);
      if (desired.classes.contains(chain) &&
          std::find(observed.chains.begin(), observed.chains.end(), chain) == observed.chains.end()) {
        added.push_back(&desired.classes.at(chain));
        continue;
      }
      same_shape = same_shape && (it == observed.rules.end() ? 0 : it->second) == count;
    }
    for (const NftSet& set : desired.sets) {
      const auto it = observed.sets.find(set.name);
      same_shape = same_shape && it != observed.sets.end() && SameShape(set, it->second);
    }
    for (const auto& [name, c] : desired.classes) {
      if (std::find(observed.chains.begin(), observed.chains.end(), name) == observed.chains.end()) continue;
      for (const NftSet& map : c.maps) {
        const auto it = observed.sets.find(map.name);
        same_shape = same_shape && it != observed.sets.end() && SameShape(map, it->second);
      }
    }
  }
  if (!same_shape) {
    stats.created = true;
    for (const NftSet& set : desired.sets) stats.added += set.elements.size();
    for (const auto& [name, c] : desired.classes) {
      for (const NftSet& map : c.maps) stats.added += map.elements.size();
    }
    // Deleting and re-adding in one transaction replaces the table atomically.
    return (observed.exists ? "delete table " + kTable + "\n" : std::string()) + TableDefinition(desired);
  }
  ElementEdits edits;
  const auto edit = [&](const NftSet& set) {
    const ObservedSet& have = observed.sets.at(set.name);
    for (const auto& [element, packets] : have.elements) {
      if (set.elements.contains(element)) continue;
      edits.Delete(set.name, element);
      ++stats.removed;
    }
    for (const auto& [element, origin] : set.elements) {
      if (have.elements.contains(element)) continue;
      edits.Add(set.name, element, origin);
      ++stats.added;
    }
  };
  for (const NftSet& set : desired.sets) edit(set);
  for (const auto& [name, c] : desired.classes) {
    if (std::find(added.begin(), added.end(), &c) != added.end()) {
      for (const NftSet& map : c.maps) stats.added += map.elements.size();
      continue;
    }
    for (const NftSet& map : c.maps) edit(map);
  }
  for (const std::string& chain : removed) {
    for (const std::string& map : SharedSets(chain)) {
      if (const auto it = observed.sets.find(map); it != observed.sets.end())
        stats.removed += it->second.elements.size();
    }
  }
  if (added.empty() && removed.empty()) return edits.Commands();
  return ClassCommands(added, {}) + edits.Commands() + ClassCommands({}, removed);
}

// A libnftables context. One made per listing: libnftables keeps the ruleset
// it read (every element of every set it had to look at) cached in the
// context until the next command needs another one, so a kept context would
// hold tens of MiB after a listing. Transactions share one kept context
// (NftBackend::transactions_): their cache is the table's chains and sets
// without elements, and its netlink socket stays open. Closing a nftables
// socket waits for the kernel to free what earlier commits deleted (an RCU
// grace period, 10-20 ms), so a context per transaction made every
// transaction that deleted a chain or set cost that much more.
class NftContext {
 public:
  NftContext() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    if (ctx_ != nullptr) {
      nft_ctx_buffer_output(ctx_);
      nft_ctx_buffer_error(ctx_);
    }
  }
  ~NftContext() {
    if (ctx_ != nullptr) nft_ctx_free(ctx_);
  }
  NftContext(const NftContext&) = delete;
  NftContext& operator=(const NftContext&) = delete;
  nft_ctx* get() const { return ctx_; }

 private:
  nft_ctx* ctx_;
};

Result<std::unique_ptr<NftBackend>> NftBackend::Create(const NftBackendOptions& options) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(options.netns), "opening nftables");
  if (NftContext probe; probe.get() == nullptr) return Internal("cannot create a libnftables context");
  std::unique_ptr<NftBackend> backend(new NftBackend(options));
  for (NftSet& set : SetLayout(options.nft)) backend->static_layout_[set.name] = std::move(set);
  backend->static_rules_ = RuleCounts(RenderRuleset(policy::NodeProgram{}, options.nft));
  backend->Track();
  // Read what an earlier run left now, before the caller builds its state:
  // listing a big table passes tens of MiB through libnftables, and freed
  // here it does not leave holes between long-lived allocations. Only this
  // process changes the table, so the first Apply can still trust it.
  if (options.observe_at_create) {
    NETPOL_ASSIGN_OR_RETURN(ObservedTable observed, backend->Observe(), "reading the installed rules");
    backend->observed_at_create_ = std::move(observed);
  }
  return backend;
}

NftBackend::NftBackend(NftBackendOptions options) : options_(std::move(options)) {}

NftBackend::~NftBackend() = default;

Result<std::string> NftBackend::Run(const std::string& commands, bool json_output, bool transaction,
                                    bool elements) {
  NETPOL_ASSIGN_OR_RETURN(NetnsGuard guard, NetnsGuard::Enter(options_.netns), "running nftables");
  std::optional<NftContext> listing;
  if (transaction && transactions_ == nullptr) transactions_ = std::make_unique<NftContext>();
  nft_ctx* const ctx = transaction ? transactions_->get() : listing.emplace().get();
  if (ctx == nullptr) {
    transactions_.reset();
    return Internal("cannot create a libnftables context");
  }
  // Listings in JSON give protocols as numbers (what an element's field
  // holds) and, unless asked for, no set elements: those are read by netlink
  // dumps (ReadElements), without libnftables' JSON and its cache.
  unsigned flags = 0;
  if (json_output)
    flags = NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_NUMERIC_PROTO | (elements ? 0 : NFT_CTX_OUTPUT_TERSE);
  nft_ctx_output_set_flags(ctx, flags);
  const int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
  const char* out = nft_ctx_get_output_buffer(ctx);
  const char* err = nft_ctx_get_error_buffer(ctx);
  std::string output = out != nullptr ? out : "";
  const std::string error = err != nullptr ? err : "";
  // A failed transaction starts the next one on a fresh socket and cache.
  if (rc != 0 && transaction) transactions_.reset();
  if (rc != 0) {
    if (error.find("Operation not permitted") != std::string::npos) {
      return PermissionDenied("nftables: " + error + " (run as root, or with CAP_NET_ADMIN)");
    }
    if (error.find("No such file or directory") != std::string::npos) return NotFound("nftables: " + error);
    return FailedPrecondition("nftables rejected the transaction; nothing was changed:\n" + error);
  }
  return output;
}

Status NftBackend::OpenBatcher() {
  if (batcher_) return Ok();
  NETPOL_ASSIGN_OR_RETURN(ElementBatcher opened, ElementBatcher::Open(options_.netns),
                          "opening a netlink socket");
  batcher_ = std::move(opened);
  return Ok();
}

Status NftBackend::ReadElements(ObservedTable& table, ElementBatcher& socket) {
  for (auto& [name, set] : table.sets) {
    // A set of a type netpol never makes is found by its name or its type;
    // its elements are not read.
    const Result<std::vector<FieldKind>> kinds = KindsOf(set.type);
    if (!kinds) continue;
    Result<std::map<Element, uint64_t>> elements = socket.Elements(name, *kinds);
    if (!elements && elements.error().code() == ErrorCode::kInvalidArgument) {
      set.unreadable = true;  // someone else's element: replaced with the table
      continue;
    }
    NETPOL_ASSIGN_OR_RETURN(set.elements, std::move(elements), "reading the elements");
  }
  return Ok();
}

Result<ObservedTable> NftBackend::Observe() {
  // The listing (chains, rules, set shapes) and the sets' dumps are separate
  // reads: they are one state when no commit came between them, which the
  // ruleset's generation tells.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    NETPOL_RETURN_IF_ERROR(OpenBatcher(), "listing table " + kTable);
    Result<uint32_t> before = batcher_->Generation();
    if (!before) {
      batcher_.reset();  // what it left unread must not answer the next request
      return std::move(before).error().WithContext("listing table " + kTable);
    }
    // The family's ruleset, not the table: libnftables 1.0.6 reads every set
    // element into its cache to list a table, terse or not (1.2 s and 400 MiB
    // for 200k elements, measured), and a terse ruleset listing reads none.
    Result<std::string> listing = Run(std::string("list ruleset ") + kTableFamily, true);
    if (!listing) {
      if (listing.error().code() == ErrorCode::kNotFound) return ObservedTable{};
      return std::move(listing).error().WithContext("listing table " + kTable);
    }
    NETPOL_ASSIGN_OR_RETURN(ObservedTable table, ParseListing(*listing, kTableName),
                            "listing table " + kTable);
    if (!table.exists) return ObservedTable{};
    Status read = ReadElements(table, *batcher_);
    Result<uint32_t> after = batcher_->Generation();
    if (!after || (!read.ok() && read.error().code() != ErrorCode::kNotFound)) batcher_.reset();
    if (!after) return std::move(after).error().WithContext("listing table " + kTable);
    if (*before == *after) {
      NETPOL_RETURN_IF_ERROR(std::move(read), "listing table " + kTable);
      return table;
    }
    if (attempt == kAttempts) {
      return Unavailable("listing table " + kTable + ": the ruleset changed during each of " +
                         std::to_string(kAttempts) + " readings");
    }
  }
}

Result<ObservedTable> NftBackend::ObserveThroughJson() {
  Result<std::string> listing = Run("list table " + kTable, true, false, true);
  if (!listing) {
    if (listing.error().code() == ErrorCode::kNotFound) return ObservedTable{};
    return std::move(listing).error().WithContext("listing table " + kTable);
  }
  return ParseListing(*listing);
}

Result<ObservedSet> NftBackend::ObserveSet(const std::string& name) {
  NETPOL_ASSIGN_OR_RETURN(ElementBatcher socket, ElementBatcher::Open(options_.netns), "listing set " + name);
  return ObserveSet(name, socket);
}

Result<ObservedSet> NftBackend::ObserveSet(const std::string& name, ElementBatcher& socket) {
  NETPOL_ASSIGN_OR_RETURN(const std::string listing, Run("list set " + kTable + " " + name, true),
                          "listing set " + name);
  NETPOL_ASSIGN_OR_RETURN(ObservedTable table, ParseListing(listing), "listing set " + name);
  const auto it = table.sets.find(name);
  if (it == table.sets.end()) return NotFound("no set " + name + " in table " + kTable);
  NETPOL_RETURN_IF_ERROR(ReadElements(table, socket), "listing set " + name);
  return std::move(it->second);
}

size_t NftBackend::InstalledElements() const {
  size_t n = 0;
  for (const auto& [name, pod] : elements_) n += pod.size();
  for (const auto& [name, group] : group_elements_) n += group.size();
  for (const auto& [name, c] : classes_) {
    for (const NftSet& map : c.maps) n += map.elements.size();
  }
  return n;
}

void NftBackend::Track() {
  layout_ = static_layout_;
  rules_ = static_rules_;
  for (const auto& [name, c] : classes_) {
    for (const NftSet& map : c.maps)
      layout_[map.name] = {map.name, map.type, map.interval, map.counter, map.comment, {}};
  }
  NftRuleset classes;
  for (const auto& [name, c] : classes_) classes.classes[name].definition = c.definition;
  for (const auto& [chain, count] : RuleCounts(classes)) rules_[chain] = count;
}

namespace {

// The group ids a table's dispatch maps name, per map and pod address
// ("in_np_v4" -> "198.18.0.5" -> 3), read back so a restart keeps them.
std::map<std::string, std::map<IpAddress, uint32_t>> InstalledGroupIds(const ObservedTable& observed) {
  std::map<std::string, std::map<IpAddress, uint32_t>> out;
  for (const char* map : {"in_np_v4", "in_np_v6", "eg_np_v4", "eg_np_v6"}) {
    const auto it = observed.sets.find(map);
    if (it == observed.sets.end()) continue;
    for (const auto& [element, packets] : it->second.elements) {
      if (element.verdict() != Verdict::kGoto) continue;
      const Field pod = element.field(0);
      if (pod.kind != FieldKind::kIpv4 && pod.kind != FieldKind::kIpv6) continue;
      if (const std::optional<uint32_t> id = GroupIdOf(element.chain())) out[map][pod.FirstAddress()] = *id;
    }
  }
  return out;
}

std::string DispatchMap(const GroupKey& key) {
  return std::string(key.ingress ? "in" : "eg") + "_np_" + (key.family == IpFamily::kV4 ? "v4" : "v6");
}

}  // namespace

Result<NftBackend::Change> NftBackend::Prepare(const policy::NodeProgram& program) {
  Change change;
  if (!in_sync_) {
    // The table as Create found it, once; after that (a failed update) as it is now.
    std::optional<ObservedTable> at_start = std::exchange(observed_at_create_, std::nullopt);
    if (!at_start) {
      NETPOL_ASSIGN_OR_RETURN(ObservedTable now, Observe(), "reading the installed rules");
      at_start = std::move(now);
    }
    const ObservedTable& observed = *at_start;
    // The group ids the table's pods use now, kept where the groups still fit.
    const auto installed = InstalledGroupIds(observed);
    change.groups = AssignGroups(program, nullptr,
                                 [&](const std::string& pod, const GroupKey& key) -> std::optional<uint32_t> {
                                   const auto map = installed.find(DispatchMap(key));
                                   if (map == installed.end()) return std::nullopt;
                                   for (const IpAddress& ip : program.pods.at(pod).ips) {
                                     if (ip.family() != key.family) continue;
                                     const auto it = map->second.find(ip);
                                     if (it != map->second.end()) return it->second;
                                   }
                                   return std::nullopt;
                                 });
    NftRuleset desired = RenderRuleset(program, options_.nft, &change.groups);
    change.stats.commands = PlanCommands(desired, observed, change.stats, rebuild_);
    change.full = true;
    change.classes_added = std::move(desired.classes);
    for (const auto& [name, pod] : program.pods)
      change.rendered[name] = InstalledPod::From(RenderPod(name, pod, program, options_.nft, &change.groups));
    return change;
  }
  ElementEdits edits;
  const auto record = [&](const PodElements& elements, bool add) {
    for (const auto& [set, members] : elements) {
      for (const auto& [element, origin] : members) {
        if (add) {
          edits.Add(set, element, origin);
        } else {
          edits.Delete(set, element);
        }
      }
      (add ? change.stats.added : change.stats.removed) += members.size();
    }
  };
  // Only what is in one and not the other, both ways.
  const auto diff = [&](const InstalledPod& before, const PodElements& after) {
    const PodEdits d = before.DiffTo(after);
    record(d.removed, false);
    record(d.added, true);
  };
  const policy::ProgramDelta delta = policy::Diff(program_, program);
  // Groups: each keeps its id where its pods had one (GroupIds), so a group
  // whose peers or rules changed is edited in place, once for all its pods.
  change.groups = AssignGroups(
      program, &groups_, [&](const std::string& pod, const GroupKey& key) -> std::optional<uint32_t> {
        const auto was = program_.pods.find(pod);
        if (was == program_.pods.end()) return std::nullopt;
        const std::optional<GroupKey> old = GroupOf(was->second, key.ingress, key.family);
        if (!old) return std::nullopt;
        const auto it = groups_.ids.find(*old);
        if (it == groups_.ids.end()) return std::nullopt;
        return it->second;
      });
  std::map<std::string, const GroupKey*> old_groups;
  std::map<std::string, std::pair<const GroupKey*, uint32_t>> new_groups;
  for (const auto& [key, id] : groups_.ids) old_groups[GroupChain(key.ingress, key.family, id)] = &key;
  for (const auto& [key, id] : change.groups.ids)
    new_groups[GroupChain(key.ingress, key.family, id)] = {&key, id};
  for (const auto& [chain, key] : old_groups) {
    if (new_groups.contains(chain)) continue;
    change.classes_removed.push_back(chain);
    change.stats.removed += group_elements_.at(chain).size();
  }
  for (const auto& [chain, entry] : new_groups) {
    const auto& [key, id] = entry;
    const auto was = old_groups.find(chain);
    if (was == old_groups.end()) {
      TierClass group = RenderGroup(*key, id, program, options_.nft);
      for (const NftSet& set : group.maps) change.stats.added += set.elements.size();
      change.classes_added.emplace(chain, std::move(group));
      continue;
    }
    if (*was->second == *key) continue;
    const InstalledPod& installed = group_elements_.at(chain);
    std::optional<PodEdits> in_place = RenderGroupMemberChange(*was->second, program_, *key, program, id);
    if (!in_place) {
      in_place = RenderGroupAllowanceChange(
          *was->second, program_, *key, program, id,
          [&](const std::string& set, const Element& element) { return installed.Find(set, element); });
    }
    if (in_place) {
      record(in_place->removed, false);
      record(in_place->added, true);
      change.group_edited[chain] = std::move(*in_place);
      continue;
    }
    PodElements now = RenderGroupElements(*key, id, program);
    diff(installed, now);
    change.group_rendered[chain] = InstalledPod::From(std::move(now));
  }
  for (const std::string& name : delta.removed) {
    // A pod gone: every element it has goes, as they are (no diff to make).
    elements_.at(name).ForEach([&](const std::string& set, const Element& element, const std::string&) {
      edits.Delete(set, element);
      ++change.stats.removed;
    });
    change.removed.push_back(name);
  }
  // A pod's own elements are a handful (its allowances are its group's):
  // rendered whole and diffed.
  for (const std::string& name : delta.changed) {
    PodElements now = RenderPod(name, program.pods.at(name), program, options_.nft, &change.groups);
    diff(elements_.at(name), now);
    change.rendered[name] = InstalledPod::From(std::move(now));
  }
  for (const std::string& name : delta.added) {
    PodElements now = RenderPod(name, program.pods.at(name), program, options_.nft, &change.groups);
    record(now, true);  // a new pod: every element is added
    change.rendered[name] = InstalledPod::From(std::move(now));
  }
  change.edits = std::move(edits);
  // Tier class chains: created when a pod first needs them, deleted when the
  // last pod leaves them (content-addressed: a changed policy is a new chain).
  const std::set<std::string> wanted = TierClassChains(program);
  for (const auto& [chain, c] : classes_) {
    if (wanted.contains(chain) || GroupIdOf(chain)) continue;
    change.classes_removed.push_back(chain);
    for (const NftSet& map : c.maps) change.stats.removed += map.elements.size();
  }
  std::map<std::string, TierClass> tiers = RenderTierClasses(
      program, [&](const std::string& chain) { return !classes_.contains(chain) && wanted.contains(chain); });
  for (auto& [chain, c] : tiers) {
    for (const NftSet& map : c.maps) change.stats.added += map.elements.size();
    change.classes_added.emplace(chain, std::move(c));
  }
  return change;
}

// An incremental change that creates or deletes class or group chains goes
// as three transactions: (1) the new chains and their sets, empty, which
// nothing points at yet (traffic cannot reach them); (2) every element edit,
// the new sets' elements among them, as one netlink batch: the one
// transaction traffic sees, so the policy still changes at once; (3) the
// chains and sets nothing points at any more. Through libnftables' parser an
// element costs ~5 us, in a batch ~1 us: a policy that splits a group of
// 1,400 elements paid ~7 ms in parsing.
struct NftBackend::ClassSteps {
  std::string create;
  ElementEdits elements;           // the new sets' elements
  std::vector<ElementEdit> batch;  // views into the change's edits and `elements`
  std::string remove;
  bool left_over = false;  // (3) failed
  uint32_t committed = 0;  // transactions
};

bool NftBackend::InSteps(const Change& change, ClassSteps& steps) {
  std::vector<TierClass> shapes;  // the new classes, their sets' elements left out
  shapes.reserve(change.classes_added.size());
  for (const auto& [chain, c] : change.classes_added) {
    TierClass& shape = shapes.emplace_back(TierClass{c.chain, c.definition, {}});
    for (const NftSet& map : c.maps) {
      shape.maps.push_back(
          layout_[map.name] = {map.name, map.type, map.interval, map.counter, map.comment, {}});
      for (const auto& [element, origin] : map.elements) steps.elements.Add(map.name, element, origin);
    }
  }
  steps.batch = change.edits.List();
  std::vector<ElementEdit> added = steps.elements.List();
  steps.batch.insert(steps.batch.end(), added.begin(), added.end());
  if (!Batchable(steps.batch, layout_)) return false;
  std::vector<const TierClass*> created;
  created.reserve(shapes.size());
  for (const TierClass& shape : shapes) created.push_back(&shape);
  steps.create = ClassCommands(created, {});
  steps.remove = ClassCommands({}, change.classes_removed);
  return true;
}

Status NftBackend::SendSteps(ClassSteps& steps) {
  if (!steps.create.empty()) {
    NETPOL_RETURN_IF_ERROR(Run(steps.create, false, true), "creating chains");
    ++steps.committed;
  }
  if (!steps.batch.empty()) {
    NETPOL_RETURN_IF_ERROR(OpenBatcher(), "batching elements");
    NETPOL_RETURN_IF_ERROR(batcher_->Send(steps.batch, layout_), "sending elements");
    ++steps.committed;
  }
  if (!steps.remove.empty()) {
    // The policy is in force; what is left is unreachable. Should this fail,
    // the next Apply reads the table back and deletes it then.
    steps.left_over = !Run(steps.remove, false, true).ok();
    if (!steps.left_over) ++steps.committed;
  }
  return Ok();
}

std::string NftBackend::Change::Commands() const {
  if (classes_added.empty() && classes_removed.empty()) return edits.Commands();
  std::vector<const TierClass*> added;
  for (const auto& [chain, c] : classes_added) added.push_back(&c);
  return ClassCommands(added, {}) + edits.Commands() + ClassCommands({}, classes_removed);
}

// Remembers what a committed change installed.
void NftBackend::Commit(Change& change) {
  if (change.full) {
    elements_.clear();
    classes_.clear();
    group_elements_.clear();
  }
  for (const std::string& name : change.removed) elements_.erase(name);
  for (auto& [name, elements] : change.rendered) elements_[name] = std::move(elements);
  for (const std::string& chain : change.classes_removed) {
    classes_.erase(chain);
    group_elements_.erase(chain);
  }
  for (auto& [chain, c] : change.classes_added) {
    if (GroupIdOf(chain)) {
      // A group's elements are kept compactly, apart from its sets' shapes.
      PodElements elements;
      for (NftSet& set : c.maps) {
        if (!set.elements.empty()) elements[set.name] = std::exchange(set.elements, {});
      }
      group_elements_[chain] = InstalledPod::From(std::move(elements));
    }
    classes_[chain] = std::move(c);
  }
  for (auto& [chain, elements] : change.group_rendered) group_elements_[chain] = std::move(elements);
  for (auto& [chain, edits] : change.group_edited) group_elements_[chain].Apply(std::move(edits));
  groups_ = std::move(change.groups);
  Track();
}

Result<std::string> NftBackend::Plan(const policy::NodeProgram& program) {
  NETPOL_ASSIGN_OR_RETURN(Change change, Prepare(program), "planning");
  return change.full ? change.stats.commands : change.Commands();
}

Result<ApplyStats> NftBackend::ApplyImpl(const policy::NodeProgram& program, policy::NodeProgram* owned) {
  const auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  const auto planning = std::chrono::steady_clock::now();
  NETPOL_ASSIGN_OR_RETURN(Change change, Prepare(program), "planning");
  // Element edits skip libnftables' parser and its cache (one libnftnl batch,
  // still one transaction, and no text is rendered for them); chains created
  // or deleted go through libnftables.
  std::vector<ElementEdit> batch;
  std::optional<ClassSteps> steps;
  const bool classes_change = !change.classes_added.empty() || !change.classes_removed.empty();
  if (!change.full && classes_change) {
    // Filled in place: its batch views its own elements, which must not move.
    if (!InSteps(change, steps.emplace())) steps.reset();
    if (steps) {
      change.stats.commands = steps->create + steps->remove;
      change.stats.batched = true;
    } else {
      change.stats.commands = change.Commands();
    }
  } else if (!change.full && !change.edits.empty()) {
    batch = change.edits.List();
    if (!Batchable(batch, layout_)) {
      batch.clear();
      change.stats.commands = change.edits.Commands();
    }
  }
  change.stats.plan_ms = ms_since(planning);
  const auto sending = std::chrono::steady_clock::now();
  // Not listening to our own transaction (its notifications cost the kernel
  // as much again as the elements); the window tells if others committed meanwhile.
  if (!change.stats.commands.empty() || !batch.empty()) {
    const MonitorOwner::Window window = owner_->BeginCommit();
    Status done = Ok();
    if (steps) {
      done = SendSteps(*steps);
    } else if (!batch.empty()) {
      done = OpenBatcher();
      if (done.ok()) done = batcher_->Send(batch, layout_);
      change.stats.batched = true;
    } else if (Result<std::string> ran = Run(change.stats.commands, false, true); !ran) {
      done = std::move(ran).error();
    }
    owner_->EndCommit(window, steps ? steps->committed : 1);
    if (!done.ok()) {
      batcher_.reset();  // a fresh socket next time, too
      in_sync_ = false;  // whatever we believed may be wrong now: read back next time
      Track();           // the layout of what is installed, without sets this change would have made
      return std::move(done).error().WithContext("applying the policy");
    }
  }
  change.stats.send_ms = ms_since(sending);
  in_sync_ = !steps || !steps->left_over;
  applied_ = true;
  if (change.full) rebuild_ = false;
  Commit(change);
  if (owned != nullptr) {
    program_ = std::move(*owned);
  } else {
    program_ = program;
  }
  return std::move(change.stats);
}

Result<std::string> NftBackend::Show() {
  return Run("list table " + kTable, false);
}

Status NftBackend::Remove() {
  in_sync_ = false;
  applied_ = false;
  const MonitorOwner::Window window = owner_->BeginCommit();
  Result<std::string> done = Run("delete table " + kTable, false, true);
  owner_->EndCommit(window);
  if (!done && done.error().code() != ErrorCode::kNotFound) return std::move(done).error();
  return Ok();
}

std::optional<std::string> NftBackend::ChangedRule(const std::string& chain,
                                                   const ObservedTable& observed) const {
  const auto want = reference_forms_->find(ChainKind(chain));
  if (want == reference_forms_->end()) return "chain " + chain + ": no reference for its rules";
  const auto have = observed.rule_forms.find(chain);
  const std::vector<std::string> none;
  const std::vector<std::string>& got = have == observed.rule_forms.end() ? none : have->second;
  const auto [mine, theirs] = std::mismatch(want->second.begin(), want->second.end(), got.begin(), got.end());
  if (mine == want->second.end() && theirs == got.end()) return std::nullopt;
  return "chain " + chain + ": rule " + std::to_string(theirs - got.begin() + 1) + " is not netpol's (" +
         (theirs == got.end() ? std::string("missing") : *theirs) + ")";
}

Result<std::vector<std::string>> NftBackend::Verify() {
  std::vector<std::string> found;
  if (!applied_) return found;  // nothing committed yet: the first Apply reads back anyway
  if (!reference_forms_) {
    NETPOL_ASSIGN_OR_RETURN(
        RuleForms forms,
        ReferenceRuleForms(options_.nft, [this](const std::string& commands,
                                                bool json) { return Run(commands, json, !json); }),
        "checking rule contents");
    reference_forms_ = std::move(forms);
  }
  NETPOL_ASSIGN_OR_RETURN(ObservedTable observed, Observe(), "reading the installed rules back");
  if (!observed.exists) {
    found.push_back("table " + kTable + " is gone");
  } else {
    for (const auto& [chain, count] : rules_) {
      if (std::find(observed.chains.begin(), observed.chains.end(), chain) == observed.chains.end()) {
        found.push_back("chain " + chain + " is gone");
        continue;
      }
      const auto it = observed.rules.find(chain);
      const size_t have = it == observed.rules.end() ? 0 : it->second;
      if (have != count) {
        found.push_back("chain " + chain + " has " + std::to_string(have) + " rules, not " +
                        std::to_string(count));
        continue;
      }
      if (const std::optional<std::string> changed = ChangedRule(chain, observed)) {
        found.push_back(*changed);
        rebuild_ = true;  // rules are not edited in place: the table is replaced whole
      }
    }
    for (const std::string& chain : observed.chains) {
      if (!rules_.contains(chain)) found.push_back("chain " + chain + " is not netpol's");
    }
    // Every element this backend committed, looked up in the listing (pods
    // never share an element, so counts tell what the listing has besides).
    std::map<std::string, std::pair<size_t, size_t>> expected;  // set -> (committed, missing)
    std::map<std::string, std::string> example;                 // set -> a missing element
    const auto expect = [&](const std::string& set, const Element& element) {
      auto& [committed, missing] = expected[set];
      ++committed;
      const auto it = observed.sets.find(set);
      if (it == observed.sets.end() || !it->second.elements.contains(element)) {
        if (++missing == 1) example[set] = element.Text();
      }
    };
    for (const auto* installed : {&elements_, &group_elements_}) {
      for (const auto& [name, pod] : *installed) {
        pod.ForEach([&](const std::string& set, const Element& element, const std::string&) {
          expect(set, element);
        });
      }
    }
    for (const auto& [chain, c] : classes_) {
      for (const NftSet& map : c.maps) {
        for (const auto& [element, origin] : map.elements) expect(map.name, element);
      }
    }
    for (const auto& [name, shape] : layout_) {
      const auto it = observed.sets.find(name);
      if (it == observed.sets.end()) {
        found.push_back("set " + name + " is gone");
        continue;
      }
      const ObservedSet& have = it->second;
      if (have.type != shape.type || have.interval != shape.interval || have.counter != shape.counter ||
          have.comment != shape.comment) {
        found.push_back("set " + name + " is not of netpol's shape");
        continue;
      }
      if (have.unreadable) {
        found.push_back("set " + name + " holds an element netpol never adds");
        rebuild_ = true;
        continue;
      }
      const auto [committed, missing] = expected[name];
      if (missing > 0) {
        found.push_back("set " + name + ": " + std::to_string(missing) + " element(s) missing (" +
                        example[name] + (missing > 1 ? ", ..." : "") + ")");
      }
      if (have.elements.size() + missing > committed) {
        found.push_back("set " + name + ": " + std::to_string(have.elements.size() + missing - committed) +
                        " element(s) netpol did not add");
      }
    }
    for (const auto& [name, set] : observed.sets) {
      if (!layout_.contains(name)) found.push_back("set " + name + " is not netpol's");
    }
  }
  if (owner_->rules_touched.exchange(false)) {
    // Others touched rules (the change feed says so), and they are as they
    // were, or what differs was found above; either way the table is replaced
    // whole, so a rule edited and edited back leaves no doubt.
    if (found.empty()) found.push_back("another process changed rules of the table");
    rebuild_ = true;
  }
  if (!found.empty()) {
    // The next Apply starts from this reading and restores what differs.
    in_sync_ = false;
    observed_at_create_ = std::move(observed);
  }
  return found;
}

namespace {

class NftChangeFeed final : public ChangeFeed {
 public:
  explicit NftChangeFeed(TableMonitor monitor) : monitor_(std::move(monitor)) {}
  Result<std::vector<std::string>> Next(std::chrono::milliseconds timeout) override {
    return monitor_.Next(timeout);
  }

 private:
  TableMonitor monitor_;
};

}  // namespace

Result<std::unique_ptr<ChangeFeed>> NftBackend::WatchChanges() {
  NETPOL_ASSIGN_OR_RETURN(TableMonitor monitor, TableMonitor::Open(options_.netns, owner_),
                          "watching table " + kTable);
  return std::unique_ptr<ChangeFeed>(std::make_unique<NftChangeFeed>(std::move(monitor)));
}

Result<std::vector<ConnectionCount>> NftBackend::CountConnections() {
  std::vector<ConnectionCount> out;
  // A socket of its own: this runs beside Apply (the agent's /metrics), whose
  // transactions and read-backs use batcher_.
  NETPOL_ASSIGN_OR_RETURN(ElementBatcher socket, ElementBatcher::Open(options_.netns),
                          "counting connections");
  // A set that cannot be listed (the table being rebuilt) counts nothing this time.
  for (const CounterSet& counted : CounterSets()) {
    Result<ObservedSet> set = ObserveSet(counted.name, socket);
    if (!set) continue;
    for (const auto& [element, packets] : set->elements) out.push_back(CountOf(counted, element, packets));
  }
  return out;
}

namespace {

class NflogFeed final : public PacketFeed {
 public:
  explicit NflogFeed(NflogReader reader) : reader_(std::move(reader)) {}
  Result<std::vector<LoggedPacket>> Next(std::chrono::milliseconds timeout) override {
    Result<std::vector<LoggedPacket>> next = reader_.Next(timeout);
    if (next) {
      for (LoggedPacket& packet : *next) ReadLogPrefix(packet);
    }
    return next;
  }

 private:
  NflogReader reader_;
};

}  // namespace

Result<std::unique_ptr<PacketFeed>> NftBackend::WatchPackets() {
  NETPOL_ASSIGN_OR_RETURN(NflogReader reader, NflogReader::Open(options_.netns, options_.nft.log_group),
                          "reading NFLOG group " + std::to_string(options_.nft.log_group));
  return std::unique_ptr<PacketFeed>(std::make_unique<NflogFeed>(std::move(reader)));
}

}  // namespace netpol::dataplane::nft
