// Timestamps as the Kubernetes API writes them (RFC 3339, UTC, seconds).
//
//   object["metadata"]["creationTimestamp"] = Rfc3339Now();   // "2026-11-26T20:15:02Z"
#pragma once

#include <ctime>
#include <string>

namespace netpol::lab::internal {

inline std::string Rfc3339Now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace netpol::lab::internal
