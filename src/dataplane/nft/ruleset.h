// The nftables layout netpol programs, rendered from a compiled program.
//
//   NftRuleset desired = RenderRuleset(program, {.log_group = 100});
//   std::string text = TableDefinition(desired);   // `nft -f`-style text of the table
//
// One table, `inet netpol`, with static chains and all policy data in sets, so
// the per-connection cost does not grow with the number of policies or pods:
//
//   forward / input hooks: anti-spoofing (a pod's packets must come from its own
//     interface with its own addresses, and nobody else may use them; one
//     lookup when they do), then forward_checked / input_checked:
//     `ct state established,related accept`, `ct state invalid drop`, then the
//     egress check of the source pod and the ingress check of the destination.
//   egress_v4/6, ingress_v4/6: per family, at most twelve lookups for a
//     new connection, however many policies and rules: the Admin tier's
//     dispatch map (pod -> goto the chain of the pod's class, below), then
//     <direction>_np_v4/6: "is the pod isolated" (if not: the Baseline tier's
//     dispatch map, then allowed), six exact (hash) sets keyed by pod address
//     plus peer address, protocol and port (or the parts an allowance leaves
//     open), one interval set for ipBlock ranges and port ranges, and the
//     drop with a per-pod counter and NFLOG. An allowed connection leaves
//     through <direction>_allowed_v4/6, whose lookup counts it per pod.
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
//     elements and deletes the old chains, in one transaction.
//
// Elements are kept as canonical text (the form `nft` prints and parses), keyed
// to the origin ("shop/db ingress[0]") that becomes the element's comment.
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
#include "policy/compiled.h"

namespace netpol::dataplane::nft {

inline constexpr const char* kTableFamily = "inet";
inline constexpr const char* kTableName = "netpol";
// Bump when sets or chains change shape; a table with another schema is replaced.
inline constexpr int kSchemaVersion = 6;

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
  std::map<std::string, std::string> elements;  // canonical element -> origin comment
};

// One class's chain of a tier for one family, with its two maps (named
// `<chain>_port` and `<chain>_all`). The name is the decisions' content
// digest, so equal names mean equal contents.
struct TierClass {
  std::string chain;       // "in_admin_c0123456789abcdef_v4"
  std::string definition;  // `chain name { ... }`
  std::vector<NftSet> maps;
};

struct NftRuleset {
  std::string table_comment;                 // carries the schema version and options
  std::vector<NftSet> sets;                  // in a fixed order
  std::vector<std::string> chains;           // chain definitions, `chain name { ... }`
  std::map<std::string, TierClass> classes;  // by chain name
};

NftRuleset RenderRuleset(const policy::NodeProgram& program, const NftOptions& options);

// The class chains `program` needs (names only: cheap, no elements rendered).
std::set<std::string> TierClassChains(const policy::NodeProgram& program);
// Those classes rendered, all of them or those `wanted` accepts (by chain name).
std::map<std::string, TierClass> RenderTierClasses(
    const policy::NodeProgram& program, const std::function<bool(const std::string&)>& wanted = {});
// The class chain a chain or map name belongs to ("in_admin_c..._v4" for
// itself and its `_port` and `_all` maps); nullopt for the static layout's.
std::optional<std::string> TierClassOf(std::string_view name);
// Commands that create `added` classes (maps with their elements, then
// chains) and delete the `removed` chains and their maps. Creation must come
// before element edits that point at the new chains, deletion after those that
// stop pointing at the old ones.
std::string ClassCommands(const std::vector<const TierClass*>& added,
                          const std::vector<std::string>& removed);
// `set name { ... }` (or `map`), as inside a table definition.
std::string SetDefinition(const NftSet& set);

// The elements one local pod contributes, per set name (element -> origin).
// Every element names the pod's address (or interface) first, so pods never
// share an element: a pod's elements can be diffed on their own.
using PodElements = std::map<std::string, std::map<std::string, std::string>>;
PodElements RenderPod(const std::string& name, const policy::LocalPod& pod,
                      const policy::NodeProgram& program, const NftOptions& options);

