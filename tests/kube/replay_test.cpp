// kube::ListWatch against a server that replays an API server's responses
// (tests/kube/testdata/replay: LIST pages, a watch stream, Status objects in
// kube-apiserver's wire format) and injects the faults a scenario file names:
// disconnects mid-event, slow and stalled streams, truncated pages, 410 Gone
// as an HTTP status and as an ERROR event, an expired continue token, 5xx and
// 429 answers. Every scenario must end with the client's cache equal to the
// server's final state, no event delivered twice or applied to a missing
// object, every watch resumed from the last complete event (or the last list),
// and exactly the lists and watches the scenario expects.
//
// Scenario lines (tests/kube/testdata/replay/scenarios/*.faults):
//   list N ok | cut BYTES | slow CHUNK MS | expire | http CODE
//   watch N ok | end K | cut K BYTES | slow CHUNK MS | stall K | gone-event |
//           gone-http | error-event | http CODE
//   expect lists N | expect watches N | expect problems N (failures reported, then recovered)
// "list N" is the Nth list (its first page); "cut BYTES" cuts the first page,
// "expire" answers the second page's continue token with 410. Watch actions
// stream the events after the requested resourceVersion: all of them ("ok",
// "slow"; the connection then stays open as a real server's does), K of them
// then a normal end ("end"), K and BYTES of the next then a dropped
// connection ("cut"), K then silence ("stall"). Requests a scenario does not
// name are answered "ok".
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/load.h"
#include "kube/client.h"

namespace netpol::kube {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const fs::path kData = fs::path(NETPOL_SOURCE_DIR) / "tests/kube/testdata/replay";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string KeyOf(const Json& object) {
  return object["metadata"].value("namespace", "") + "/" + object["metadata"].value("name", "");
}

uint64_t RvOf(const Json& object) {
  return std::stoull(object["metadata"].value("resourceVersion", "0"));
}

// An object as state: what a list item and a watch object of the same version share.
Json Comparable(Json object) {
  object.erase("kind");
  object.erase("apiVersion");
  return object;
}

struct Action {
  std::string verb = "ok";
  std::vector<std::string> args;
  int Arg(size_t i) const { return std::stoi(args.at(i)); }
};

struct Scenario {
  std::map<int, Action> lists;
  std::map<int, Action> watches;
  int expect_lists = -1;
  int expect_watches = -1;
  size_t expect_problems = 0;  // failures the client reports and recovers from
};

Scenario ParseScenario(const fs::path& path) {
  Scenario s;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string kind;
    if (!(words >> kind)) continue;
    if (kind == "expect") {
      std::string what;
      int n = 0;
      words >> what >> n;
      if (what == "problems") {
        s.expect_problems = static_cast<size_t>(n);
      } else {
        (what == "lists" ? s.expect_lists : s.expect_watches) = n;
      }
      continue;
    }
    int n = 0;
    Action action;
    words >> n >> action.verb;
    for (std::string arg; words >> arg;) action.args.push_back(arg);
    (kind == "list" ? s.lists : s.watches)[n] = action;
  }
  return s;
}

