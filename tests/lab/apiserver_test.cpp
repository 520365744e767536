// The lab API server through netpol's own client (no root, no kubectl):
// CRUD with the API's status codes, selectors, pagination, validation errors
// with field paths, patches as kubectl sends them, cascading deletes, and
// watches that deliver every change once, in order.
#include "lab/apiserver.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "lab/internal/body.h"
#include "lab/internal/patch.h"
#include "lab/internal/pki.h"
#include "testutil/error.h"

namespace netpol::lab {
namespace {

using kube::Json;
using ::testing::HasSubstr;
using testutil::IsError;

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
  EXPECT_THAT(api_->Request("DELETE", "/api/v1/nodes/node-1"),
              IsError(ErrorCode::kUnimplemented, HasSubstr("nodes are read-only in the lab")));
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
  for (const char* bad : {"default/a/x", "default/a/-1", "default/a/"}) {
    const auto got = api_->Get(std::string("/api/v1/pods?limit=3&continue=") + bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.error().code(), ErrorCode::kFailedPrecondition) << bad;
  }
}

// remainingItemCount on every page: counted for the first, carried by the
// token after (each page's count less its items), exact while nothing
// changes; the last page has neither a token nor a count, in a namespace too.
TEST_F(ApiServerTest, EveryPageSaysHowManyRemain) {
  ASSERT_TRUE(Create("/api/v1/namespaces", {{"metadata", {{"name", "other"}}}}).ok());
  for (int i = 0; i < 8; ++i) {
    const std::string name = "p" + std::to_string(i);
    ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson(name.c_str(), "web")).ok());
    ASSERT_TRUE(Create("/api/v1/namespaces/other/pods", PodJson(name.c_str(), "web")).ok());
  }
  for (const std::string path : {"/api/v1/pods", "/api/v1/namespaces/other/pods"}) {
    const int total = path == "/api/v1/pods" ? 16 : 8;
    int seen = 0;
    std::string token;
    for (int page = 0; page < 10; ++page) {
      const auto got = api_->Get(path + "?limit=3" + (token.empty() ? "" : "&continue=" + token));
      ASSERT_TRUE(got.ok()) << got.error().message();
      seen += static_cast<int>((*got)["items"].size());
      token = (*got)["metadata"].value("continue", "");
      if (seen == total) {
        EXPECT_EQ(token, "") << path;
        EXPECT_FALSE((*got)["metadata"].contains("remainingItemCount")) << path;
        break;
      }
      EXPECT_EQ((*got)["metadata"].value("remainingItemCount", -1), total - seen) << path << " page " << page;
    }
    EXPECT_EQ(seen, total) << path;
  }
  // A page of exactly what is left ends the list.
  const auto all = api_->Get("/api/v1/namespaces/other/pods?limit=8");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)["items"].size(), 8u);
  EXPECT_EQ((*all)["metadata"].value("continue", ""), "");
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

// A plain HTTP client, for what kube::Client does not show (headers, status
// codes of successful answers).
httplib::Result Send(const ApiServer& server, const std::string& method, const std::string& path,
                     const std::string& body, const std::string& type, const std::string& token = "") {
  httplib::Client http("127.0.0.1", server.port());
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  if (method == "POST") return http.Post(path, headers, body, type);
  if (method == "PUT") return http.Put(path, headers, body, type);
  if (method == "PATCH") return http.Patch(path, headers, body, type);
  return http.Get(path, headers);
}

// A list with nothing to filter is spliced from the objects' stored text; it
// must be byte for byte what the path that parses them writes (a selector
// every pod here matches), pages and continue tokens included.
TEST_F(ApiServerTest, AnUnfilteredListIsWhatTheParsingPathWrites) {
  for (const char* name : {"a", "b", "c", "d", "e"})
    ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson(name, "web")).ok());
  ASSERT_TRUE(Create("/api/v1/namespaces", {{"metadata", {{"name", "other"}}}}).ok());
  ASSERT_TRUE(Create("/api/v1/namespaces/other/pods", PodJson("a", "web")).ok());
  // Tokens of the namespace listed, of one sorting before it (from the
  // start) and of one after it (nothing left).
  for (const std::string list : {"/api/v1/pods", "/api/v1/namespaces/default/pods"}) {
    for (const std::string page : {"", "?limit=2", "?limit=2&continue=default/b", "?limit=9",
                                   "?limit=2&continue=aaa/z", "?continue=zzz/a"}) {
      const std::string selector = std::string(page.empty() ? "?" : "&") + "labelSelector=app%3Dweb";
      const auto spliced = Send(*server_, "GET", list + page, "", "");
      const auto parsed = Send(*server_, "GET", list + page + selector, "", "");
      ASSERT_TRUE(spliced && parsed);
      EXPECT_EQ(spliced->status, 200);
      EXPECT_EQ(spliced->get_header_value("Content-Type"), parsed->get_header_value("Content-Type"));
      EXPECT_EQ(spliced->body, parsed->body) << list << page;
      EXPECT_NE(spliced->body.find("\"kind\":\"PodList\""), std::string::npos) << spliced->body;
    }
  }
}

