// The lab API server through netpol's own client (no root, no kubectl):
// CRUD with the API's status codes, selectors, pagination, validation errors
// with field paths, patches as kubectl sends them, cascading deletes, and
// watches that deliver every change once, in order.
#include "lab/apiserver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "lab/internal/patch.h"

namespace netpol::lab {
namespace {

using kube::Json;

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ApiServer::Start({.nodes = {"node-1", "node-2"}});
    ASSERT_TRUE(server.ok()) << server.error().message();
    server_ = std::move(*server);
    auto client = kube::Client::Create(kube::Api(server_->url()));
    ASSERT_TRUE(client.ok());
    api_ = std::move(*client);
  }
  Result<Json> Create(const std::string& path, const Json& object) {
    return api_->Request("POST", path, object.dump());
  }
  static Json PodJson(const std::string& name, const std::string& app) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
            {"spec", {{"containers", {{{"name", "c"}, {"ports", {{{"containerPort", 80}}}}}}}}}};
  }
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<kube::Client> api_;
};

TEST_F(ApiServerTest, CreateGetListDeleteWithTheApisCodes) {
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("web", "web")).ok());
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("db", "db")).ok());
  const auto again = Create("/api/v1/namespaces/default/pods", PodJson("web", "web"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  const auto nowhere = Create("/api/v1/namespaces/nope/pods", PodJson("x", "x"));
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.error().code(), ErrorCode::kNotFound);
  const auto web = api_->Get("/api/v1/namespaces/default/pods/web");
  ASSERT_TRUE(web.ok());
  EXPECT_FALSE((*web)["metadata"].value("uid", "").empty());
  EXPECT_EQ((*web)["status"]["phase"], "Pending");
  // Scheduled on the least-loaded node: one pod each.
  const auto db = api_->Get("/api/v1/namespaces/default/pods/db");
  EXPECT_NE((*web)["spec"]["nodeName"], (*db)["spec"]["nodeName"]);
  const auto selected = api_->Get("/api/v1/pods?labelSelector=app%20in%20(db,cache)");
  ASSERT_EQ((*selected)["items"].size(), 1u);
  EXPECT_EQ((*selected)["items"][0]["metadata"]["name"], "db");
  const auto on_node = api_->Get("/api/v1/pods?fieldSelector=spec.nodeName%3D" +
                                 (*web)["spec"]["nodeName"].get<std::string>());
  ASSERT_EQ((*on_node)["items"].size(), 1u);
  const auto page = api_->Get("/api/v1/namespaces/default/pods?limit=1");
  ASSERT_EQ((*page)["items"].size(), 1u);
  const std::string next = (*page)["metadata"]["continue"];
  const auto rest = api_->Get("/api/v1/namespaces/default/pods?limit=1&continue=" + next);
  ASSERT_EQ((*rest)["items"].size(), 1u);
  EXPECT_NE((*rest)["items"][0]["metadata"]["name"], (*page)["items"][0]["metadata"]["name"]);
  ASSERT_TRUE(api_->Request("DELETE", "/api/v1/namespaces/default/pods/web").ok());
  const auto gone = api_->Get("/api/v1/namespaces/default/pods/web");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
  // Nodes are the lab's, not the user's.
  EXPECT_FALSE(api_->Request("DELETE", "/api/v1/nodes/node-1").ok());
}