// The replaying API server: /api/v1/pods only, one scenario.
class ReplayServer {
 public:
  explicit ReplayServer(Scenario scenario) : scenario_(std::move(scenario)) {
    pages_ = {ReadFile(kData / "list-page-1.json"), ReadFile(kData / "list-page-2.json")};
    std::istringstream events(ReadFile(kData / "watch.jsonl"));
    for (std::string line; std::getline(events, line);) {
      if (!line.empty()) events_.push_back({RvOf(Json::parse(line)["object"]), line + "\n"});
    }
    // The state after every event: what a relist returns.
    for (const std::string& page : pages_) {
      const Json list = Json::parse(page);
      for (const Json& item : list["items"]) final_[KeyOf(item)] = Comparable(item);
    }
    for (const auto& [rv, line] : events_) {
      const Json event = Json::parse(line);
      if (event["type"] == "DELETED") final_.erase(KeyOf(event["object"]));
      if (event["type"] == "ADDED" || event["type"] == "MODIFIED") {
        final_[KeyOf(event["object"])] = Comparable(event["object"]);
      }
    }
    server_.Get("/api/v1/pods", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.has_param("watch")) {
        Watch(req, res);
      } else {
        List(req, res);
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    serving_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~ReplayServer() {
    stopping_ = true;
    server_.stop();
    serving_.join();
  }

  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::map<std::string, Json>& final_state() const { return final_; }
  int lists() const { return lists_; }
  int watches() const { return watches_; }
  // The last watch has streamed every event and holds the connection open.
  bool caught_up() const { return caught_up_; }
  std::vector<std::string> violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }

 private:
  void Violation(const std::string& what) {
    std::lock_guard lock(mu_);
    violations_.push_back(what);
  }

  static std::string Status(const std::string& file, const std::string& rv = "") {
    std::string text = ReadFile(kData / file);
    if (const size_t at = text.find("%RV%"); at != std::string::npos) text.replace(at, 4, rv);
    return text;
  }

  void List(const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("limit")) Violation("a list without limit");
    const bool first_page = !req.has_param("continue");
    if (first_page) ++lists_;
    const Action action = scenario_.lists.contains(lists_) ? scenario_.lists.at(lists_) : Action{};
    std::string body;
    if (lists_ == 1) {
      // The captured pages, as the server sent them.
      if (!first_page && req.get_param_value("continue") != Json::parse(pages_[0])["metadata"]["continue"]) {
        Violation("second page asked with a continue token the first page did not give");
      }
      body = first_page ? pages_[0] : pages_[1];
    } else {
      body = Relist(first_page);
    }
    if (first_page && action.verb == "http") return Refuse(res, action.Arg(0));
    if (!first_page && action.verb == "expire") {
      res.status = 410;
      res.set_content(Status("status-continue-expired.json"), "application/json");
      return;
    }
    if (!first_page) list_done_rv_ = Json::parse(body)["metadata"].value("resourceVersion", "");
    if (first_page && action.verb == "cut") {
      const size_t keep = static_cast<size_t>(action.Arg(0));
      res.set_content_provider(body.size(), "application/json",
                               [body, keep](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset < keep) sink.write(body.data() + offset, keep - offset);
                                 return offset < keep;  // then the connection drops
                               });
      list_done_rv_.clear();
      return;
    }
    if (action.verb == "slow") {
      const size_t chunk = static_cast<size_t>(action.Arg(0));
      const milliseconds delay(action.Arg(1));
      res.set_content_provider(body.size(), "application/json",
                               [body, chunk, delay](size_t offset, size_t, httplib::DataSink& sink) {
                                 std::this_thread::sleep_for(delay);
                                 sink.write(body.data() + offset, std::min(chunk, body.size() - offset));
                                 return true;
                               });
    } else {
      res.set_content(body, "application/json");
    }
    if (!first_page) expected_resume_ = list_done_rv_;
  }

  // A list at the newest resourceVersion, in two pages.
  std::string Relist(bool first_page) {
    Json list = {{"kind", "PodList"}, {"apiVersion", "v1"}};
    list["metadata"]["resourceVersion"] = std::to_string(events_.back().first);
    list["items"] = Json::array();
    size_t i = 0;
    for (const auto& [key, object] : final_) {
      if ((i++ < final_.size() / 2) == first_page) list["items"].push_back(object);
    }
    if (first_page) list["metadata"]["continue"] = "relist-" + std::to_string(lists_);
    return list.dump() + "\n";
  }

  void Refuse(httplib::Response& res, int code) {
    res.status = code;
    res.set_content(Status(code == 429 ? "status-too-many.json" : "status-internal.json"),
                    "application/json");
    if (code == 429) res.set_header("Retry-After", "1");
  }

  void Watch(const httplib::Request& req, httplib::Response& res) {
    const int n = ++watches_;
    caught_up_ = false;
    const Action action = scenario_.watches.contains(n) ? scenario_.watches.at(n) : Action{};
    const std::string rv = req.get_param_value("resourceVersion");
    if (req.get_param_value("allowWatchBookmarks") != "true") Violation("a watch without bookmarks");
    if (!req.has_param("timeoutSeconds")) Violation("a watch without timeoutSeconds");
    if (rv != expected_resume_) {
      Violation("watch " + std::to_string(n) + " from resourceVersion \"" + rv + "\", expected \"" +
                expected_resume_ + "\"");
    }
    if (action.verb == "http") return Refuse(res, action.Arg(0));
    if (action.verb == "gone-http") {
      res.status = 410;
      res.set_content(Status("status-too-old.json", rv), "application/json");
      expected_resume_ = "(a list first)";
      return;
    }
    std::vector<std::string> lines;
    for (const auto& [event_rv, line] : events_) {
      if (!rv.empty() && event_rv > std::stoull(rv)) lines.push_back(line);
    }
    if (action.verb == "gone-event" || action.verb == "error-event") {
      const bool gone = action.verb == "gone-event";
      const std::string status = gone ? Status("status-too-old.json", rv) : Status("status-internal.json");
      lines = {Json{{"type", "ERROR"}, {"object", Json::parse(status)}}.dump() + "\n"};
      if (gone) expected_resume_ = "(a list first)";
    }
    res.set_chunked_content_provider(
        "application/json",
        [this, action, lines](size_t, httplib::DataSink& sink) { return Stream(action, lines, sink); });
  }

  // One watch response; false drops the connection.
  bool Stream(const Action& action, const std::vector<std::string>& lines, httplib::DataSink& sink) {
    const auto send = [&](const std::string& line, size_t bytes) {
      if (action.verb != "slow") return sink.write(line.data(), bytes);
      const size_t chunk = static_cast<size_t>(action.Arg(0));
      for (size_t at = 0; at < bytes; at += chunk) {
        std::this_thread::sleep_for(milliseconds(action.Arg(1)));
        if (!sink.write(line.data() + at, std::min(chunk, bytes - at))) return false;
      }
      return true;
    };
    const bool ends = action.verb == "end" || action.verb == "cut" || action.verb == "stall";
    const size_t count = ends ? std::min(lines.size(), static_cast<size_t>(action.Arg(0))) : lines.size();
    for (size_t i = 0; i < count; ++i) {
      if (!send(lines[i], lines[i].size())) return false;
      const Json event = Json::parse(lines[i]);
      if (event["type"] != "ERROR") expected_resume_ = std::to_string(RvOf(event["object"]));
    }
    if (action.verb == "cut") {
      if (count < lines.size()) {
        send(lines[count], std::min(lines[count].size() - 1, static_cast<size_t>(action.Arg(1))));
      }
      return false;
    }
    if (action.verb == "end" || action.verb == "gone-event" || action.verb == "error-event") {
      sink.done();
      return true;
    }
    // Hold the connection open as a server with nothing new does: a bookmark
    // now and then (kube-apiserver: about once a minute; here faster than
    // the client's stall time). A stall is silence instead.
    if (action.verb == "stall") {
      for (int i = 0; i < 1000 && !stopping_; ++i) std::this_thread::sleep_for(milliseconds(10));
      return false;
    }
    caught_up_ = count == lines.size();
    const std::string bookmark = Json::parse(events_.back().second).dump() + "\n";
    for (int i = 0; i < 1000 && !stopping_; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
      if (i % 40 == 39 && caught_up_ && !sink.write(bookmark.data(), bookmark.size())) return false;
    }
    return false;
  }

  Scenario scenario_;
  httplib::Server server_;
  std::thread serving_;
  int port_ = 0;
  std::vector<std::string> pages_;
  std::vector<std::pair<uint64_t, std::string>> events_;  // resourceVersion, line
  std::map<std::string, Json> final_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> lists_{0};
  std::atomic<int> watches_{0};
  std::atomic<bool> caught_up_{false};
  // Requests arrive one at a time (the client waits for each), so these need no lock.
  std::string expected_resume_ = "(a list first)";
  std::string list_done_rv_;
  mutable std::mutex mu_;
  std::vector<std::string> violations_;
};

