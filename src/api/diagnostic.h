// Diagnostics: what is wrong with an input, where, and how bad.
//
// Every decoding and validation problem becomes one Diagnostic naming the file,
// line and column, the object ("NetworkPolicy default/db"), the field path
// ("spec.ingress[0].ports[1].endPort") and the problem in the API server's words:
//
//   policy.yaml:14:19: error: NetworkPolicy default/db: spec.ingress[0].ports[0].endPort:
//       Invalid value: 80: must be greater than or equal to `port`
//
// Callers collect all diagnostics instead of stopping at the first; an input with
// any error-severity diagnostic is rejected as a whole.
#pragma once

#include <string>
#include <vector>

#include "api/objects.h"

namespace netpol::api {

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLocation where;
  std::string object;  // "NetworkPolicy default/db", or "" for file-level problems
  std::string field;   // "spec.ingress[0].from[1]", or "" when not about one field
  std::string detail;  // "Invalid value: 80: must be ..."

  std::string ToString() const;
  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

using Diagnostics = std::vector<Diagnostic>;

bool HasErrors(const Diagnostics& diagnostics);
size_t CountErrors(const Diagnostics& diagnostics);

// Field errors in apimachinery's wording (k8s.io/apimachinery/pkg/util/validation/field).
// Each returns the detail text that follows "<field>: ".
std::string InvalidValue(const std::string& quoted_value, const std::string& message);
std::string RequiredValue(const std::string& message);
std::string ForbiddenValue(const std::string& message);
std::string UnsupportedValue(const std::string& quoted_value, const std::vector<std::string>& supported);
std::string DuplicateValue(const std::string& quoted_value);
// Go's %q for the strings netpol reports.
std::string Quote(const std::string& value);

}  // namespace netpol::api