// Pages resume after the last object returned, so objects created or deleted
// between pages shift nothing: every object there throughout comes exactly
// once (with and without a selector), and a foreign token is 410 Expired.
TEST_F(ApiServerTest, PagesResumeAfterTheLastObjectReturned) {
  ASSERT_TRUE(Create("/api/v1/namespaces", {{"metadata", {{"name", "other"}}}}).ok());
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson(name, "web")).ok());
    ASSERT_TRUE(Create("/api/v1/namespaces/other/pods", PodJson(name, "web")).ok());
  }
  for (const std::string selector : {"", "&labelSelector=app%3Dweb"}) {
    std::vector<std::string> seen;
    std::string token;
    for (int page = 0; page < 10; ++page) {
      const auto got =
          api_->Get("/api/v1/pods?limit=3" + selector + (token.empty() ? "" : "&continue=" + token));
      ASSERT_TRUE(got.ok()) << got.error().message();
      for (const Json& pod : (*got)["items"])
        seen.push_back(pod["metadata"]["namespace"].get<std::string>() + "/" +
                       pod["metadata"]["name"].get<std::string>());
      if (page == 0) {
        ASSERT_EQ((*got)["metadata"].value("remainingItemCount", 0), 7);
        // Between pages: one already returned goes (an index-based token
        // would now skip one), and one sorting after everything comes.
        ASSERT_TRUE(api_->Request("DELETE", "/api/v1/namespaces/default/pods/a").ok());
        ASSERT_TRUE(Create("/api/v1/namespaces/other/pods", PodJson("zz", "web")).ok());
      }
      token = (*got)["metadata"].value("continue", "");
      if (token.empty()) break;
    }
    // Every object there throughout, once, in order; the new one may come too
    // (it does here: it sorts after the resume point).
    const std::vector<std::string> want = {"default/a", "default/b", "default/c", "default/d",
                                           "default/e", "other/a",   "other/b",   "other/c",
                                           "other/d",   "other/e",   "other/zz"};
    EXPECT_EQ(seen, want) << "selector: " << selector;
    // As it was, for the next round.
    ASSERT_TRUE(api_->Request("DELETE", "/api/v1/namespaces/other/pods/zz").ok());
    ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("a", "web")).ok());
  }
  const auto foreign = api_->Get("/api/v1/pods?limit=3&continue=17");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code(), ErrorCode::kFailedPrecondition) << foreign.error().message();
}

// The client keeps its connections: twenty requests one after another open
// one, not twenty.
TEST_F(ApiServerTest, RequestsReuseTheClientsConnections) {
  const uint64_t before = api_->connections_opened();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(api_->Get("/api/v1/namespaces/default/pods").ok());
  const uint64_t opened = api_->connections_opened() - before;
  EXPECT_EQ(opened, 1u) << "a connection per request";
  // Concurrent requests each need one of their own, and give it back.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) EXPECT_TRUE(api_->Get("/api/v1/namespaces").ok());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(api_->connections_opened() - before, 1u + 4u);
}

TEST_F(ApiServerTest, InvalidObjectsAreRejectedWithFieldPaths) {
  const Json policy = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", {{"name", "bad"}}},
      {"spec", {{"podSelector", Json::object()}, {"ingress", {{{"ports", {{{"port", 70000}}}}}}}}}};
  const auto created = Create("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", policy);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(created.error().message().find("NetworkPolicy.networking.k8s.io \"bad\" is invalid: "
                                           "spec.ingress[0].ports[0].port"),
            std::string::npos)
      << created.error().message();
  const auto list = api_->Get("/apis/networking.k8s.io/v1/networkpolicies");
  EXPECT_TRUE((*list)["items"].empty()) << "nothing stored";
}

// Fields of the wrong type get the API server's 400 in its decoder's words
// (they used to throw in the handler: a 500, and for a Service's selector a
// crash of the lab's service controller later). The spec and selector messages
// are kube-apiserver 1.34.4's; for metadata kubectl answers the same Go error
// itself before sending.
TEST_F(ApiServerTest, FieldsOfTheWrongTypeAreTheDecodersBadRequest) {
  const auto rejected = [&](const std::string& path, const Json& object,
                            const std::string& message) -> ::testing::AssertionResult {
    const auto created = Create(path, object);
    if (created.ok()) return ::testing::AssertionFailure() << "created";
    if (created.error().code() != ErrorCode::kInvalidArgument ||
        !created.error().message().ends_with(": " + message))
      return ::testing::AssertionFailure() << created.error().message();
    return ::testing::AssertionSuccess();
  };
  const std::string services = "/api/v1/namespaces/default/services";
  EXPECT_TRUE(rejected(services, {{"metadata", {{"name", "s"}, {"namespace", 5}}}},
                       "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal "
                       "number into Go struct field ObjectMeta.metadata.namespace of type string"));
  EXPECT_TRUE(rejected(services, {{"metadata", {{"name", "s"}}}, {"spec", 5}},
                       "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal "
                       "number into Go struct field Service.spec of type v1.ServiceSpec"));
  EXPECT_TRUE(rejected(services, {{"metadata", {{"name", "s"}}}, {"spec", {{"selector", {{"app", 5}}}}}},
                       "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal "
                       "number into Go struct field ServiceSpec.spec.selector of type string"));
  Json pod = PodJson("p", "web");
  pod["metadata"]["labels"]["app"] = true;
  EXPECT_TRUE(
      rejected("/api/v1/namespaces/default/pods", pod,
               "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal bool into Go "
               "struct field ObjectMeta.metadata.labels of type string"));
  EXPECT_TRUE((*api_->Get(services))["items"].empty()) << "nothing stored";
}