// The client's view: a cache kept from lists and events, and every
// inconsistency an event could reveal. `State` maps "namespace/name" to an
// entry; the handlers below fill it from JSON values or from api objects.
template <typename Handler, typename State>
class CacheOf : public Handler {
 public:
  void OnListBegin() override {
    std::lock_guard lock(mu_);
    staged_.clear();
  }
  void OnListEnd() override {
    std::lock_guard lock(mu_);
    state_ = std::move(staged_);
    staged_.clear();
  }
  void OnProblem(const std::string& what) override {
    std::lock_guard lock(mu_);
    recovered_.push_back(what);
  }

  State state() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  std::vector<std::string> problems() const {
    std::lock_guard lock(mu_);
    return problems_;
  }
  std::vector<std::string> recovered() const {
    std::lock_guard lock(mu_);
    return recovered_;
  }

 protected:
  // An event's consistency with what is known (mu_ held): delivered once,
  // ADDED only when unknown, others only when known, never older.
  template <typename RvOfEntry>
  void CheckEvent(const std::string& type, const std::string& key, uint64_t rv, RvOfEntry rv_of) {
    if (!delivered_.insert(rv).second)
      problems_.push_back("event " + std::to_string(rv) + " delivered twice");
    const auto it = state_.find(key);
    if (type == "ADDED" && it != state_.end()) problems_.push_back("ADDED " + key + ", already known");
    if (type != "ADDED" && it == state_.end()) problems_.push_back(type + " " + key + ", not known");
    if (it != state_.end() && rv_of(it->second) >= rv)
      problems_.push_back(type + " " + key + " older than known");
  }

