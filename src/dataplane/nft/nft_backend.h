// The nftables backend: programs a NodeProgram into table `inet netpol` through
// libnftables, in the network namespace it was created for.
//
//   Result<std::unique_ptr<NftBackend>> nft = NftBackend::Create({.netns = "np-node"});
//   Result<ApplyStats> done = (*nft)->Apply(program);
//
// Apply is declarative and incremental: it lists the table as it is (adopting a
// table left by an earlier run, never flushing it first), compares every set's
// elements with the desired ones, and sends only the difference, as one
// transaction: the kernel applies all of it or none, so traffic never sees a
// half-updated policy, and a failed update leaves the previous rules in force.
// A missing table, or one of another schema, is (re)built whole in one
// transaction. Chains are static, but for the ClusterNetworkPolicy tiers'
// per-class chains and the NetworkPolicy groups' chains (ruleset.h), created
// and deleted with the pods that use them: created unreachable before the
// transaction whose elements point pods at them, deleted after the one that
// points pods away. Group ids are kept here: a group whose peers
// or rules change is matched to the group its pods had and edited in place
// (its elements diffed once, not per pod), and after a restart the ids are
// read back from the dispatch maps. Once in sync, an update costs in
// proportion to the pods whose rules changed and the group elements that did.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/backend.h"
#include "dataplane/nft/element_batch.h"
#include "dataplane/nft/installed.h"
#include "dataplane/nft/monitor.h"
#include "dataplane/nft/rule_forms.h"
#include "dataplane/nft/ruleset.h"

namespace netpol::dataplane::nft {

class NftContext;  // a libnftables context (nft_backend.cpp)

struct NftBackendOptions {
  std::string netns;  // "" = the calling thread's namespace
  NftOptions nft;
  // Read the installed table in Create and use that reading for the first
  // Apply (a long-running owner of the table: the agent).
  bool observe_at_create = false;
};

// What is installed, as listed by the kernel.
struct ObservedSet {
  std::string type;
  bool interval = false;
  bool counter = false;
  std::string comment;
  std::map<Element, uint64_t> elements;  // element -> packets counted (0 without counter)
  // It holds an element no Element can be (not netpol's: the table is
  // rebuilt), and `elements` is not all it holds.
  bool unreadable = false;
};

struct ObservedTable {
  bool exists = false;
  std::map<std::string, ObservedSet> sets;
  std::vector<std::string> chains;
  std::map<std::string, size_t> rules;                         // chain -> rules in it
  std::map<std::string, std::vector<std::string>> rule_forms;  // chain -> its rules' forms (rule_forms.h)
};

// Parses `nft -j list table inet netpol` output. With `only_table`, a
// listing of several tables of the family (`list ruleset inet`) gives that
// table's objects only; `exists` says whether it was there.
Result<ObservedTable> ParseListing(const std::string& json, std::string_view only_table = {});

// The commands that turn `observed` into `desired`; "" when they agree. A
// table of another shape (chains, their rule counts, sets), or any table
// when `rebuild`, is replaced whole.
std::string PlanCommands(const NftRuleset& desired, const ObservedTable& observed, ApplyStats& stats,
                         bool rebuild = false);

// Rules per chain of `ruleset` (the static chains depend on the options only; class and
// group chains have a fixed count each).
std::map<std::string, size_t> RuleCounts(const NftRuleset& ruleset);

class NftBackend final : public Backend {
 public:
  [[nodiscard]] static Result<std::unique_ptr<NftBackend>> Create(const NftBackendOptions& options);
  ~NftBackend() override;

  Result<ApplyStats> Apply(const policy::NodeProgram& program) override {
    return ApplyImpl(program, nullptr);
  }
  Result<ApplyStats> Apply(policy::NodeProgram&& program) override { return ApplyImpl(program, &program); }
  Result<std::string> Plan(const policy::NodeProgram& program) override;
  Result<std::string> Show() override;
  Status Remove() override;
  // Reads the table back and compares it with what this backend last
  // committed: the table, every chain and its rules (their forms against
  // the reference, rule_forms.h), every set's shape and elements.
  Result<std::vector<std::string>> Verify() override;
  // nftables' change notifications for the table (monitor.h).
  Result<std::unique_ptr<ChangeFeed>> WatchChanges() override;
  // The per-pod counters of the verdict sets and the tiers' decision maps.
  Result<std::vector<ConnectionCount>> CountConnections() override;
  // The NFLOG group the rules log to (options.nft.log_group), in the node's
  // namespace, each packet's prefix read (ReadLogPrefix).
  Result<std::unique_ptr<PacketFeed>> WatchPackets() override;

