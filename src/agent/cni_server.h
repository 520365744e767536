// The agent's unix socket for netpol-cni, with bounded resources: it accepts
// connections and hands each to a handler on a small pool of worker threads,
// and gives every read a deadline, so neither a stream of connections nor a
// client that connects and says nothing can grow the agent or pin a worker.
//
//   CniServer server({.path = "/run/netpol/agent.sock"}, log);
//   Status bound = server.Bind();   // before any loop starts: a bad path fails the start
//   server.Serve(stop, [](CniConnection& c) {
//     while (std::optional<std::string> line = c.ReadLine()) c.Write(Answer(*line) + "\n");
//   });
//
// The socket's mode is set explicitly (not left to the umask) between bind
// and listen, before anyone can connect. At most `max_connections` are
// served at once, one worker each (workers start as needed, up to that many,
// and are kept); beyond that, connections wait in the kernel's listen queue
// until a worker is free, which is logged. A line that does not arrive whole
// within `read_timeout` ends the connection (the handler sees no more lines).
// Nothing the handler throws leaves its worker: the connection is closed and
// the error logged.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"

namespace netpol::agent {

struct CniServerOptions {
  std::string path = "/run/netpol/agent.sock";
  mode_t mode = 0600;
  // Connections served at once; more wait in the listen queue.
  size_t max_connections = 32;
  // For each line a client sends, and for each answer written.
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds write_timeout{5000};
  size_t max_line = 1 << 20;  // longer lines end the connection
};

// One accepted connection, as a handler sees it.
class CniConnection {
 public:
  CniConnection(int fd, const CniServerOptions& options, const std::atomic<bool>& stop)
      : fd_(fd), options_(options), stop_(stop) {}
  // The next line (without its newline); nullopt when the client closed the
  // connection, or the line did not come whole within the read deadline
  // (timed_out() then), or the server is stopping.
  std::optional<std::string> ReadLine();
  // Writes all of `text`; false when it could not within the write deadline.
  bool Write(const std::string& text);
  bool timed_out() const { return timed_out_; }

 private:
  int fd_;
  const CniServerOptions& options_;
  const std::atomic<bool>& stop_;
  std::string buffered_;
  bool timed_out_ = false;
};

struct CniServerStats {
  uint64_t connections = 0;  // accepted
  uint64_t timeouts = 0;     // ended by the read deadline
  uint64_t failures = 0;     // ended by an exception in the handler
  size_t open = 0;           // being served now
  size_t workers = 0;        // threads kept
};

class CniServer {
 public:
  using Handler = std::function<void(CniConnection&)>;
  using Logger = std::function<void(bool warning, const std::string& message)>;

  CniServer(CniServerOptions options, Logger log) : options_(std::move(options)), log_(std::move(log)) {}
  ~CniServer();
  CniServer(const CniServer&) = delete;
  CniServer& operator=(const CniServer&) = delete;

  // Creates the socket's directory, replaces a stale socket file, binds,
  // sets the mode and listens. The error names the path and why.
  [[nodiscard]] Status Bind();
  // Accepts and serves until `stop`; then waits for the connections being
  // served (their reads end at once) and removes the socket file. `beat` is
  // called on every turn of the accept loop (at least every 200 ms), for
  // the agent's liveness (loop_health.h).
  void Serve(
      const std::atomic<bool>& stop, const Handler& handler, const std::function<void()>& beat = [] {});
  CniServerStats stats() const;

 private:
  void Work(const std::atomic<bool>& stop, const Handler& handler);

  CniServerOptions options_;
  Logger log_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable work_;  // a connection queued, or stopping
  std::condition_variable free_;  // a worker finished a connection
  std::deque<int> queue_;         // accepted, not yet taken by a worker
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  CniServerStats stats_;
};

}  // namespace netpol::agent
