#include "agent/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

namespace netpol::agent {
namespace {

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[40];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03lldZ", buffer, static_cast<long long>(ms));
  return out;
}

void Logger::operator()(LogLevel level, const std::string& message, nlohmann::json fields) const {
  if (level < min_level_) return;
  fields["ts"] = Timestamp();
  fields["level"] = LevelName(level);
  fields["msg"] = message;
  fields["node"] = node_;
  if (sink_) {
    sink_(fields.dump());
    return;
  }
  // Lines from several threads, whole.
  static std::mutex out;
  std::lock_guard lock(out);
  std::cerr << fields.dump() << std::endl;
}

}  // namespace netpol::agent
