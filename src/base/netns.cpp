#include "base/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace netpol {

Result<int> OpenNetns(const std::string& name) {
  const bool is_path = name.find('/') != std::string::npos;
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgument("invalid network namespace name \"" + name + "\"");
  }
  const std::string path = is_path ? name : "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("network namespace \"" + name + "\" does not exist (" + path + ")");
    return PermissionDenied("cannot open " + path + ": " + std::strerror(err));
  }
  return fd;
}

Result<NetnsGuard> NetnsGuard::Enter(const std::string& name) {
  if (name.empty()) return NetnsGuard(-1);
  NETPOL_ASSIGN_OR_RETURN(const int target, OpenNetns(name), "entering network namespace");
  const int previous = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (previous < 0) {
    const int err = errno;
    ::close(target);
    return Internal(std::string("cannot open the current network namespace: ") + std::strerror(err));
  }
  if (::setns(target, CLONE_NEWNET) != 0) {
    const int err = errno;
    ::close(target);
    ::close(previous);
    return PermissionDenied(
        "cannot enter network namespace \"" + name + "\": " + std::strerror(err) +
        (err == EPERM ? " (netpol needs CAP_SYS_ADMIN and CAP_NET_ADMIN; run as root)" : ""));
  }
  ::close(target);
  return NetnsGuard(previous);
}

NetnsGuard::NetnsGuard(NetnsGuard&& other) noexcept : previous_(other.previous_) {
  other.previous_ = -1;
}

NetnsGuard::~NetnsGuard() {
  if (previous_ < 0) return;
  // Returning can only fail if the kernel refuses a namespace we were in a moment
  // ago; carrying on in the wrong namespace would program the wrong node.
  if (::setns(previous_, CLONE_NEWNET) != 0) std::abort();
  ::close(previous_);
}

}  // namespace netpol