// fieldValidation as kube-apiserver 1.34.4 answers it (kubectl create --raw
// ...?dryRun=All&fieldValidation=X): Strict rejects a typo'd field with its
// decoder's 400 (a policy with `ingres:` used to be stored: a deny-all), Warn
// (and no parameter) drops it with a Warning header per field, Ignore drops it
// silently; what is stored never has the field.
TEST_F(ApiServerTest, FieldValidationIsTheApiServers) {
  const std::string path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";
  const auto policy = [](const std::string& name) {
    return Json{{"apiVersion", "networking.k8s.io/v1"},
                {"kind", "NetworkPolicy"},
                {"metadata", {{"name", name}, {"bogus", 1}}},
                {"spec",
                 {{"podSelector", Json::object()},
                  {"ingres", {Json::object()}},
                  {"ingress", {{{"fro", Json::array()}, {"ports", {{{"port", 80}}}}}}}}}}
        .dump();
  };
  const auto strict =
      Send(*server_, "POST", path + "?fieldValidation=Strict", policy("s"), "application/json");
  ASSERT_TRUE(strict);
  EXPECT_EQ(strict->status, 400);
  EXPECT_EQ(Json::parse(strict->body)["message"],
            "NetworkPolicy in version \"v1\" cannot be handled as a NetworkPolicy: strict decoding error: "
            "unknown field \"metadata.bogus\", unknown field \"spec.ingres\", unknown field "
            "\"spec.ingress[0].fro\"");
  EXPECT_THAT(api_->Get(path + "/s"), IsError(ErrorCode::kNotFound)) << "nothing stored";
  for (const std::string mode : {"Warn", ""}) {
    const std::string name = "w" + std::to_string(mode.size());
    const auto warn =
        Send(*server_, "POST", path + "?fieldValidation=" + mode, policy(name), "application/json");
    ASSERT_TRUE(warn);
    EXPECT_EQ(warn->status, 201) << warn->body;
    EXPECT_EQ(warn->get_header_value_count("Warning"), 3u);
    EXPECT_EQ(warn->get_header_value("Warning", 1), "299 - \"unknown field \\\"spec.ingres\\\"\"");
    const Json stored = *api_->Get(path + "/" + name);
    EXPECT_FALSE(stored["spec"].contains("ingres"));
    EXPECT_FALSE(stored["metadata"].contains("bogus"));
    EXPECT_FALSE(stored["spec"]["ingress"][0].contains("fro"));
  }
  const auto ignore =
      Send(*server_, "POST", path + "?fieldValidation=Ignore", policy("i"), "application/json");
  ASSERT_TRUE(ignore);
  EXPECT_EQ(ignore->status, 201);
  EXPECT_FALSE(ignore->has_header("Warning"));
  EXPECT_FALSE(Json::parse(ignore->body)["spec"].contains("ingres"));
  const auto unknown =
      Send(*server_, "POST", path + "?fieldValidation=strict", policy("u"), "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 422);
  EXPECT_EQ(Json::parse(unknown->body)["message"],
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": "
            "supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"");
  // Services too, which src/api does not decode (kubectl create -f with a Service typo);
  // in the body's order, as the decoder meets them (kube-apiserver 1.34.4 for this
  // body; kubectl sends keys sorted).
  const auto service = Send(*server_, "POST", "/api/v1/namespaces/default/services?fieldValidation=Strict",
                            R"({"metadata":{"name":"s"},"spec":{"selectr":{"app":"web"},)"
                            R"("ports":[{"port":80,"prot":"TCP"}]}})",
                            "application/json");
  ASSERT_TRUE(service);
  EXPECT_EQ(service->status, 400);
  EXPECT_EQ(Json::parse(service->body)["message"],
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field "
            "\"spec.selectr\", unknown field \"spec.ports[0].prot\"");
  // Updates and patches too.
  const auto put = Send(*server_, "PUT", path + "/i?fieldValidation=Strict", policy("i"), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 400);
  const auto patch = Send(*server_, "PATCH", path + "/i?fieldValidation=Strict", R"({"spec":{"egres":[]}})",
                          "application/merge-patch+json");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 400);
  EXPECT_NE(patch->body.find("unknown field \\\"spec.egres\\\""), std::string::npos) << patch->body;
}

// A field given twice in a JSON body, as kube-apiserver 1.34.4's decoder
// (sigs.k8s.io/json with DisallowDuplicateFields) reports it: `duplicate field
// "metadata.name"`, among the unknown fields in the order it meets them, a 400
// under Strict and a Warning under Warn; the lab's JSON parser kept the last
// value silently whatever fieldValidation said. The value stored is what Go's
// decoder leaves: a repeated object is decoded into the first. Every message,
// warning and stored value here is what kube-apiserver 1.34.4 answered to the
// same bodies (curl, ?dryRun=All); a patch's errors are its 422 there (with the
// patched object in the message), the lab's usual 400 for a patch here.
TEST_F(ApiServerTest, FieldsGivenTwiceAreStrictDecodingErrors) {
  const std::string path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies";
  const auto policy = [](const std::string& name) {
    return R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",)"
           R"("metadata":{"name":"x","name":")" +
           name +
           R"(","bogus":1},)"
           R"("spec":{"podSelector":{"matchLabels":{"a":"1"}},"ingres":{"x":1,"x":2},)"
           R"("podSelector":{"matchLabels":{"b":"2"}}},"spec":{"policyTypes":["Egress"]}})";
  };
  const auto strict =
      Send(*server_, "POST", path + "?fieldValidation=Strict", policy("s"), "application/json");
  ASSERT_TRUE(strict);
  EXPECT_EQ(strict->status, 400);
  EXPECT_EQ(
      Json::parse(strict->body)["message"],
      "NetworkPolicy in version \"v1\" cannot be handled as a NetworkPolicy: strict decoding error: "
      "duplicate field \"metadata.name\", unknown field \"metadata.bogus\", unknown field \"spec.ingres\", "
      "duplicate field \"spec.podSelector\", duplicate field \"spec\"");
  EXPECT_THAT(api_->Get(path + "/s"), IsError(ErrorCode::kNotFound)) << "nothing stored";
  EXPECT_THAT(api_->Get(path + "/x"), IsError(ErrorCode::kNotFound)) << "nothing stored";

  const auto warn = Send(*server_, "POST", path, policy("w"), "application/json");
  ASSERT_TRUE(warn);
  EXPECT_EQ(warn->status, 201) << warn->body;
  ASSERT_EQ(warn->get_header_value_count("Warning"), 5u);
  EXPECT_EQ(warn->get_header_value("Warning", 0), "299 - \"duplicate field \\\"metadata.name\\\"\"");
  EXPECT_EQ(warn->get_header_value("Warning", 4), "299 - \"duplicate field \\\"spec\\\"\"");
  // The last name; the second podSelector and spec decoded into the first ones.
  const Json stored = *api_->Get(path + "/w");
  EXPECT_EQ(stored["spec"]["podSelector"], Json({{"matchLabels", {{"a", "1"}, {"b", "2"}}}}));
  EXPECT_EQ(stored["spec"]["policyTypes"], Json({"Egress"}));
  EXPECT_FALSE(stored["spec"].contains("ingres"));

  const auto ignore =
      Send(*server_, "POST", path + "?fieldValidation=Ignore", policy("i"), "application/json");
  ASSERT_TRUE(ignore);
  EXPECT_EQ(ignore->status, 201) << ignore->body;
  EXPECT_FALSE(ignore->has_header("Warning"));
  EXPECT_EQ(Json::parse(ignore->body)["spec"]["podSelector"], stored["spec"]["podSelector"]);

  // A list given twice is decoded element by element into the first.
  const auto containers = Send(*server_, "POST", "/api/v1/namespaces/default/pods?fieldValidation=Ignore",
                               R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x:1"},)"
                               R"({"name":"b"}],"containers":[{"name":"c"}]}})",
                               "application/json");
  ASSERT_TRUE(containers);
  ASSERT_EQ(containers->status, 201) << containers->body;
  const Json pod = Json::parse(containers->body);
  ASSERT_EQ(pod["spec"]["containers"].size(), 1u);
  EXPECT_EQ(pod["spec"]["containers"][0]["name"], "c");
  EXPECT_EQ(pod["spec"]["containers"][0]["image"], "x:1");

  // Services (whose fields src/api does not decode), updates and patches too.
  const auto service = Send(
      *server_, "POST", "/api/v1/namespaces/default/services?fieldValidation=Strict",
      R"({"metadata":{"name":"s"},"spec":{"selector":{"app":"a","app":"b"},"ports":[{"port":80,"port":81}]}})",
      "application/json");
  ASSERT_TRUE(service);
  EXPECT_EQ(service->status, 400);
  EXPECT_EQ(
      Json::parse(service->body)["message"],
      "Service in version \"v1\" cannot be handled as a Service: strict decoding error: duplicate field "
      "\"spec.selector.app\", duplicate field \"spec.ports[0].port\"");
  const auto put = Send(*server_, "PUT", path + "/w?fieldValidation=Strict", policy("w"), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 400);
  EXPECT_NE(put->body.find("duplicate field \\\"metadata.name\\\""), std::string::npos) << put->body;
  const std::string labels = R"({"metadata":{"labels":{"a":"1"},"labels":{"b":"2","b":"3"}}})";
  const auto patch =
      Send(*server_, "PATCH", path + "/w?fieldValidation=Strict", labels, "application/merge-patch+json");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 400);
  EXPECT_NE(
      patch->body.find("duplicate field \\\"metadata.labels\\\", duplicate field \\\"metadata.labels.b\\\""),
      std::string::npos)
      << patch->body;
  // A patch is decoded into a map, where the last value wins whole.
  const auto warned = Send(*server_, "PATCH", path + "/w", labels, "application/merge-patch+json");
  ASSERT_TRUE(warned);
  EXPECT_EQ(warned->status, 200) << warned->body;
  EXPECT_EQ(warned->get_header_value_count("Warning"), 2u);
  EXPECT_EQ(Json::parse(warned->body)["metadata"]["labels"], Json({{"b", "3"}}));
  const auto ops = Send(*server_, "PATCH", path + "/w?fieldValidation=Strict",
                        R"([{"op":"add","op":"add","path":"/metadata/labels/c","value":"4"}])",
                        "application/json-patch+json");
  ASSERT_TRUE(ops);
  EXPECT_EQ(ops->status, 400);
  EXPECT_NE(ops->body.find("json patch duplicate field \\\"[0].op\\\""), std::string::npos) << ops->body;
}

