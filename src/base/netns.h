// Entering a network namespace for the duration of a scope, on the calling
// thread: by name (/run/netns/NAME, as `ip netns` makes them) or by path
// (/proc/PID/ns/net, a bind mount, as container runtimes pass them to CNI).
//
//   Result<NetnsGuard> in_node = NetnsGuard::Enter("np-node");
//   if (!in_node) return in_node.error();
//   ... sockets opened here belong to np-node ...
//   // leaving the scope returns the thread to its previous namespace
//
// An empty name means "stay where you are".
#pragma once

#include <string>

#include "base/result.h"

namespace netpol {

class NetnsGuard {
 public:
  [[nodiscard]] static Result<NetnsGuard> Enter(const std::string& name);
  NetnsGuard(NetnsGuard&& other) noexcept;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  explicit NetnsGuard(int previous) : previous_(previous) {}
  int previous_ = -1;  // fd of the namespace to return to; -1: nothing to undo
};

// Opens /run/netns/NAME, or the path itself when it contains a '/'; the caller
// owns the fd. kNotFound when absent.
Result<int> OpenNetns(const std::string& name);

}  // namespace netpol
