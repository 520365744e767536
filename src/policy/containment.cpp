// Containment and disjointness of what rules match (internal/containment.h).
#include "policy/internal/containment.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace netpol::policy::internal {
namespace {

using Op = api::SelectorOperator;

// One half of a prefix (one bit longer).
IpPrefix Half(const IpPrefix& p, bool upper) {
  const int length = p.length() + 1;
  IpAddress a = p.address();
  if (upper) {
    if (a.is_v4()) {
      a = IpAddress::V4(a.v4() | (uint32_t{1} << (32 - length)));
    } else if (length <= 64) {
      a = IpAddress::V6(a.high() | (uint64_t{1} << (64 - length)), a.low());
    } else {
      a = IpAddress::V6(a.high(), a.low() | (uint64_t{1} << (128 - length)));
    }
  }
  return IpPrefix::Make(a, length).value();
}

// True when every label set `narrow` matches satisfies `req`, as shown by
// `narrow`'s own requirements on that key. Sound, not complete: false when
// unsure (and for a selector that can match nothing, which proves nothing
// useful).
bool Implies(const api::LabelSelector& narrow, const api::LabelSelectorRequirement& req) {
  std::optional<std::set<std::string>> values;  // the values `narrow` allows, when it limits them
  bool present = false;
  bool absent = false;
  std::set<std::string> excluded;  // NotIn values
  const auto allow = [&](std::set<std::string> set) {
    if (values) std::erase_if(set, [&](const std::string& v) { return values->count(v) == 0; });
    values = std::move(set);
    present = true;
  };
  if (const auto it = narrow.match_labels.find(req.key); it != narrow.match_labels.end()) allow({it->second});
  for (const api::LabelSelectorRequirement& e : narrow.match_expressions) {
    if (e.key != req.key) continue;
    switch (e.op) {
      case Op::kIn:
        allow({e.values.begin(), e.values.end()});
        break;
      case Op::kNotIn:
        excluded.insert(e.values.begin(), e.values.end());
        break;
      case Op::kExists:
        present = true;
        break;
      case Op::kDoesNotExist:
        absent = true;
        break;
    }
  }
  if ((present && absent) || (values && values->empty())) return false;
  const auto listed = [&](const std::string& v) {
    return std::find(req.values.begin(), req.values.end(), v) != req.values.end();
  };
  switch (req.op) {
    case Op::kIn:
      return values && std::all_of(values->begin(), values->end(), listed);
    case Op::kNotIn:
      if (absent) return true;
      if (values) return std::none_of(values->begin(), values->end(), listed);
      return std::all_of(req.values.begin(), req.values.end(),
                         [&](const std::string& v) { return excluded.count(v) != 0; });
    case Op::kExists:
      return present;
    case Op::kDoesNotExist:
      return absent;
  }
  return false;
}

// No port matches both entries (named ports: only when the protocols differ).
bool EntriesDisjoint(const PortRule& a, const PortRule& b) {
  if (a.protocol != b.protocol) return true;
  if (a.any_port || b.any_port || !a.name.empty() || !b.name.empty()) return false;
  return a.last < b.first || b.last < a.first;
}

}  // namespace

// ---- label selectors, compared by their requirements ------------------------

// Every label set `narrow` matches, `wide` matches too (each requirement of
// `wide` is implied by `narrow`'s).
bool SelectorContains(const api::LabelSelector& wide, const api::LabelSelector& narrow) {
  for (const auto& [key, value] : wide.match_labels) {
    if (!Implies(narrow, {key, Op::kIn, {value}})) return false;
  }
  return std::all_of(wide.match_expressions.begin(), wide.match_expressions.end(),
                     [&](const api::LabelSelectorRequirement& r) { return Implies(narrow, r); });
}

bool ShapeContains(const PodShape& wide, const PodShape& narrow) {
  return SelectorContains(wide.namespaces, narrow.namespaces) && SelectorContains(wide.pods, narrow.pods);
}

// ---- addresses, names and ports ----------------------------------------------

// `n` lies inside the union of `cover` (prefixes are aligned: either one
// contains `n`, or both halves of `n` are covered).
bool PrefixCovered(const IpPrefix& n, const std::vector<IpPrefix>& cover) {
  bool smaller_inside = false;
  for (const IpPrefix& c : cover) {
    if (c.Contains(n)) return true;
    smaller_inside = smaller_inside || n.Contains(c);
  }
  if (!smaller_inside || n.length() == n.address().bits()) return false;
  return PrefixCovered(Half(n, false), cover) && PrefixCovered(Half(n, true), cover);
}

// As the engine compares names: case and a final dot do not matter.
std::string NormalDomain(std::string_view v) {
  if (v.ends_with('.')) v.remove_suffix(1);
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Every name `narrow` matches, `wide` matches ("*.x" matches names below x).
bool DomainCovers(std::string_view wide, std::string_view narrow) {
  const std::string w = NormalDomain(wide);
  const std::string n = NormalDomain(narrow);
  if (!w.starts_with("*.")) return w == n;
  const std::string_view suffix = std::string_view{w}.substr(1);  // ".example.com"
  // A wildcard `narrow` matches names below its own suffix.
  const bool wildcard = n.starts_with("*.");
  const std::string_view rest = wildcard ? std::string_view{n}.substr(1) : std::string_view{n};
  return rest == suffix ? wildcard : rest.size() > suffix.size() && rest.ends_with(suffix);
}

// Does a rule with protocol entries `wide` (empty: every protocol and port)
// match every port the entry `q` matches? A named port is covered by the same
// name or by every port of its protocol; numbers by the union of ranges.
bool PortsCover(const std::vector<PortRule>& wide, const PortRule& q) {
  if (wide.empty()) return true;
  std::vector<std::pair<int, int>> ranges;
  for (const PortRule& w : wide) {
    if (w.protocol != q.protocol) continue;
    if (w.any_port) return true;
    if (!q.name.empty()) {
      if (w.name == q.name) return true;
    } else if (!q.any_port && w.name.empty()) {
      ranges.emplace_back(w.first, w.last);
    }
  }
  if (!q.name.empty() || q.any_port) return false;
  std::sort(ranges.begin(), ranges.end());
  int reach = q.first;  // every port below `reach` (from q.first) is covered
  for (const auto& [first, last] : ranges) {
    if (first > reach) break;
    reach = std::max(reach, last + 1);
  }
  return reach > q.last;
}

bool PortsDisjoint(const std::vector<PortRule>& a, const std::vector<PortRule>& b) {
  if (a.empty() || b.empty()) return false;
  for (const PortRule& x : a) {
    for (const PortRule& y : b) {
      if (!EntriesDisjoint(x, y)) return false;
    }
  }
  return true;
}

}  // namespace netpol::policy::internal
