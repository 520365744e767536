#include "api/objects.h"

#include <algorithm>
#include <array>

namespace netpol::api {
namespace {

constexpr std::array<std::pair<WorkloadKind, std::string_view>, 7> kWorkloadKinds = {{
    {WorkloadKind::kDeployment, "Deployment"},
    {WorkloadKind::kStatefulSet, "StatefulSet"},
    {WorkloadKind::kDaemonSet, "DaemonSet"},
    {WorkloadKind::kReplicaSet, "ReplicaSet"},
    {WorkloadKind::kReplicationController, "ReplicationController"},
    {WorkloadKind::kJob, "Job"},
    {WorkloadKind::kCronJob, "CronJob"},
}};

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTCP:
      return "TCP";
    case Protocol::kUDP:
      return "UDP";
    case Protocol::kSCTP:
      return "SCTP";
  }
  return "?";
}

std::optional<Protocol> ParseProtocol(std::string_view text) {
  if (text == "TCP") return Protocol::kTCP;
  if (text == "UDP") return Protocol::kUDP;
  if (text == "SCTP") return Protocol::kSCTP;
  return std::nullopt;
}

std::string SourceLocation::ToString() const {
  if (file.empty()) return "";
  if (line == 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

void FieldPositions::Add(std::string_view path, int line, int column) {
  entries_.push_back(
      {static_cast<uint32_t>(paths_.size()), static_cast<uint32_t>(path.size()), line, column});
  paths_.append(path);
}

void FieldPositions::Reserve(size_t paths, size_t bytes) {
  entries_.reserve(paths);
  paths_.reserve(bytes);
}

void FieldPositions::Seal() {
  // Spare room given back when there is much of it (an eighth: reserved as
  // the object before had it, there is little).
  if (entries_.capacity() - entries_.size() > entries_.size() / 8) entries_.shrink_to_fit();
  if (paths_.capacity() - paths_.size() > paths_.size() / 8) paths_.shrink_to_fit();
  // Few paths (a pod has 50) are looked through in turn: sorting them cost
  // a 10k-pod list half a million path comparisons for lookups that come
  // only when validation finds a problem. Many are indexed.
  if (entries_.size() < kIndexFrom) return;
  for (const Entry* e : Canonical()) sorted_.push_back(static_cast<uint32_t>(e - entries_.data()));
}

std::vector<const FieldPositions::Entry*> FieldPositions::Canonical() const {
  std::vector<const Entry*> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(&e);
  std::stable_sort(out.begin(), out.end(),
                   [&](const Entry* a, const Entry* b) { return PathOf(*a) < PathOf(*b); });
  out.erase(std::unique(out.begin(), out.end(),
                        [&](const Entry* a, const Entry* b) { return PathOf(*a) == PathOf(*b); }),
            out.end());
  return out;
}

bool operator==(const FieldPositions& a, const FieldPositions& b) {
  const auto x = a.Canonical();
  const auto y = b.Canonical();
  return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                    [&](const FieldPositions::Entry* e, const FieldPositions::Entry* f) {
                      return a.PathOf(*e) == b.PathOf(*f) && e->line == f->line && e->column == f->column;
                    });
}

std::optional<std::pair<int, int>> FieldPositions::Find(std::string_view path) const {
  if (!sorted_.empty()) {
    const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), path,
                                     [&](uint32_t i, std::string_view p) { return PathOf(entries_[i]) < p; });
    if (it == sorted_.end() || PathOf(entries_[*it]) != path) return std::nullopt;
    return std::make_pair(entries_[*it].line, entries_[*it].column);
  }
  for (const Entry& e : entries_) {
    if (PathOf(e) == path) return std::make_pair(e.line, e.column);  // the first added
  }
  return std::nullopt;
}

SourceLocation Provenance::Locate(std::string_view field_path) const {
  if (fields) {
    std::string_view path = field_path;
    while (!path.empty()) {
      if (const auto at = fields->Find(path)) return {where.file, at->first, at->second};
      const size_t cut = path.find_last_of(".[");
      if (cut == std::string_view::npos) break;
      path = path.substr(0, cut);
    }
  }
  return where;
}

std::string_view WorkloadKindName(WorkloadKind kind) {
  for (const auto& [k, name] : kWorkloadKinds) {
    if (k == kind) return name;
  }
  return "?";
}

std::optional<WorkloadKind> ParseWorkloadKind(std::string_view kind) {
  for (const auto& [k, name] : kWorkloadKinds) {
    if (name == kind) return k;
  }
  return std::nullopt;
}

std::string_view PolicyTypeName(PolicyType type) {
  return type == PolicyType::kIngress ? "Ingress" : "Egress";
}

bool NetworkPolicy::AffectsIngress() const {
  if (policy_types.empty()) return true;
  return std::find(policy_types.begin(), policy_types.end(), PolicyType::kIngress) != policy_types.end();
}

bool NetworkPolicy::AffectsEgress() const {
  if (policy_types.empty()) return !egress.empty();
  return std::find(policy_types.begin(), policy_types.end(), PolicyType::kEgress) != policy_types.end();
}

std::string_view TierName(Tier tier) {
  return tier == Tier::kAdmin ? "Admin" : "Baseline";
}

std::string_view RuleActionName(RuleAction action) {
  switch (action) {
    case RuleAction::kAccept:
      return "Accept";
    case RuleAction::kDeny:
      return "Deny";
    case RuleAction::kPass:
      return "Pass";
  }
  return "?";
}

bool IsClusterScoped(std::string_view kind) {
  return kind == "Namespace" || kind == "Node" || kind == "ClusterNetworkPolicy";
}

const ObjectMeta& MetaOf(const Object& object) {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.metadata; }, object);
}

ObjectMeta& MetaOf(Object& object) {
  return std::visit([](auto& o) -> ObjectMeta& { return o.metadata; }, object);
}

std::string_view KindOf(const Object& object) {
  struct Visitor {
    std::string_view operator()(const Namespace&) const { return "Namespace"; }
    std::string_view operator()(const Pod&) const { return "Pod"; }
    std::string_view operator()(const Workload& w) const { return WorkloadKindName(w.kind); }
    std::string_view operator()(const NetworkPolicy&) const { return "NetworkPolicy"; }
    std::string_view operator()(const Node&) const { return "Node"; }
    std::string_view operator()(const ClusterNetworkPolicy&) const { return "ClusterNetworkPolicy"; }
  };
  return std::visit(Visitor{}, object);
}

std::string ObjectRef(const Object& object) {
  const ObjectMeta& meta = MetaOf(object);
  std::string ref(KindOf(object));
  ref += " ";
  if (!meta.namespace_.empty()) ref += meta.namespace_ + "/";
  ref += meta.name.empty() ? "<unnamed>" : meta.name;
  return ref;
}

}  // namespace netpol::api
