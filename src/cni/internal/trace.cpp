#include "cni/internal/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace netpol::cni::internal {

void TraceStep(const std::string& container_id, const char* step) {
  // Read once: the variable does not change during one plugin run.
  static const int kFd = [] {
    const char* path = std::getenv("NETPOL_CNI_TRACE");
    return path == nullptr || *path == '\0' ? -1
                                            : ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }();
  if (kFd < 0) return;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  char line[256];
  const int n = std::snprintf(line, sizeof(line), "%.64s %s %lld\n", container_id.c_str(), step,
                              static_cast<long long>(now.tv_sec) * 1'000'000'000LL + now.tv_nsec);
  if (n > 0) (void)!::write(kFd, line, static_cast<size_t>(std::min(n, static_cast<int>(sizeof(line)) - 1)));
}

}  // namespace netpol::cni::internal