// The element edits for one pod whose compiled rules changed only in the
// members of its peer sets (same addresses, interface, isolation, and the same
// allowances by origin and ports): the pod's elements for the peers gained or
// lost, rendered before and after from those addresses alone, and compared.
// Exact because every element names one peer address, or a range that covers
// none of the changed ones (else nullopt: render the pod whole). Comments
// name a rule that allows the element: one that changed rule is re-commented.
struct PodEdits {
  PodElements added;
  PodElements removed;
};
// What turns `before` into `after`: the elements only one of them has, and
// those both have under different origins (replaced, for their comments).
PodEdits DiffElements(const PodElements& before, const PodElements& after);

std::optional<PodEdits> RenderPodMemberChange(const std::string& name, const policy::LocalPod& before,
                                              const policy::NodeProgram& before_program,
                                              const policy::LocalPod& after,
                                              const policy::NodeProgram& after_program,
                                              const NftOptions& options);

// The element edits for one pod whose compiled rules changed in which
// allowances it has (a policy selecting it came or went, a rule's ports
// changed), with the same addresses, interface and isolation: only the
// allowances gained and lost are rendered, and `installed` (what the pod has
// in force: its whole rendering before) answers for the rest. Exact when none
// of the allowances gained or lost renders interval elements (ranges cut each
// other per pod); else nullopt: render the pod whole. An element a lost
// allowance named and a kept one still allows is re-commented.
// `installed` gives an installed element's origin (null: not installed).
using InstalledLookup = std::function<const std::string*(const std::string& set, const std::string& element)>;
std::optional<PodEdits> RenderPodAllowanceChange(const std::string& name, const policy::LocalPod& before,
                                                 const policy::NodeProgram& before_program,
                                                 const policy::LocalPod& after,
                                                 const policy::NodeProgram& after_program,
                                                 const NftOptions& options, const InstalledLookup& installed);

// The element edits for one pod whose compiled rules changed only in how it
// is wired (its interface, or whether it is reserved ahead of its ADD): the
// same addresses, isolation, allowances and peer contents. Only the pod's own
// elements (its interface, its claimed addresses, anti-spoofing) can differ,
// so only they are rendered, before and after; nullopt for any other change.
std::optional<PodEdits> RenderPodWiringChange(const std::string& name, const policy::LocalPod& before,
                                              const policy::NodeProgram& before_program,
                                              const policy::LocalPod& after,
                                              const policy::NodeProgram& after_program,
                                              const NftOptions& options);

// The text that creates the whole table (for `nft -f`, dry runs and goldens).
std::string TableDefinition(const NftRuleset& ruleset);

// `comment "..."` text for an element's origin, clamped to what nftables keeps.
std::string ElementComment(const std::string& origin);
// An element with its comment, where nft wants it: after the key, before a
// map element's value ("1.2.3.4 . tcp comment \"x\" : goto c").
std::string CommentedElement(std::string_view element, const std::string& origin);
// A map element's key ("1.2.3.4 . tcp" of "1.2.3.4 . tcp : goto c"); a set
// element is its own key.
std::string_view ElementKey(std::string_view element);

// Element edits gathered per set, written as one transaction's commands:
// every delete before any add, since an interval set must never hold
// overlapping elements.
struct ElementEdit {
  std::string_view set;
  std::string_view element;
  std::string_view origin;  // "" for deletes
  bool add = false;
};

class ElementEdits {
 public:
  void Delete(const std::string& set, const std::string& element);
  void Add(const std::string& set, const std::string& element, const std::string& origin);
  std::string Commands() const;
  // The same edits, one by one, in the order Commands() applies them: views
  // into this object (no element is copied), valid while it is unchanged.
  std::vector<ElementEdit> List() const;
  bool empty() const { return items_.empty(); }

 private:
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::pair<std::string, std::string>>>>
      items_;  // set -> (deleted elements, added (element, origin))
};

// Every set of the layout, without elements (names, types, flags, comments).
std::vector<NftSet> SetLayout(const NftOptions& options);

// The comment text nftables keeps for an origin (clamped to its 128 bytes).
std::string CommentText(const std::string& origin);

// Element text as nft writes it: "198.18.0.1 . tcp . 80", "198.18.0.0-198.18.0.255 . tcp . 80-90".
std::string ElementText(const std::vector<std::string>& fields);

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
// An element of `set` as listed ("198.18.1.5") with its packet counter.
ConnectionCount CountOf(const CounterSet& set, const std::string& element, uint64_t packets);

}  // namespace netpol::dataplane::nft
