// netpold's log: one JSON object per line on stderr, with its time, level,
// message, node and the fields the caller adds.
//
//   Logger log(LogLevel::kInfo, "node-1");
//   log(LogLevel::kWarn, "watch interrupted; recovering", {{"kind", "Pod"}, {"error", "..."}});
//   // {"error":"...","kind":"Pod","level":"warn","msg":"watch interrupted; recovering",...}
//
// A test gives a sink of its own to read what was logged instead.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace netpol::agent {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;
  // Lines below `min_level` are dropped; no sink: stderr.
  explicit Logger(LogLevel min_level = LogLevel::kInfo, std::string node = "", Sink sink = nullptr)
      : min_level_(min_level), node_(std::move(node)), sink_(std::move(sink)) {}

  void operator()(LogLevel level, const std::string& message,
                  nlohmann::json fields = nlohmann::json::object()) const;

 private:
  LogLevel min_level_;
  std::string node_;
  Sink sink_;
};

// Now, as the log writes it: "2026-12-06T09:38:06.123Z" (UTC).
std::string Timestamp();

}  // namespace netpol::agent
