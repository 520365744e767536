#include "agent/loop_health.h"

#include <cstdio>
#include <exception>

namespace netpol::agent {

namespace {

std::string SecondsText(LoopHealth::Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", std::chrono::duration<double>(d).count());
  return text;
}

}  // namespace

LoopHealth::Id LoopHealth::Add(std::string name, Clock::duration bound) {
  loops_.emplace_back(std::move(name), bound, now_().time_since_epoch().count());
  return loops_.size() - 1;
}

std::vector<std::string> LoopHealth::Stuck() const {
  std::vector<std::string> stuck;
  const Clock::time_point now = now_();
  for (const Loop& loop : loops_) {
    const Clock::duration silent =
        now - Clock::time_point(Clock::duration(loop.last.load(std::memory_order_relaxed)));
    if (silent > loop.bound) {
      stuck.push_back("the " + loop.name + " made no progress for " + SecondsText(silent) + " (bound " +
                      SecondsText(loop.bound) + ")");
    }
  }
  return stuck;
}

std::optional<Error> RunLoop(const std::string& name, const std::function<void()>& body,
                             const std::atomic<bool>& halt) {
  // Nothing may leave a thread's function (std::terminate, with no word of
  // which loop): what a loop throws becomes the reason the agent stops.
  try {
    body();
  } catch (const std::exception& e) {
    return Internal("the " + name + " failed: " + e.what());
  } catch (...) {
    return Internal("the " + name + " failed: an exception that is not a std::exception");
  }
  if (halt.load()) return std::nullopt;
  return Internal("the " + name + " ended unexpectedly");
}

}  // namespace netpol::agent