// The body decoder: Json::parse's value and errors, and what Go's decoder does
// with a field given twice.
TEST(BodyTest, DecodesAsTheApiServersDecoder) {
  for (const std::string text :
       {R"({"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c":{"d":[]},"e":18446744073709551615})", "[]", "\"s\"",
        "  7 "}) {
    const Result<internal::Body> body = internal::DecodeBody(text, internal::Repeats::kDecodeInto);
    ASSERT_TRUE(body.ok()) << text;
    EXPECT_EQ(body->value, Json::parse(text)) << text;
    EXPECT_TRUE(body->duplicates.empty());
  }
  for (const std::string text : {"", "{", R"({"a":1,})", "[1 2]", "{} x"}) {
    const Result<internal::Body> body = internal::DecodeBody(text, internal::Repeats::kDecodeInto);
    ASSERT_THAT(body, IsError(ErrorCode::kInvalidArgument)) << text;
    try {
      const Json parsed = Json::parse(text);
      ADD_FAILURE() << text << " parsed: " << parsed;
    } catch (const Json::exception& e) {
      EXPECT_EQ(body.error().message(), e.what());
    }
  }
  const std::string text = R"({"a":{"x":1,"l":[{"p":1,"q":2},{"p":3}],"m":{"k":1}},"b":2,)"
                           R"("a":{"y":2,"l":[{"p":5}],"m":{"k":{"z":1}},"x":3},"b":null,"a":{"y":4}})";
  const Result<internal::Body> into = internal::DecodeBody(text, internal::Repeats::kDecodeInto);
  ASSERT_TRUE(into.ok());
  EXPECT_EQ(into->value,
            Json::parse(R"({"a":{"x":3,"y":4,"l":[{"p":5,"q":2}],"m":{"k":{"z":1}}},"b":null})"));
  std::vector<std::string> paths;
  for (const internal::Body::Field& f : into->duplicates) paths.push_back(f.path);
  // Each once, where it is given the second time; a key of a repeated object
  // is repeated only when given twice in one occurrence.
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(into->duplicates[0].position, 9u);
  EXPECT_EQ(into->FirstPosition("a.l[0].q"), 4u);
  EXPECT_EQ(into->FirstPosition("a.y"), 10u);
  EXPECT_FALSE(into->FirstPosition("a.l[1].q").has_value());
  const Result<internal::Body> last = internal::DecodeBody(text, internal::Repeats::kLastWins);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value, Json::parse(R"({"a":{"y":4},"b":null})"));
  const Result<internal::Body> nested =
      internal::DecodeBody(R"([{"op":1,"v":{"k":1,"k":2}},{"op":1,"op":2}])", internal::Repeats::kLastWins);
  ASSERT_TRUE(nested.ok());
  ASSERT_EQ(nested->duplicates.size(), 2u);
  EXPECT_EQ(nested->duplicates[0].path, "[0].v.k");
  EXPECT_EQ(nested->duplicates[1].path, "[1].op");
  EXPECT_EQ(nested->value, Json::parse(R"([{"op":1,"v":{"k":2}},{"op":2}])"));
}

