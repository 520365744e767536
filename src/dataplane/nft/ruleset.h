// The nftables layout netpol programs, rendered from a compiled program.
//
//   NftRuleset desired = RenderRuleset(program, {.log_group = 100});
//   std::string text = TableDefinition(desired);   // `nft -f`-style text of the table
//
// One table, `inet netpol`, with static chains, per-pod data in sets, and
// chains shared by the pods whose decisions are equal, so the per-connection
// cost does not grow with the number of policies or pods:
//
//   forward / input hooks: anti-spoofing (a pod's packets must come from its own
//     interface with its own addresses, and nobody else may use them; one
//     lookup when they do), then forward_checked / input_checked:
//     `ct state established,related accept`, `ct state invalid drop`, then the
//     egress check of the source pod and the ingress check of the destination.
//   egress_v4/6, ingress_v4/6: per family, at most twelve lookups for a
//     new connection, however many policies and rules: the Admin tier's
//     dispatch map (1; pod -> goto the chain of the pod's class, below, 2 more
//     there), then <direction>_np_v4/6: "is the pod isolated" (1; if not: the
//     Baseline tier's dispatch map, its class's 2, the counter: allowed), then
//     the NetworkPolicy dispatch map (1) that sends the pod to its group's
//     chain (below): six lookups keyed by peer address, protocol and port (or
//     the parts an allowance leaves open; one is the interval set for ipBlock
//     ranges and port ranges), and the per-pod counter of the drop with its
//     NFLOG (1): 1 + 2 + 1 + 1 + 7 = 12. An allowed connection leaves through
//     <direction>_allowed_v4/6, whose lookup counts it per pod (instead of
//     the drop's). A pod a rule lets everything in (or out) is dispatched
//     straight to that chain.
//   NetworkPolicy groups (schema 7): isolated pods whose allowances for a
//     direction and family are equal share one chain, `in_np_g<id>_v4`, and
//     its six sets (`in_np_g<id>_v4_exact`: peer . protocol . port, `_proto`,
//     `_all`, `_anyexact`, `_anyproto`, `_ranges`; no pod in the elements:
//     they are the group's, not pods x peers). Ids are small numbers the
//     backend keeps (GroupIds): a group whose peers change keeps its chain
//     and its sets are edited in place; a pod relabelled into a group that
//     exists changes one dispatch element.
//   ClusterNetworkPolicy tiers, per class (schema 6): pods with equal
//     decisions of a tier (the compiled form's disjoint boxes) share one chain,
//     `in_admin_c<digest>_v4`, with two interval verdict maps keyed by peer
//     range . protocol [. port range] (no pod: the elements are the class's
//     boxes, not pods x boxes) that goto the tier's accept or deny chain; an
//     Admin class chain that does not decide goes on to the NetworkPolicy
//     chain. The verdict chains count the connection on the pod's element of
//     `in_admin_accepted_v4` (and friends) and the map element's comment
//     names the rule. Class chains come and go with their decisions: a
//     changed policy creates the new chains, repoints the pods' dispatch
//     elements and deletes the old chains: the new chains are created
//     first, unreachable, and the repointing is one transaction (the
//     backend's, nft_backend.cpp). Groups come and go the same way, with
//     the pods that use them.
//
// Elements are typed (element.h), each with its origin ("shop/db ingress[0]"),
// which becomes the element's comment. Text is written only for nft commands,
// goldens and --show.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/backend.h"
#include "dataplane/nft/element.h"
#include "policy/compiled.h"