  mutable std::mutex mu_;
  State staged_;
  State state_;
  std::vector<std::string> problems_;

 private:
  std::set<uint64_t> delivered_;
  std::vector<std::string> recovered_;
};

class Cache final : public CacheOf<ListWatchHandler, std::map<std::string, Json>> {
 public:
  void OnListPage(std::vector<Json>& items) override {
    std::lock_guard lock(mu_);
    for (Json& item : items) {
      const std::string key = KeyOf(item);
      staged_[key] = Comparable(std::move(item));
    }
  }
  void OnEvent(const std::string& type, const Json& object) override {
    std::lock_guard lock(mu_);
    const std::string key = KeyOf(object);
    CheckEvent(type, key, RvOf(object), [](const Json& known) { return RvOf(known); });
    if (type == "DELETED") {
      state_.erase(key);
    } else {
      state_[key] = Comparable(object);
    }
  }
};

// The same cache kept from api objects (ObjectListWatchHandler: the node
// agent's path), each with its resourceVersion.
using ObjectState = std::map<std::string, std::pair<uint64_t, api::Object>>;

class ObjectCache final : public CacheOf<ObjectListWatchHandler, ObjectState> {
 public:
  void OnListPage(std::vector<api::ApiItem>& items) override {
    std::lock_guard lock(mu_);
    for (api::ApiItem& item : items) {
      if (!item.object) {
        problems_.push_back("list item " + item.name + " undecodable: " + item.problem);
        continue;
      }
      staged_[item.namespace_ + "/" + item.name] = {std::stoull(item.resource_version),
                                                    std::move(*item.object)};
    }
  }
  void OnEvent(const std::string& type, api::ApiItem& item) override {
    std::lock_guard lock(mu_);
    const std::string key = item.namespace_ + "/" + item.name;
    const uint64_t rv = std::stoull(item.resource_version);
    if (!item.object) problems_.push_back(type + " " + key + " undecodable: " + item.problem);
    CheckEvent(type, key, rv, [](const std::pair<uint64_t, api::Object>& known) { return known.first; });
    if (type == "DELETED") {
      state_.erase(key);
    } else if (item.object) {
      state_[key] = {rv, std::move(*item.object)};
    }
  }
};

// The server's final state as api objects (decoded from its JSON values the
// other way, api::LoadJson), to compare an ObjectCache with.
ObjectState Decoded(const std::map<std::string, Json>& state) {
  ObjectState out;
  for (const auto& [key, value] : state) {
    Json object = value;
    object["kind"] = "Pod";
    object["apiVersion"] = "v1";
    api::LoadResult loaded = api::LoadJson(object, "replay", {.field_positions = false});
    EXPECT_TRUE(loaded.ok() && loaded.objects.size() == 1) << key;
    if (loaded.objects.size() == 1) out[key] = {RvOf(value), std::move(loaded.objects.front())};
  }
  return out;
}