// The API server's defaults, as kube-apiserver 1.34.4 stores them (kubectl
// create --dry-run=server -o json): without them `kubectl describe netpol`
// said "Policy Types: <none>" for a policy that isolates, and `describe pod`
// "Port: 8080/".
TEST_F(ApiServerTest, ObjectsGetTheApiServersDefaults) {
  const Json egress = {{"metadata", {{"name", "e"}}},
                       {"spec",
                        {{"podSelector", Json::object()},
                         {"egress", {{{"ports", {{{"port", 53}}}}}}},
                         {"ingress", {{{"ports", {{{"port", 80}}, {{"protocol", "UDP"}}}}}}}}}};
  const auto e = Create("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", egress);
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ((*e)["spec"]["policyTypes"], Json({"Ingress", "Egress"}));
  EXPECT_EQ((*e)["spec"]["egress"][0]["ports"][0], Json({{"port", 53}, {"protocol", "TCP"}}));
  EXPECT_EQ((*e)["spec"]["ingress"][0]["ports"],
            Json({{{"port", 80}, {"protocol", "TCP"}}, {{"protocol", "UDP"}}}));
  const Json empty_egress = {{"metadata", {{"name", "f"}}},
                             {"spec", {{"podSelector", Json::object()}, {"egress", Json::array()}}}};
  const auto f = Create("/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", empty_egress);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)["spec"], Json({{"podSelector", Json::object()}, {"policyTypes", {"Ingress"}}}));

  Json pod = PodJson("p", "web");
  pod["spec"]["containers"][0]["image"] = "x:1.0";
  pod["spec"]["containers"][0]["readinessProbe"] = {{"httpGet", {{"port", 80}}}};
  const auto p = Create("/api/v1/namespaces/default/pods", pod);
  ASSERT_TRUE(p.ok());
  const Json& spec = (*p)["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Always");
  EXPECT_EQ(spec["dnsPolicy"], "ClusterFirst");
  EXPECT_EQ(spec["terminationGracePeriodSeconds"], 30);
  EXPECT_EQ(spec["schedulerName"], "default-scheduler");
  EXPECT_EQ(spec["serviceAccountName"], "default");
  EXPECT_EQ(spec["enableServiceLinks"], true);
  EXPECT_EQ((*p)["status"]["qosClass"], "BestEffort");
  ASSERT_TRUE(api_->Request("PUT", "/api/v1/namespaces/default/pods/p/status",
                            Json{{"metadata", {{"name", "p"}}}, {"status", {{"phase", "Running"}}}}.dump())
                  .ok());
  EXPECT_EQ((*api_->Get("/api/v1/namespaces/default/pods/p"))["status"]["qosClass"], "BestEffort")
      << "kept across status updates";
  Json limited = PodJson("g", "web");
  limited["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}};
  EXPECT_EQ((*Create("/api/v1/namespaces/default/pods", limited))["status"]["qosClass"], "Guaranteed");
  limited["metadata"]["name"] = "b";
  limited["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "100m"}}}};
  EXPECT_EQ((*Create("/api/v1/namespaces/default/pods", limited))["status"]["qosClass"], "Burstable");
  const Json& c = spec["containers"][0];
  EXPECT_EQ(c["ports"][0], Json({{"containerPort", 80}, {"protocol", "TCP"}}));
  EXPECT_EQ(c["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(c["terminationMessagePath"], "/dev/termination-log");
  EXPECT_EQ(c["terminationMessagePolicy"], "File");
  EXPECT_EQ(c["readinessProbe"], Json({{"httpGet", {{"port", 80}, {"path", "/"}, {"scheme", "HTTP"}}},
                                       {"timeoutSeconds", 1},
                                       {"periodSeconds", 10},
                                       {"successThreshold", 1},
                                       {"failureThreshold", 3}}));

  const Json deploy = {{"metadata", {{"name", "d"}}},
                       {"spec",
                        {{"selector", {{"matchLabels", {{"a", "b"}}}}},
                         {"template",
                          {{"metadata", {{"labels", {{"a", "b"}}}}},
                           {"spec", {{"containers", {{{"name", "c"}, {"image", "x:latest"}}}}}}}}}}};
  const auto d = Create("/apis/apps/v1/namespaces/default/deployments", deploy);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ((*d)["spec"]["replicas"], 1);
  EXPECT_EQ((*d)["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ((*d)["spec"]["progressDeadlineSeconds"], 600);
  EXPECT_EQ(
      (*d)["spec"]["strategy"],
      Json({{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}}));
  const Json& tmpl = (*d)["spec"]["template"]["spec"];
  EXPECT_EQ(tmpl["restartPolicy"], "Always");
  EXPECT_FALSE(tmpl.contains("serviceAccountName")) << "a create's admission fills pods, not templates";
  EXPECT_EQ(tmpl["containers"][0]["imagePullPolicy"], "Always");

  Json service = {{"metadata", {{"name", "s"}}}};
  service["spec"]["selector"] = {{"a", "b"}};
  service["spec"]["ports"] = Json::array({{{"name", "http"}, {"port", 80}}});
  const auto s = Create("/api/v1/namespaces/default/services", service);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["spec"]["ports"][0],
            Json({{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 80}}));
  EXPECT_EQ((*s)["spec"]["sessionAffinity"], "None");
  EXPECT_EQ((*s)["spec"]["clusterIPs"], Json({"None"}));
  const auto ns = Create("/api/v1/namespaces", {{"metadata", {{"name", "nsx"}}}});
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ((*ns)["spec"]["finalizers"], Json({"kubernetes"}));
  // Updates are defaulted too.
  const auto replaced =
      api_->Request("PUT", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/f",
                    Json{{"metadata", {{"name", "f"}}}, {"spec", {{"podSelector", Json::object()}}}}.dump());
  ASSERT_TRUE(replaced.ok()) << replaced.error().message();
  EXPECT_EQ((*replaced)["spec"]["policyTypes"], Json({"Ingress"}));
}

// A Service's IP families as kube-apiserver 1.34.4 fills them
// (pkg/registry/core/service/storage/alloc.go, initIPFamilyFields), for the
// lab's Service families (its pods': IPv4 and IPv6, IPv4 first) and for
// single-stack clusters. The lab's Services are headless (names only), so the
// special case of a headless Service without selector applies: RequireDualStack
// with both families, on a single-stack cluster too. The lab stored none of
// these fields, and gave ExternalName Services a clusterIP the API server forbids.
// Each row is what kube-apiserver 1.34.4 stores or answers for the same
// Service with `clusterIP: None` (?dryRun=All; --service-cluster-ip-range
// IPv4+IPv6, IPv4 only, IPv6 only), the updates too.
TEST(ApiServerServiceTest, IpFamiliesAreTheApiServers) {
  const std::vector<std::string> dual = {"IPv4", "IPv6"};
  const std::vector<std::string> v4 = {"IPv4"};
  const std::vector<std::string> v6 = {"IPv6"};
  const std::string none = "";  // no ipFamilyPolicy / ipFamilies given
  struct Case {
    std::vector<std::string> cluster;
    bool selector;
    std::string policy;
    Json families;  // null: not given
    std::string want_policy;
    Json want_families;
    std::string error;  // the 422's message after `Service "s" is invalid: `
  };
  const Json unset;
  const std::vector<Case> cases = {
      {dual, true, none, unset, "SingleStack", {"IPv4"}, ""},
      {dual, false, none, unset, "RequireDualStack", {"IPv4", "IPv6"}, ""},
      {dual, true, "PreferDualStack", unset, "PreferDualStack", {"IPv4", "IPv6"}, ""},
      {dual, true, "RequireDualStack", unset, "RequireDualStack", {"IPv4", "IPv6"}, ""},
      {dual, true, none, {"IPv6"}, "SingleStack", {"IPv6"}, ""},
      {dual, true, "PreferDualStack", {"IPv6"}, "PreferDualStack", {"IPv6", "IPv4"}, ""},
      {dual, false, "SingleStack", unset, "SingleStack", {"IPv4"}, ""},
      {dual, false, none, {"IPv6"}, "RequireDualStack", {"IPv6", "IPv4"}, ""},
      {dual,
       true,
       "SingleStack",
       {"IPv4", "IPv6"},
       "",
       unset,
       "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' "
       "when "
       "multiple IP families are specified"},
      {dual, true, none, {"IPv4", "IPv4"}, "", unset, "spec.ipFamilies[1]: Duplicate value: \"IPv4\""},
      {dual,
       true,
       "DualStack",
       {"IPv5"},
       "",
       unset,
       "[spec.ipFamilies[0]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\", "
       "spec.ipFamilyPolicy: Unsupported value: \"DualStack\": supported values: \"PreferDualStack\", "
       "\"RequireDualStack\", \"SingleStack\"]"},
      {v4, true, none, unset, "SingleStack", {"IPv4"}, ""},
      {v4, true, "PreferDualStack", unset, "PreferDualStack", {"IPv4"}, ""},
      {v4, false, none, unset, "RequireDualStack", {"IPv4", "IPv6"}, ""},
      {v4, true, "RequireDualStack", unset, "", unset,
       "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for "
       "dual-stack "
       "services"},
      {v4,
       true,
       none,
       {"IPv6"},
       "",
       unset,
       "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"},
      {v6, true, none, unset, "SingleStack", {"IPv6"}, ""},
      {v6, false, none, unset, "RequireDualStack", {"IPv6", "IPv4"}, ""},
  };
  for (const Case& c : cases) {
    ApiServerOptions options;
    options.service_ip_families = c.cluster;
    auto server = ApiServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.error().message();
    auto client = kube::Client::Create(kube::Api((*server)->url()));
    ASSERT_TRUE(client.ok());
    Json service = {{"metadata", {{"name", "s"}}}, {"spec", {{"ports", {{{"port", 80}}}}}}};
    if (c.selector) service["spec"]["selector"] = {{"app", "web"}};
    if (!c.policy.empty()) service["spec"]["ipFamilyPolicy"] = c.policy;
    if (!c.families.is_null()) service["spec"]["ipFamilies"] = c.families;
    const std::string what =
        service.dump() + " on " + c.cluster.front() + "/" + std::to_string(c.cluster.size());
    const Result<Json> created =
        (*client)->Request("POST", "/api/v1/namespaces/default/services", service.dump());
    if (!c.error.empty()) {
      ASSERT_FALSE(created.ok()) << what;
      EXPECT_TRUE(created.error().message().ends_with(": Service \"s\" is invalid: " + c.error))
          << what << ": " << created.error().message();
      continue;
    }
    ASSERT_TRUE(created.ok()) << what << ": " << created.error().message();
    EXPECT_EQ((*created)["spec"]["ipFamilyPolicy"], c.want_policy) << what;
    EXPECT_EQ((*created)["spec"]["ipFamilies"], c.want_families) << what;
    EXPECT_EQ((*created)["spec"]["clusterIP"], "None") << what;
    EXPECT_EQ((*created)["spec"]["clusterIPs"], Json({"None"})) << what;
  }

  // ExternalName: no cluster IP, no families.
  auto server = ApiServer::Start({});
  ASSERT_TRUE(server.ok());
  auto client = kube::Client::Create(kube::Api((*server)->url()));
  ASSERT_TRUE(client.ok());
  kube::Client& api = **client;
  const std::string services = "/api/v1/namespaces/default/services";
  const Result<Json> external =
      api.Request("POST", services,
                  Json{{"metadata", {{"name", "e"}}},
                       {"spec", {{"type", "ExternalName"}, {"externalName", "db.example"}}}}
                      .dump());
  ASSERT_TRUE(external.ok()) << external.error().message();
  for (const char* field : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"}) {
    EXPECT_FALSE((*external)["spec"].contains(field)) << field;
  }

  // Updates: what the request leaves out comes from the stored object (the
  // policy, the cluster IPs), the families are filled again.
  const Json with_selector = {{"metadata", {{"name", "s"}}},
                              {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}}}};
  ASSERT_TRUE(api.Request("POST", services, with_selector.dump()).ok());
  const Result<Json> replaced = api.Request("PUT", services + "/s", with_selector.dump());
  ASSERT_TRUE(replaced.ok()) << replaced.error().message();
  EXPECT_EQ((*replaced)["spec"]["clusterIP"], "None");
  EXPECT_EQ((*replaced)["spec"]["clusterIPs"], Json({"None"}));
  EXPECT_EQ((*replaced)["spec"]["ipFamilyPolicy"], "SingleStack");
  EXPECT_EQ((*replaced)["spec"]["ipFamilies"], Json({"IPv4"}));
  Json headless = {{"metadata", {{"name", "h"}}}, {"spec", {{"ports", {{{"port", 80}}}}}}};
  ASSERT_TRUE(api.Request("POST", services, headless.dump()).ok());
  // SingleStack with the families unchanged: the secondary one is released.
  headless["spec"]["ipFamilyPolicy"] = "SingleStack";
  headless["spec"]["ipFamilies"] = {"IPv4", "IPv6"};
  const Result<Json> single = api.Request("PUT", services + "/h", headless.dump());
  ASSERT_TRUE(single.ok()) << single.error().message();
  EXPECT_EQ((*single)["spec"]["ipFamilies"], Json({"IPv4"}));
  // Dropping a family without SingleStack is refused.
  Json prefer = with_selector;
  prefer["metadata"]["name"] = "p";
  prefer["spec"]["ipFamilyPolicy"] = "PreferDualStack";
  ASSERT_TRUE(api.Request("POST", services, prefer.dump()).ok());
  prefer["spec"]["ipFamilies"] = {"IPv4"};
  const Result<Json> reduced = api.Request("PUT", services + "/p", prefer.dump());
  ASSERT_FALSE(reduced.ok());
  EXPECT_TRUE(reduced.error().message().ends_with(
      ": Service \"p\" is invalid: spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be "
      "'SingleStack' to release the secondary IP family"))
      << reduced.error().message();
  // Turned into an ExternalName Service, it loses the fields it was given by default.
  Json stored = *api.Get(services + "/s");
  stored["spec"]["type"] = "ExternalName";
  stored["spec"]["externalName"] = "db.example";
  stored["spec"].erase("selector");
  const Result<Json> renamed = api.Request("PUT", services + "/s", stored.dump());
  ASSERT_TRUE(renamed.ok()) << renamed.error().message();
  for (const char* field : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"}) {
    EXPECT_FALSE((*renamed)["spec"].contains(field)) << field;
  }
}

// JSON patch (RFC 6902), @kubernetes/client-node's default for patch: it
// answered 415. Errors as kube-apiserver 1.34.4 answers them.
TEST_F(ApiServerTest, JsonPatchesApply) {
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("p", "web")).ok());
  const std::string path = "/api/v1/namespaces/default/pods/p";
  const auto patched =
      api_->Request("PATCH", path, R"([{"op":"add","path":"/metadata/labels/x","value":"y"}])",
                    "application/json-patch+json");
  ASSERT_TRUE(patched.ok()) << patched.error().message();
  EXPECT_EQ((*patched)["metadata"]["labels"], Json({{"app", "web"}, {"x", "y"}}));
  const auto failed = Send(*server_, "PATCH", path, R"([{"op":"test","path":"/metadata/name","value":"q"}])",
                           "application/json-patch+json");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 422);
  EXPECT_EQ(Json::parse(failed->body)["message"],
            "the server rejected our request due to an error in our request");
  const auto not_a_list = Send(*server_, "PATCH", path, R"({"a":1})", "application/json-patch+json");
  ASSERT_TRUE(not_a_list);
  EXPECT_EQ(not_a_list->status, 400);
  EXPECT_EQ(
      Json::parse(not_a_list->body)["message"],
      "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp");
}

