// Scenario files: the main test language for policy semantics.
//
// A scenario is a cluster story told as records separated by blank lines
// (like sqllogictest). Lines starting with '#' are comments. Records:
//
//   apply                      YAML objects follow (no blank lines inside);
//   <yaml>                     they must be valid; they are added or replaced.
//
//   reject                     YAML that must be rejected; after "----", one
//   <yaml>                     expected substring of the diagnostics per line.
//   ----                       Nothing of a rejected input is applied.
//   spec.ingress[0]...: Invalid value: ...
//
//   reject exact               as reject, but the lines after "----" are every
//   <yaml>                     diagnostic exactly, in order ("FILE:LINE:COL: ..."
//   ----                       with LINE counted from the record's first YAML
//   <diagnostic>               line), and nothing else.
//
//   delete KIND NAMESPACE/NAME (or "delete Namespace NAME")
//
//   check FROM -> TO PORT[/PROTO] allow|deny [egress=WHY] [ingress=WHY]
//                              one or more lines; WHY is not-isolated, denied,
//                              self, own-node, unmanaged, or POLICY[RULE]
//                              (allowed by that rule, e.g. default/db[0]);
//                              a ClusterNetworkPolicy rule's decision is
//                              accept:TIER/NAME[RULE] or deny:TIER/NAME[RULE]
//                              (accept:admin/guard[0]), and each Pass on the way
//                              comes first: pass:admin/guard[1]>default/db[0].
//                              Two dual-stack pods by name: the verdict and the
//                              reasons must hold over IPv4 and over IPv6 (an
//                              address instead of a name checks one family).
//
//   matrix PORT[/PROTO] ...    after "----": one line per pod, "ns/pod -> ns/a ns/b"
//   ----                       (the pods it may reach on every port; "-" for none;
//                              "ns/a[IPv4]": over IPv4 only, a dual-stack pair).
//
//   explain FROM -> TO PORT    after "----": the exact `netpol check` text (one
//                              verdict per family for dual-stack pods).
//
//   lint                       after "----": "[check] ns/policy field" per finding,
//                              or nothing.
//
// After every apply and delete the runner also checks the equivalences: the
// incrementally updated engine, an engine rebuilt from scratch, the matrix, the
// reference evaluator and the compiled form agree on every pod pair and port
// that matters, in each address family of the pair (docs/SEMANTICS.md §19).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace netpol::testing {

struct ScenarioRecord {
  int line = 0;
  std::string command;                // first line
  std::vector<std::string> lines;     // further lines before "----" (check lines, YAML)
  std::vector<std::string> expected;  // lines after "----"
  bool has_separator = false;
};

std::vector<ScenarioRecord> ParseScenario(std::string_view text);

// The scenario files in tests/scenarios, sorted (file names only).
std::vector<std::string> ListScenarioFiles();

// Runs a scenario against the engine. Returns failures as "file:line: message".
std::vector<std::string> RunScenario(std::string_view text, const std::string& file);

}  // namespace netpol::testing