  // The table as the kernel has it: chains, rules and set shapes from a
  // libnftables listing, every set's elements from a netlink dump.
  Result<ObservedTable> Observe();
  // The same, elements and all, from `nft -j list table` alone (slower: the
  // cross-check of the dumps, in tests).
  Result<ObservedTable> ObserveThroughJson();
  // One set as the kernel has it now, with its elements' packet counters
  // (the per-pod drop counters of `in_denied_v4` and friends, for metrics).
  // It and CountConnections read on a socket of their own: they may run
  // beside Apply and Verify (the agent's /metrics does).
  Result<ObservedSet> ObserveSet(const std::string& name);
  // Elements this backend installed for its pods (0 before the first Apply).
  size_t InstalledElements() const override;
  // Runs nft commands as one transaction (exposed for tests that inject faults).
  Result<std::string> RunForTest(const std::string& commands) { return Run(commands, false, true); }

 private:
  // A transaction, and the per-pod state to remember once it has committed.
  struct Change {
    ApplyStats stats;
    bool full = false;                             // `rendered` is every pod's elements
    std::map<std::string, InstalledPod> rendered;  // pods rendered whole
    std::vector<std::string> removed;              // pods gone
    ElementEdits edits;                            // incremental only; the full build is stats.commands
    // Tier class and group chains created (every one the table has, when
    // `full`; groups with their elements) and deleted.
    std::map<std::string, TierClass> classes_added;
    std::vector<std::string> classes_removed;
    GroupIds groups;                                     // the program's groups
    std::map<std::string, InstalledPod> group_rendered;  // groups kept, rendered whole and diffed
    std::map<std::string, PodEdits> group_edited;        // groups kept, edited in place
    // The incremental transaction as text: new classes, element edits, classes gone.
    std::string Commands() const;
  };

  struct ClassSteps;  // a change that creates or deletes chains, in three transactions

  explicit NftBackend(NftBackendOptions options);
  // `change` in steps (nft_backend.cpp, ClassSteps), into `steps`; false
  // when some edit cannot go in a batch. Adds the new sets' shapes to layout_.
  bool InSteps(const Change& change, ClassSteps& steps);
  Status SendSteps(ClassSteps& steps);
  // What differs in `chain`'s rules from the reference, if anything.
  std::optional<std::string> ChangedRule(const std::string& chain, const ObservedTable& observed) const;
  // A listing (`transaction` false) gets a libnftables context of its own; a
  // transaction runs on the kept one.
  // JSON listings leave set elements out unless `elements`.
  Result<std::string> Run(const std::string& commands, bool json, bool transaction = false,
                          bool elements = false);
  Status OpenBatcher();
  // Every set's elements of `table` (a listing without them), by netlink dumps on `socket`.
  Status ReadElements(ObservedTable& table, ElementBatcher& socket);
  Result<ObservedSet> ObserveSet(const std::string& name, ElementBatcher& socket);
  Result<Change> Prepare(const policy::NodeProgram& program);
  // `owned`, when given, is `program` itself and may be moved from once applied.
  Result<ApplyStats> ApplyImpl(const policy::NodeProgram& program, policy::NodeProgram* owned);
  void Commit(Change& change);
  // layout_ and rules_: the static layout's and those of classes_.
  void Track();

  NftBackendOptions options_;
  std::map<std::string, NftSet> static_layout_;  // the fixed sets: name -> type and flags (no elements)
  std::map<std::string, size_t> static_rules_;   // the fixed chains -> rules each has
  std::map<std::string, NftSet> layout_;         // static_layout_ and the class maps installed
  std::map<std::string, size_t> rules_;          // static_rules_ and the class chains installed
  // Class chains installed, with their maps' elements; group chains, with
  // their sets' shapes (their elements are in group_elements_).
  std::map<std::string, TierClass> classes_;
  GroupIds groups_;                                     // of program_
  std::map<std::string, InstalledPod> group_elements_;  // group chain -> its sets' elements
  std::shared_ptr<MonitorOwner> owner_ = std::make_shared<MonitorOwner>();
  bool applied_ = false;                      // something was committed (there is something to verify)
  bool rebuild_ = false;                      // others touched the rules: replace the table whole next time
  std::optional<ElementBatcher> batcher_;     // opened on first use
  std::unique_ptr<NftContext> transactions_;  // opened on first use, in the node's namespace
  // What this backend last committed, per local pod. After the first Apply has
  // read the table back and made it match, later Applies diff against this
  // instead of listing the kernel again, and re-render only the pods whose
  // compiled rules changed (set ids are content hashes, so a changed peer set
  // changes the pod). Any failure drops it: the next Apply reads back again.
  bool in_sync_ = false;
  policy::NodeProgram program_;
  std::optional<ObservedTable> observed_at_create_;
  std::optional<RuleForms> reference_forms_;  // made by the first Verify
  std::map<std::string, InstalledPod> elements_;
};

}  // namespace netpol::dataplane::nft