// What the lab does not serve says so and what to do instead: protobuf
// bodies (kubectl create namespace X used to get a JSON parser's exception
// text) and kubectl logs/exec (a bare NotFound).
TEST_F(ApiServerTest, WhatTheLabDoesNotServeSaysSo) {
  const auto proto = Send(*server_, "POST", "/api/v1/namespaces", std::string("k8s\0\n\x0f", 6),
                          "application/vnd.kubernetes.protobuf");
  ASSERT_TRUE(proto);
  EXPECT_EQ(proto->status, 415);
  EXPECT_NE(Json::parse(proto->body)["message"].get<std::string>().find("use kubectl create -f"),
            std::string::npos)
      << proto->body;
  ASSERT_TRUE(Create("/api/v1/namespaces/default/pods", PodJson("p", "web")).ok());
  const auto logs = api_->Get("/api/v1/namespaces/default/pods/p/log?container=c");
  ASSERT_FALSE(logs.ok());
  EXPECT_NE(logs.error().message().find("kubectl logs is not supported by the lab"), std::string::npos)
      << logs.error().message();
  const auto exec = api_->Request("POST", "/api/v1/namespaces/default/pods/p/exec?command=id");
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.error().message().find("kubectl exec is not supported by the lab"), std::string::npos)
      << exec.error().message();
}