std::string Versions(const ObjectState& state) {
  std::string out;
  for (const auto& [key, object] : state) out += key + "@" + std::to_string(object.first) + " ";
  return out;
}

// "shop/db-0@70223 ..." for failure messages.
std::string Versions(const std::map<std::string, Json>& state) {
  std::string out;
  for (const auto& [key, object] : state) out += key + "@" + std::to_string(RvOf(object)) + " ";
  return out;
}

std::vector<fs::path> Scenarios() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(kData / "scenarios")) {
    if (entry.path().extension() == ".faults") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ReplayTest : public testing::TestWithParam<fs::path> {};

TEST_P(ReplayTest, EndsInStepWithTheServer) {
  const Scenario scenario = ParseScenario(GetParam());
  ReplayServer server(scenario);
  auto client = Client::Create(Api(server.address()));
  ASSERT_TRUE(client.ok()) << client.error().message();
  Cache cache;
  ListWatchOptions options;
  options.stall = std::chrono::seconds(1);
  options.timeout_seconds = 30;
  options.backoff_initial = milliseconds(20);
  options.backoff_max = milliseconds(200);
  ListWatch loop(**client, "/api/v1/pods", cache, options);
  std::atomic<bool> stop{false};
  std::thread running([&] { loop.Run(stop); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         !(server.caught_up() && cache.state() == server.final_state())) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  // A moment more: a client that was going to ask again would do so now.
  std::this_thread::sleep_for(milliseconds(300));
  stop = true;
  running.join();

  EXPECT_TRUE(cache.state() == server.final_state())
      << "the cache lost or kept state: has " << Versions(cache.state()) << ", server has "
      << Versions(server.final_state());
  EXPECT_EQ(cache.problems(), std::vector<std::string>{});
  EXPECT_EQ(server.violations(), std::vector<std::string>{});
  ASSERT_GE(scenario.expect_lists, 0) << "a scenario says how many lists it takes";
  ASSERT_GE(scenario.expect_watches, 0) << "a scenario says how many watches it takes";
  EXPECT_EQ(server.lists(), scenario.expect_lists);
  EXPECT_EQ(server.watches(), scenario.expect_watches);
  // Every fault the scenario injects is one the client had to recover from.
  EXPECT_EQ(cache.recovered().size(), scenario.expect_problems) << testing::PrintToString(cache.recovered());
}

// The same scenarios through the typed path: every page and event decoded
// from the response text into api objects, the same objects LoadJson makes
// of the server's JSON.
TEST_P(ReplayTest, ObjectsEndInStepWithTheServer) {
  const Scenario scenario = ParseScenario(GetParam());
  ReplayServer server(scenario);
  auto client = Client::Create(Api(server.address()));
  ASSERT_TRUE(client.ok()) << client.error().message();
  const ObjectState expected = Decoded(server.final_state());
  ASSERT_FALSE(expected.empty());
  ObjectCache cache;
  ListWatchOptions options;
  options.stall = std::chrono::seconds(1);
  options.timeout_seconds = 30;
  options.backoff_initial = milliseconds(20);
  options.backoff_max = milliseconds(200);
  ListWatch loop(**client, kPolicyResources[1], cache, options);
  std::atomic<bool> stop{false};
  std::thread running([&] { loop.Run(stop); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline && !(server.caught_up() && cache.state() == expected)) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  std::this_thread::sleep_for(milliseconds(300));
  stop = true;
  running.join();

  EXPECT_TRUE(cache.state() == expected) << "the cache lost or kept state: has " << Versions(cache.state())
                                         << ", server has " << Versions(expected);
  EXPECT_EQ(cache.problems(), std::vector<std::string>{});
  EXPECT_EQ(server.violations(), std::vector<std::string>{});
  EXPECT_EQ(server.lists(), scenario.expect_lists);
  EXPECT_EQ(server.watches(), scenario.expect_watches);
  EXPECT_EQ(cache.recovered().size(), scenario.expect_problems) << testing::PrintToString(cache.recovered());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ReplayTest, testing::ValuesIn(Scenarios()),
                         [](const testing::TestParamInfo<fs::path>& param) {
                           std::string name = param.param.stem().string();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace netpol::kube