namespace netpol::dataplane::nft {

inline constexpr const char* kTableFamily = "inet";
inline constexpr const char* kTableName = "netpol";
// Bump when sets or chains change shape; a table with another schema is replaced.
inline constexpr int kSchemaVersion = 7;

struct NftOptions {
  uint16_t log_group = 100;  // NFLOG group for denied new connections
  // Also log new connections a rule allowed (to the same group, at most
  // kAllowedLogRate per second per direction and family: allowed traffic is
  // most traffic).
  bool log_allowed = false;
};

inline constexpr int kAllowedLogRate = 100;

struct NftSet {
  std::string name;
  // "ipv4_addr . ipv4_addr . inet_proto . inet_service"; a verdict map's ends
  // in " : verdict", and its elements in their value (" : goto chain").
  std::string type;
  bool interval = false;
  bool counter = false;  // per-element counters
  std::string comment;
  std::map<Element, std::string> elements;  // element -> origin comment
};

// A chain shared by pods: one class's chain of a tier for one family, with
// its two maps (named `<chain>_port` and `<chain>_all`; the name is the
// decisions' content digest, so equal names mean equal contents), or one
// NetworkPolicy group's chain with its six sets (GroupSetNames).
struct TierClass {
  std::string chain;       // "in_admin_c0123456789abcdef_v4"
  std::string definition;  // `chain name { ... }`
  std::vector<NftSet> maps;
};

struct NftRuleset {
  std::string table_comment;                 // carries the schema version and options
  std::vector<NftSet> sets;                  // in a fixed order
  std::vector<std::string> chains;           // chain definitions, `chain name { ... }`
  std::map<std::string, TierClass> classes;  // by chain name: tier classes and NetworkPolicy groups
};

// One NetworkPolicy group: what its pods are allowed in one direction and
// family (their allowances, all of them, with their peer set ids).
struct GroupKey {
  bool ingress = true;
  IpFamily family = IpFamily::kV4;
  std::vector<policy::Allowance> allow;  // sorted; none lets everything through
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const GroupKey&, const GroupKey&) = default;
};

// The group of a pod's addresses of `family` for one direction; nullopt when
// the pod has no address of `family`, is not isolated there, or one of its
// allowances lets everything through (then its dispatch element goes
// straight to the allowed chain).
std::optional<GroupKey> GroupOf(const policy::LocalPod& pod, bool ingress, IpFamily family);

// Which id each group of a program has: its chain is GroupChain(key, id).
struct GroupIds {
  std::map<GroupKey, uint32_t> ids;
  uint32_t next = 1;  // above every id given
};
std::string GroupChain(bool ingress, IpFamily family, uint32_t id);
// The id of a group chain's name ("in_np_g12_v4" -> 12); nullopt for others.
std::optional<uint32_t> GroupIdOf(std::string_view chain);
// The sets of a group's chain: `<chain>_exact` and the five others.
std::vector<std::string> GroupSetNames(const std::string& chain);

// The id a pod's addresses used for `key`'s direction and family before (the
// group chain its dispatch element named); nullopt when none.
using PreviousGroup = std::function<std::optional<uint32_t>(const std::string& pod, const GroupKey& key)>;
// Ids for the groups of `program`, numbered in pod order from `previous->next`
// (1 without). A group `previous` had keeps its id; another takes the id most
// of its pods used (`had`; each id goes to one group, the one with most pods
// first), so a group whose peers or rules changed keeps its chain and is
// edited in place, and a new group takes the next number.
//
//   GroupIds now = AssignGroups(program, &before, [&](auto& pod, auto& key) { return IdBefore(pod, key); });
GroupIds AssignGroups(const policy::NodeProgram& program, const GroupIds* previous = nullptr,
                      const PreviousGroup& had = {});

// The whole table; `groups` names the program's groups (AssignGroups(program) when null).
NftRuleset RenderRuleset(const policy::NodeProgram& program, const NftOptions& options,
                         const GroupIds* groups = nullptr);

// One group's chain and sets; with their elements unless `elements` is false.
TierClass RenderGroup(const GroupKey& key, uint32_t id, const policy::NodeProgram& program,
                      const NftOptions& options, bool elements = true);
// Only a group's elements, per set name.
using PodElements = std::map<std::string, std::map<Element, std::string>>;
PodElements RenderGroupElements(const GroupKey& key, uint32_t id, const policy::NodeProgram& program);

// The class chains `program` needs (names only: cheap, no elements rendered).
std::set<std::string> TierClassChains(const policy::NodeProgram& program);
// Those classes rendered, all of them or those `wanted` accepts (by chain name).
std::map<std::string, TierClass> RenderTierClasses(
    const policy::NodeProgram& program, const std::function<bool(const std::string&)>& wanted = {});
// The class chain a chain or map name belongs to ("in_admin_c..._v4" for
// itself and its `_port` and `_all` maps); nullopt for the static layout's.
// Group chains and their sets as well ("in_np_g3_v4" for "in_np_g3_v4_exact").
std::optional<std::string> TierClassOf(std::string_view name);
// Commands that create `added` classes and groups (sets with their elements,
// then chains) and delete the `removed` chains and their sets. Creation must come
// before element edits that point at the new chains, deletion after those that
// stop pointing at the old ones.
std::string ClassCommands(const std::vector<const TierClass*>& added,
                          const std::vector<std::string>& removed);