// With a token, every request needs it (any local user could otherwise run
// host programs as root through the lab's pods): the API server's 401.
TEST(ApiServerTokenTest, RequestsWithoutTheTokenAreUnauthorized) {
  auto server = ApiServer::Start({.nodes = {}, .token = "s3cret-token"});
  ASSERT_TRUE(server.ok());
  for (const std::string token : {"", "s3cret-tokex", "s3cret-token-longer"}) {
    const auto denied = Send(**server, "GET", "/api/v1/pods", "", "", token);
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401) << token;
    EXPECT_EQ(Json::parse(denied->body)["reason"], "Unauthorized");
  }
  const auto version = Send(**server, "GET", "/version", "", "");
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 401);
  kube::ClientConfig config = kube::Api((*server)->url());
  config.bearer_token = "s3cret-token";
  auto client = kube::Client::Create(config);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Get("/api/v1/pods").ok());
  EXPECT_TRUE((*client)->Request("POST", "/api/v1/namespaces", R"({"metadata":{"name":"t"}})").ok());
}

// HTTPS with the lab's own CA (issue 15 item 16): a client trusting that CA
// gets through; one that does not refuses the server, as against any cluster.
TEST(ApiServerTlsTest, ServesHttpsWithTheLabsCa) {
  const Result<internal::Pki> pki = internal::MakePki();
  ASSERT_TRUE(pki.ok()) << pki.error().message();
  EXPECT_EQ(internal::Base64("netpol"), "bmV0cG9s");
  auto server = ApiServer::Start({.nodes = {}, .tls_cert = pki->server_cert, .tls_key = pki->server_key});
  ASSERT_TRUE(server.ok()) << server.error().message();
  ASSERT_EQ((*server)->url().rfind("https://127.0.0.1:", 0), 0u);
  kube::ClientConfig trusting = kube::Api((*server)->url());
  trusting.ca_data = pki->ca_cert;
  auto client = kube::Client::Create(trusting);
  ASSERT_TRUE(client.ok());
  const auto listed = (*client)->Get("/api/v1/namespaces");
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  EXPECT_EQ((*listed)["items"].size(), 4u);
  auto stranger = kube::Client::Create(kube::Api((*server)->url()));
  ASSERT_TRUE(stranger.ok());
  EXPECT_THAT((*stranger)->Get("/api/v1/namespaces"),
              IsError(ErrorCode::kUnavailable, HasSubstr("certificate")))
      << "the lab's CA is no system CA";
}

