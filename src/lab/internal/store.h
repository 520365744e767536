// The lab API server's storage: JSON objects by resource, namespace and name,
// each change given the next resourceVersion, kept in SQLite (so a lab keeps
// its state across `lab down --keep-state` / `lab up`) and in a bounded event
// log that watches read from.
//
//   Result<std::unique_ptr<Store>> store = Store::Open("/var/lib/netpol/lab/state.db");
//   Result<Json> created = (*store)->Create("pods", "default", "web", object);
//   std::vector<Event> events;
//   (*store)->WaitEvents(since_rv, deadline, events);   // what happened after since_rv
//
// Thread-safe: one mutex around the database and the log (the lab's load is a
// few requests per second; a watch waits on a condition variable, not the lock).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

struct sqlite3;

namespace netpol::lab::internal {

using Json = nlohmann::json;

struct Event {
  std::string type;  // ADDED, MODIFIED, DELETED
  std::string resource;
  std::string ns;
  uint64_t rv = 0;
  Json object;
};

class Store {
 public:
  // ":memory:" keeps nothing across runs.
  [[nodiscard]] static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  // The object with metadata.resourceVersion set. kAlreadyExists / kNotFound.
  Result<Json> Create(const std::string& resource, const std::string& ns, const std::string& name,
                      Json object);
  Result<Json> Update(const std::string& resource, const std::string& ns, const std::string& name,
                      Json object);
  Result<Json> Delete(const std::string& resource, const std::string& ns, const std::string& name);
  Result<Json> Get(const std::string& resource, const std::string& ns, const std::string& name);
  // Every object of a resource ("" namespace: all namespaces), in name order,
  // and the resourceVersion the list is current at.
  std::pair<std::vector<Json>, uint64_t> List(const std::string& resource, const std::string& ns);
  // At most `limit` (0: every) objects of a resource after the object `after` (a
  // namespace and name; both empty: from the start), in (namespace, name)
  // order: only those are read, as the JSON text stored (what the list
  // response carries; parsing and writing them again cost most of a list of
  // 100k pods). With the resourceVersion, whether objects come after the
  // page and about how many, and the page's last object (the continue
  // token's).
  //
  // `known_remaining`: how many came after `after` when the page before was
  // read (its token carries it); the count is then that less this page's
  // items, an estimate, as the API server's remainingItemCount is. Without
  // it they are counted: counting all that follow for every page made
  // listing 100k pods in pages of 500 cost 200 counts of 50k on average.
  struct Page {
    std::vector<std::string> items;
    uint64_t rv = 0;
    bool more = false;                         // objects follow the page
    size_t remaining = 0;                      // about how many (at least 1 when `more`)
    std::pair<std::string, std::string> last;  // namespace, name
  };
  Page ListPage(const std::string& resource, const std::string& ns,
                const std::pair<std::string, std::string>& after, size_t limit,
                std::optional<size_t> known_remaining = std::nullopt);
  uint64_t CurrentRv();

  // Events of `resource` after `since` (exclusive), waiting until one exists or
  // `deadline`. False when `since` is older than the log keeps: the watcher
  // must list again (410 Gone).
  bool WaitEvents(const std::string& resource, uint64_t since, std::chrono::steady_clock::time_point deadline,
                  std::vector<Event>& out);
  // Wakes every waiting watch (shutdown).
  void WakeAll();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Exec(const std::string& sql);
  Status SaveRv();
  Status Put(const std::string& resource, const std::string& ns, const std::string& name, const Json& object);
  Status Remove(const std::string& resource, const std::string& ns, const std::string& name);
  void Record(Event event);

  sqlite3* db_;
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t rv_ = 0;
  std::deque<Event> log_;   // the last kLogSize events
  uint64_t log_floor_ = 0;  // watches from before this rv must relist
  bool closing_ = false;
};

}  // namespace netpol::lab::internal
