// Changes others make to table `inet netpol`, as the kernel announces them:
// nftables' change notifications (the NFNLGRP_NFTABLES multicast group, what
// `nft monitor` reads), in the node's network namespace.
//
//   Result<TableMonitor> monitor = TableMonitor::Open("np-node", owner);
//   Result<std::vector<std::string>> changed = monitor->Next(200ms);
//   // {"table inet netpol deleted by nft (pid 4242)"}
//
// Listening costs the committer: with a listener in the namespace, the
// kernel builds a notification for every element a transaction adds or
// deletes (measured: 808 adds and 808 deletes took 2.3-3.7 ms, 4.3-6.2 ms
// with a listener). So the backend's own commits are made with the monitor
// not listening (`MonitorOwner::BeginCommit` / `EndCommit` around them), and
// the ruleset's generation, read before and after, tells whether anyone else
// committed in that window (then reported: only reading the table back says
// what they did). Otherwise the kernel ends every transaction with a "new
// generation" message naming the process that committed it; a transaction
// is ours when that process is this one (its thread, or, seen from another
// PID namespace, a process this one cannot see whose name is that of a
// thread that committed through the backend). Ours are dropped; others' that
// touched the table are described, one line per kind of change. Rules added, deleted or
// replaced by others also set `owner.rules_touched`. Notifications the socket lost (its
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

// What the backend and its monitor share: who commits for the backend, and
// the monitor's sockets, so a commit can be made without listening to it.
struct MonitorOwner {
  // Around each commit, on the committing thread: stops listening and reads
  // the generation; listens again and tells (by the generation) whether
  // others committed meanwhile.
  struct Window {
    bool open = false;
    uint32_t generation = 0;
  };
  Window BeginCommit();
  // `commits`: how many transactions the backend committed in the window.
  void EndCommit(const Window& window, uint32_t commits = 1);
  bool IsCommitter(const std::string& name);

  std::atomic<bool> rules_touched{false};  // others added, deleted or replaced rules
  std::atomic<bool> unseen{false};         // others committed while the monitor was not listening

  std::mutex mu;
  std::vector<std::string> committers;  // thread names (comm) that committed through the backend
  int listen_fd = -1;                   // the monitor's sockets while it exists
  int query_fd = -1;
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