TEST(PatchTest, MergePatchFollowsRfc7386) {
  const Json target = {{"a", "b"}, {"c", {{"d", "e"}, {"f", "g"}}}, {"list", {1, 2}}};
  const Json patch = {{"a", "z"}, {"c", {{"f", nullptr}}}, {"list", {3}}};
  EXPECT_EQ(internal::MergePatch(target, patch), (Json{{"a", "z"}, {"c", {{"d", "e"}}}, {"list", {3}}}));
}

// Strategic merge by each kind's schema: the merge keys of k8s.io/api
// (patchMergeKey), checked list by list with what `kubectl apply` sends.
TEST(PatchTest, StrategicMergeUsesEachListsMergeKey) {
  struct Case {
    const char* what;
    const char* kind;
    const char* target;
    const char* patch;
    const char* want;
  };
  const Case cases[] = {
      {"a Service's port changed (kubectl apply: the old one deleted by port)", "Service",
       R"({"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]}})",
       R"({"spec":{"$setElementOrder/ports":[{"port":81}],
                   "ports":[{"name":"http","port":81,"targetPort":8080},{"$patch":"delete","port":80}]}})",
       R"({"spec":{"ports":[{"name":"http","port":81,"targetPort":8080}]}})"},
      {"a Service port's targetPort changed: merged into the port it names", "Service",
       R"({"spec":{"ports":[{"name":"a","port":80,"protocol":"TCP","targetPort":8080},
                           {"name":"b","port":443,"protocol":"TCP","targetPort":8443}]}})",
       R"({"spec":{"$setElementOrder/ports":[{"port":80},{"port":443}],"ports":[{"port":443,"targetPort":9443}]}})",
       R"({"spec":{"ports":[{"name":"a","port":80,"protocol":"TCP","targetPort":8080},
                           {"name":"b","port":443,"protocol":"TCP","targetPort":9443}]}})"},
      {"a Service's externalIPs have no strategy: replaced", "Service",
       R"({"spec":{"externalIPs":["192.0.2.1","192.0.2.2"]}})", R"({"spec":{"externalIPs":["192.0.2.3"]}})",
       R"({"spec":{"externalIPs":["192.0.2.3"]}})"},
      {"a Service's conditions by type", "Service",
       R"({"status":{"conditions":[{"type":"A","status":"True"},{"type":"B","status":"True"}]}})",
       R"({"status":{"conditions":[{"type":"B","status":"False"}]}})",
       R"({"status":{"conditions":[{"type":"A","status":"True"},{"type":"B","status":"False"}]}})"},
      {"a container's ports by containerPort, containers by name", "Pod",
       R"({"spec":{"containers":[{"name":"c","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}]},
                                 {"name":"d","image":"x"}]}})",
       R"({"spec":{"containers":[{"name":"c","ports":[{"containerPort":443,"name":"https"}]}]}})",
       R"({"spec":{"containers":[{"name":"c","ports":[{"containerPort":80,"name":"http"},
                                                      {"containerPort":443,"name":"https"}]},
                                 {"name":"d","image":"x"}]}})"},
      {"initContainers and ephemeralContainers by name, their env by name", "Pod",
       R"({"spec":{"initContainers":[{"name":"i","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}],
                   "ephemeralContainers":[{"name":"e","image":"x"}]}})",
       R"({"spec":{"initContainers":[{"name":"i","env":[{"name":"B","value":"3"},{"$patch":"delete","name":"A"}]}],
                   "ephemeralContainers":[{"name":"f","image":"y"}]}})",
       R"({"spec":{"initContainers":[{"name":"i","env":[{"name":"B","value":"3"}]}],
                   "ephemeralContainers":[{"name":"e","image":"x"},{"name":"f","image":"y"}]}})"},
      {"volumeMounts by mountPath, volumeDevices by devicePath", "Pod",
       R"({"spec":{"containers":[{"name":"c","volumeMounts":[{"name":"a","mountPath":"/a"}],
                                 "volumeDevices":[{"name":"d","devicePath":"/dev/a"}]}]}})",
       R"({"spec":{"containers":[{"name":"c","volumeMounts":[{"name":"b","mountPath":"/a"}],
                                 "volumeDevices":[{"name":"e","devicePath":"/dev/b"}]}]}})",
       R"({"spec":{"containers":[{"name":"c","volumeMounts":[{"name":"b","mountPath":"/a"}],
                                 "volumeDevices":[{"name":"d","devicePath":"/dev/a"},
                                                  {"name":"e","devicePath":"/dev/b"}]}]}})"},
      {"volumes by name; $retainKeys drops the old source", "Pod",
       R"({"spec":{"volumes":[{"name":"v","emptyDir":{}},{"name":"w","emptyDir":{}}]}})",
       R"({"spec":{"volumes":[{"$retainKeys":["hostPath","name"],"name":"v","hostPath":{"path":"/x"}}]}})",
       R"({"spec":{"volumes":[{"name":"v","hostPath":{"path":"/x"}},{"name":"w","emptyDir":{}}]}})"},
      {"imagePullSecrets by name, hostAliases by ip, schedulingGates by name", "Pod",
       R"({"spec":{"imagePullSecrets":[{"name":"a"}],"hostAliases":[{"ip":"10.0.0.1","hostnames":["a"]}],
                   "schedulingGates":[{"name":"g"}]}})",
       R"({"spec":{"imagePullSecrets":[{"name":"b"}],"hostAliases":[{"ip":"10.0.0.1","hostnames":["b"]}],
                   "schedulingGates":[{"$patch":"delete","name":"g"}]}})",
       R"({"spec":{"imagePullSecrets":[{"name":"a"},{"name":"b"}],"hostAliases":[{"ip":"10.0.0.1","hostnames":["b"]}],
                   "schedulingGates":[]}})"},
      {"topologySpreadConstraints by topologyKey", "Pod",
       R"({"spec":{"topologySpreadConstraints":[{"topologyKey":"zone","maxSkew":1}]}})",
       R"({"spec":{"topologySpreadConstraints":[{"topologyKey":"zone","maxSkew":2}]}})",
       R"({"spec":{"topologySpreadConstraints":[{"topologyKey":"zone","maxSkew":2}]}})"},
      {"tolerations and a container's args have no strategy: replaced", "Pod",
       R"({"spec":{"tolerations":[{"key":"a"}],"containers":[{"name":"c","args":["x","y"]}]}})",
       R"({"spec":{"tolerations":[{"key":"b"}],"containers":[{"name":"c","args":["z"]}]}})",
       R"({"spec":{"tolerations":[{"key":"b"}],"containers":[{"name":"c","args":["z"]}]}})"},
      {"a Pod's conditions by type, podIPs and hostIPs by ip", "Pod",
       R"({"status":{"conditions":[{"type":"Ready","status":"False"}],"podIPs":[{"ip":"10.0.0.1"}],
                     "hostIPs":[{"ip":"192.0.2.1"}]}})",
       R"({"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"Initialized","status":"True"}],
                     "podIPs":[{"ip":"fd00::1"}],"hostIPs":[{"ip":"192.0.2.1"}]}})",
       R"({"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"Initialized","status":"True"}],
                     "podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],"hostIPs":[{"ip":"192.0.2.1"}]}})"},
      {"finalizers merge as a set, less $deleteFromPrimitiveList; ownerReferences by uid", "Pod",
       R"({"metadata":{"finalizers":["a","b"],"ownerReferences":[{"uid":"1","name":"x"}]}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"$setElementOrder/finalizers":["b","c"],
                       "finalizers":["c"],
                       "ownerReferences":[{"uid":"1","name":"y"},{"uid":"2","name":"z"}]}})",
       R"({"metadata":{"finalizers":["b","c"],"ownerReferences":[{"uid":"1","name":"y"},{"uid":"2","name":"z"}]}})"},
      {"a finalizer deleted without the list in the patch", "Namespace",
       R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b"]}})",
       R"({"metadata":{"finalizers":["a"]}})"},
      {"a Deployment's template: containers by name, their ports by containerPort, order kept", "Deployment",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"a","ports":[{"containerPort":80}]},{"name":"b"}]}}}})",
       R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],
          "containers":[{"name":"a","$setElementOrder/ports":[{"containerPort":81}],
                         "ports":[{"containerPort":81},{"$patch":"delete","containerPort":80}]}]}}}})",
       R"({"spec":{"template":{"spec":{"containers":[{"name":"b"},{"name":"a","ports":[{"containerPort":81}]}]}}}})"},
      {"a Deployment's strategy: $retainKeys drops rollingUpdate", "Deployment",
       R"({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})",
       R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})",
       R"({"spec":{"strategy":{"type":"Recreate"}}})"},
      {"a Deployment's conditions by type", "Deployment",
       R"({"status":{"conditions":[{"type":"Available","status":"False"},{"type":"Progressing","status":"True"}]}})",
       R"({"status":{"conditions":[{"type":"Available","status":"True"}]}})",
       R"({"status":{"conditions":[{"type":"Available","status":"True"},{"type":"Progressing","status":"True"}]}})"},
      {"a NetworkPolicy's rules and their ports have no strategy: replaced", "NetworkPolicy",
       R"({"spec":{"ingress":[{"ports":[{"port":80}]}],"policyTypes":["Ingress","Egress"]}})",
       R"({"spec":{"ingress":[{"ports":[{"port":81}]}],"policyTypes":["Ingress"]}})",
       R"({"spec":{"ingress":[{"ports":[{"port":81}]}],"policyTypes":["Ingress"]}})"},
      {"a Node's podCIDRs merge as a set, addresses and conditions by type", "Node",
       R"({"spec":{"podCIDRs":["10.0.0.0/24"]},"status":{"addresses":[{"type":"InternalIP","address":"a"}],
          "conditions":[{"type":"Ready","status":"False"}]}})",
       R"({"spec":{"podCIDRs":["fd00::/64"]},"status":{"addresses":[{"type":"Hostname","address":"h"}],
          "conditions":[{"type":"Ready","status":"True"}]}})",
       R"({"spec":{"podCIDRs":["10.0.0.0/24","fd00::/64"]},"status":{"addresses":[{"type":"InternalIP","address":"a"},
          {"type":"Hostname","address":"h"}],"conditions":[{"type":"Ready","status":"True"}]}})"},
      {"a kind the lab does not know: lists replaced", "ConfigMap",
       R"({"spec":{"containers":[{"name":"a"}]}})", R"({"spec":{"containers":[{"name":"b"}]}})",
       R"({"spec":{"containers":[{"name":"b"}]}})"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(internal::StrategicMerge(Json::parse(c.target), Json::parse(c.patch), c.kind),
              Json::parse(c.want));
  }
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
