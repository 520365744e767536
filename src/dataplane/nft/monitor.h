// Changes others make to table `inet netpol`, as the kernel announces them:
// nftables' change notifications (the NFNLGRP_NFTABLES multicast group, what
// `nft monitor` reads), in the node's network namespace.
//
//   Result<TableMonitor> monitor = TableMonitor::Open("np-node", owner);
//   Result<std::vector<std::string>> changed = monitor->Next(200ms);
//   // {"table inet netpol deleted by nft (pid 4242)"}
//
// The kernel ends every transaction with a "new generation" message naming
// the process that committed it; a transaction is ours when that process is
// this one (its thread, or, seen from another PID namespace, a process
// this one cannot see whose name is that of a thread that committed through
// the backend: `owner`). Ours are dropped; others' that touched the table
// are described, one line per kind of change. Rules added, deleted or
// replaced by others also set `owner.rules_touched` (a read-back compares
// rule counts, not their contents). Notifications the socket lost (its
// buffer overflowed) are reported as such: only reading the table back
// tells what happened.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"

namespace netpol::dataplane::nft {

// What the monitor needs from the backend: who commits for it.
struct MonitorOwner {
  std::mutex mu;
  std::vector<std::string> committers;  // thread names (comm) that committed through the backend
  std::atomic<bool> rules_touched{false};
  void Committing();  // called on the committing thread
  bool IsCommitter(const std::string& name);
};

class TableMonitor {
 public:
  [[nodiscard]] static Result<TableMonitor> Open(const std::string& netns,
                                                 std::shared_ptr<MonitorOwner> owner);
  TableMonitor(TableMonitor&& other) noexcept;
  TableMonitor& operator=(TableMonitor&&) = delete;
  ~TableMonitor();

  // Waits up to `timeout` for notifications; the changes others made to the
  // table in the transactions that completed meanwhile (empty: none).
  [[nodiscard]] Result<std::vector<std::string>> Next(std::chrono::milliseconds timeout);

 private:
  struct State;
  explicit TableMonitor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace netpol::dataplane::nft