// `set name { ... }` (or `map`), as inside a table definition.
std::string SetDefinition(const NftSet& set);

// The elements one local pod contributes, per set name (element -> origin).
// Every element names the pod's address (or interface) first, so pods never
// share an element: a pod's elements can be diffed on their own. Its
// allowances are its group's (RenderGroup): a pod has a handful of elements.
PodElements RenderPod(const std::string& name, const policy::LocalPod& pod,
                      const policy::NodeProgram& program, const NftOptions& options,
                      const GroupIds* groups = nullptr);

struct PodEdits {
  PodElements added;
  PodElements removed;
};
// What turns `before` into `after`: the elements only one of them has, and
// those both have under different origins (replaced, for their comments).
PodEdits DiffElements(const PodElements& before, const PodElements& after);

// The element edits of group `id` whose allowances changed from `before` to
// `after` (same direction and family) only in the members of its peer sets
// (the same allowances by origin and ports): the elements for the peers
// gained or lost, rendered before and after from those addresses alone, and
// compared. Exact because every element names one peer address, or a range
// that covers none of the changed ones (else nullopt: render the group whole).
// Comments name a rule that allows the element: one that changed rule is
// re-commented.
std::optional<PodEdits> RenderGroupMemberChange(const GroupKey& before,
                                                const policy::NodeProgram& before_program,
                                                const GroupKey& after,
                                                const policy::NodeProgram& after_program, uint32_t id);

// The element edits of group `id` whose allowances changed in which it has (a
// policy came or went, a rule's ports changed): only the allowances gained
// and lost are rendered, and `installed` (the group's elements in force: its
// whole rendering before) answers for the rest. Exact when none of the
// allowances gained or lost renders interval elements (ranges cut each
// other); else nullopt: render the group whole. An element a lost allowance
// named and a kept one still allows is re-commented.
// `installed` gives an installed element's origin (null: not installed).
using InstalledLookup = std::function<const std::string*(const std::string& set, const Element& element)>;
std::optional<PodEdits> RenderGroupAllowanceChange(const GroupKey& before,
                                                   const policy::NodeProgram& before_program,
                                                   const GroupKey& after,
                                                   const policy::NodeProgram& after_program, uint32_t id,
                                                   const InstalledLookup& installed);

// The text that creates the whole table (for `nft -f`, dry runs and goldens).
std::string TableDefinition(const NftRuleset& ruleset);

// `comment "..."` text for an element's origin, clamped to what nftables keeps.
std::string ElementComment(const std::string& origin);
// An element with its comment, where nft wants it: after the key, before a
// map element's value ("1.2.3.4 . tcp comment \"x\" : goto c").
std::string CommentedElement(const Element& element, const std::string& origin);

// Element edits gathered per set, written as one transaction's commands:
// every delete before any add, since an interval set must never hold
// overlapping elements.
struct ElementEdit {
  std::string_view set;
  const Element* element = nullptr;
  std::string_view origin;  // "" for deletes
  bool add = false;
};

class ElementEdits {
 public:
  void Delete(const std::string& set, const Element& element);
  void Add(const std::string& set, const Element& element, const std::string& origin);
  std::string Commands() const;
  // The same edits, one by one, in the order Commands() applies them: views
  // into this object (no element is copied), valid while it is unchanged.
  std::vector<ElementEdit> List() const;
  bool empty() const { return items_.empty(); }

 private:
  std::map<std::string, std::pair<std::vector<Element>, std::vector<std::pair<Element, std::string>>>>
      items_;  // set -> (deleted elements, added (element, origin))
};

// Every set of the layout, without elements (names, types, flags, comments).
std::vector<NftSet> SetLayout(const NftOptions& options);

// The comment text nftables keeps for an origin (clamped to its 128 bytes).
std::string CommentText(const std::string& origin);

// What the log prefix a rule of this ruleset wrote says ("netpol ingress
// admin deny "): fills the packet's direction, verdict and decider.
void ReadLogPrefix(LoggedPacket& packet);

// A set whose elements count new connections per pod address (the isolated
// pods' `in_denied_v4`, the tiers' `in_admin_denied_v4`, ...), and what its
// elements count.
struct CounterSet {
  std::string name;
  policy::Direction direction;
  Decider decider;
  bool allowed;
};
std::vector<CounterSet> CounterSets();
// An element of `set` as listed (a pod address) with its packet counter.
ConnectionCount CountOf(const CounterSet& set, const Element& element, uint64_t packets);

}  // namespace netpol::dataplane::nft
