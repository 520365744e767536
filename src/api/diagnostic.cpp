#include "api/diagnostic.h"

#include <algorithm>
#include <cstdio>

namespace netpol::api {

std::string Diagnostic::ToString() const {
  std::string out;
  if (const std::string at = where.ToString(); !at.empty()) out += at + ": ";
  out += severity == Severity::kError ? "error: " : "warning: ";
  if (!object.empty()) out += object + ": ";
  if (!field.empty()) out += field + ": ";
  out += detail;
  return out;
}

bool HasErrors(const Diagnostics& diagnostics) {
  return CountErrors(diagnostics) > 0;
}

size_t CountErrors(const Diagnostics& diagnostics) {
  return static_cast<size_t>(std::count_if(diagnostics.begin(), diagnostics.end(),
                                           [](const auto& d) { return d.severity == Severity::kError; }));
}

std::string InvalidValue(const std::string& quoted_value, const std::string& message) {
  return "Invalid value: " + quoted_value + ": " + message;
}

std::string RequiredValue(const std::string& message) {
  return message.empty() ? "Required value" : "Required value: " + message;
}

std::string ForbiddenValue(const std::string& message) {
  return "Forbidden: " + message;
}

std::string UnsupportedValue(const std::string& quoted_value, const std::vector<std::string>& supported) {
  std::string out = "Unsupported value: " + quoted_value + ": supported values: ";
  for (size_t i = 0; i < supported.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(supported[i]);
  }
  return out;
}

std::string DuplicateValue(const std::string& quoted_value) {
  return "Duplicate value: " + quoted_value;
}

std::string Quote(const std::string& value) {
  std::string out = "\"";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\x%02x", u);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace netpol::api