TEST_F(ApiServerTest, PatchesMergeAsKubectlExpects) {
  Json deploy = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec",
           {{"containers", {{{"name", "a"}, {"image", "one"}}, {{"name", "b"}, {"image", "two"}}}}}}}}}}};
  ASSERT_TRUE(Create("/apis/apps/v1/namespaces/default/deployments", deploy).ok());
  // What `kubectl apply` sends when one container's image changes and another goes.
  const Json patch = {
      {"spec",
       {{"replicas", 2},
        {"template",
         {{"spec",
           {{"$setElementOrder/containers", {{{"name", "a"}}}},
            {"containers",
             {{{"name", "a"}, {"image", "three"}}, {{"$patch", "delete"}, {"name", "b"}}}}}}}}}}};
  const auto patched = api_->Request("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                                     patch.dump(), "application/strategic-merge-patch+json");
  ASSERT_TRUE(patched.ok()) << patched.error().message();
  const Json& containers = (*patched)["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 1u);
  EXPECT_EQ(containers[0]["image"], "three");
  EXPECT_EQ((*patched)["spec"]["replicas"], 2);
  EXPECT_EQ((*patched)["metadata"]["generation"], 2);
}

TEST(PatchTest, MergePatchFollowsRfc7386) {
  const Json target = {{"a", "b"}, {"c", {{"d", "e"}, {"f", "g"}}}, {"list", {1, 2}}};
  const Json patch = {{"a", "z"}, {"c", {{"f", nullptr}}}, {"list", {3}}};
  EXPECT_EQ(internal::MergePatch(target, patch), (Json{{"a", "z"}, {"c", {{"d", "e"}}}, {"list", {3}}}));
}

TEST_F(ApiServerTest, DeletingANamespaceTakesItsObjects) {
  ASSERT_TRUE(Create("/api/v1/namespaces", {{"metadata", {{"name", "shop"}}}}).ok());
  const auto ns = api_->Get("/api/v1/namespaces/shop");
  EXPECT_EQ((*ns)["metadata"]["labels"]["kubernetes.io/metadata.name"], "shop");
  ASSERT_TRUE(Create("/api/v1/namespaces/shop/pods", PodJson("p", "p")).ok());
  ASSERT_TRUE(api_->Request("DELETE", "/api/v1/namespaces/shop").ok());
  EXPECT_TRUE((*api_->Get("/api/v1/pods"))["items"].empty());
}

// Records what a ListWatch delivers.
class Recorder final : public kube::ListWatchHandler {
 public:
  void OnList(const std::vector<Json>& items) override {
    std::lock_guard lock(mu);
    log.push_back("LIST " + std::to_string(items.size()));
  }
  void OnEvent(const std::string& type, const Json& object) override {
    std::lock_guard lock(mu);
    log.push_back(type + " " + object["metadata"].value("name", ""));
  }
  std::vector<std::string> Snapshot() {
    std::lock_guard lock(mu);
    return log;
  }
  std::mutex mu;
  std::vector<std::string> log;
};

// Query parameters that do not parse get the API server's answers (400 with
// strconv's words; a 500 for a watch's resourceVersion, as the real server
// still does, kubernetes/kubernetes#113939), not an exception in the handler.
// The messages are kube-apiserver 1.34.4's (checked with kubectl get --raw).
TEST_F(ApiServerTest, UnparsableQueryParametersGetTheApiServersAnswers) {
  // The client prefixes the request: "GET <path>: <the server's message>".
  const auto answered = [](const Result<Json>& r, const std::string& message) {
    return !r.ok() && r.error().message().ends_with(": " + message);
  };
  const auto limit = api_->Get("/api/v1/namespaces/default/pods?limit=abc");
  ASSERT_TRUE(answered(limit, "strconv.ParseInt: parsing \"abc\": invalid syntax"));
  EXPECT_EQ(limit.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(answered(api_->Get("/api/v1/pods?limit=99999999999999999999"),
                       "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"));
  const auto timeout = api_->Get("/api/v1/pods?watch=true&timeoutSeconds=0.1s");
  ASSERT_TRUE(answered(timeout, "strconv.ParseInt: parsing \"0.1s\": invalid syntax"));
  EXPECT_EQ(timeout.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(answered(
      api_->Get("/api/v1/pods?watch=true&resourceVersion=cool"),
      "resourceVersion: Invalid value: \"cool\": strconv.ParseUint: parsing \"cool\": invalid syntax"));
  EXPECT_TRUE(api_->Get("/api/v1/pods?limit=-1").ok());  // no limit, as for 0
}

TEST_F(ApiServerTest, WatchDeliversEveryChangeOnceInOrder) {
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("before", "x")).ok());
  Recorder recorder;
  kube::ListWatch watch(*api_, "/api/v1/namespaces/default/pods", recorder);
  std::atomic<bool> stop{false};
  std::thread t([&] { watch.Run(stop); });
  const auto wait_for = [&](size_t n) {
    for (int i = 0; i < 200 && recorder.Snapshot().size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  wait_for(1);
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("a", "x")).ok());
  ASSERT_TRUE(api_->Request("PATCH", "/api/v1/namespaces/default/pods/a",
                            R"({"metadata":{"labels":{"app":"y"}}})", "application/merge-patch+json")
                  .ok());
  ASSERT_TRUE(api_->Request("DELETE", "/api/v1/namespaces/default/pods/a").ok());
  ASSERT_TRUE(Create("/api/v1/namespaces/kube-system/pods", PodJson("elsewhere", "x")).ok());
  wait_for(4);
  stop = true;
  t.join();
  EXPECT_EQ(recorder.Snapshot(), (std::vector<std::string>{"LIST 1", "ADDED a", "MODIFIED a", "DELETED a"}));
  EXPECT_EQ(watch.lists(), 1);
}

// A watcher that was away while the server restarted and others changed the
// state gets 410 Gone for its old resourceVersion, lists again, and carries on.
TEST(ApiServerRestartTest, AWatcherTooFarBehindListsAgain) {
  char dir[] = "/tmp/netpol-api-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string db = std::string(dir) + "/state.db";
  auto first = ApiServer::Start({.database = db, .nodes = {}});
  ASSERT_TRUE(first.ok());
  const int port = (*first)->port();
  auto client = kube::Client::Create(kube::Api((*first)->url()));
  const auto pod = [](const std::string& name) {
    return Json{{"metadata", {{"name", name}}}, {"spec", {{"containers", {{{"name", "c"}}}}}}}.dump();
  };
  ASSERT_TRUE((*client)->Request("POST", "/api/v1/namespaces/default/pods", pod("a")).ok());
  Recorder recorder;
  kube::ListWatch watch(**client, "/api/v1/namespaces/default/pods", recorder);
  std::atomic<bool> stop{false};
  std::thread t([&] { watch.Run(stop); });
  for (int i = 0; i < 200 && recorder.Snapshot().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*first)->Stop();
  // Changes the watcher does not see: made through another server on the same
  // database, so the restarted server's history starts after them.
  {
    auto other = ApiServer::Start({.database = db, .nodes = {}});
    ASSERT_TRUE(other.ok());
    auto c = kube::Client::Create(kube::Api((*other)->url()));
    for (const char* name : {"b", "c", "d"})
      ASSERT_TRUE((*c)->Request("POST", "/api/v1/namespaces/default/pods", pod(name)).ok());
    ASSERT_TRUE((*c)->Request("DELETE", "/api/v1/namespaces/default/pods/a").ok());
  }
  auto restarted = ApiServer::Start({.port = port, .database = db, .nodes = {}});
  ASSERT_TRUE(restarted.ok()) << restarted.error().message();
  for (int i = 0; i < 400 && watch.lists() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  t.join();
  EXPECT_EQ(watch.lists(), 2) << "410 Gone makes it list again";
  const std::vector<std::string> log = recorder.Snapshot();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(), "LIST 1");
  EXPECT_EQ(log.back(), "LIST 3") << "the relist has b, c and d, and not a";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace netpol::lab
