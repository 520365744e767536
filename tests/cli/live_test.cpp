// `--live` reads the cluster through the API: the same answers as the same
// objects given as files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "kube/client.h"
#include "lab/apiserver.h"

namespace netpol {
namespace {

using Json = nlohmann::json;

std::string RunCli(std::vector<std::string> args, int& code) {
  args.insert(args.begin(), "netpol");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  code = cli::Run(static_cast<int>(argv.size()), argv.data(), in, out, err);
  return out.str() + err.str();
}

Json Pod(const std::string& ns, const std::string& name, const std::string& app, const std::string& ip) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", app}}}}},
      {"spec", {{"containers", {{{"name", "c"}, {"ports", {{{"name", "sql"}, {"containerPort", 3306}}}}}}}}},
      {"status", {{"podIP", ip}}}};
}

TEST(LiveTest, MatrixAndCheckFromTheApiEqualThemFromFiles) {
  const std::vector<Json> objects = {
      {{"apiVersion", "v1"},
       {"kind", "Namespace"},
       {"metadata", {{"name", "shop"}, {"labels", {{"team", "a"}}}}}},
      Pod("shop", "web", "web", "198.18.3.1"),
      Pod("shop", "db", "db", "198.18.3.2"),
      Pod("shop", "client", "client", "198.18.3.3"),
      {{"apiVersion", "networking.k8s.io/v1"},
       {"kind", "NetworkPolicy"},
       {"metadata", {{"name", "db-from-web"}, {"namespace", "shop"}}},
       {"spec",
        {{"podSelector", {{"matchLabels", {{"app", "db"}}}}},
         {"ingress",
          {{{"from", {{{"podSelector", {{"matchLabels", {{"app", "web"}}}}}}}},
            {"ports", {{{"port", "sql"}}}}}}}}}},
  };
  auto server = lab::ApiServer::Start({});
  ASSERT_TRUE(server.ok()) << server.error().message();
  auto api = kube::Client::Create(kube::Api((*server)->url()));
  ASSERT_TRUE(api.ok());
  for (const Json& o : objects) {
    const std::string kind = o["kind"];
    const std::string path = kind == "Namespace" ? "/api/v1/namespaces"
                             : kind == "Pod"     ? "/api/v1/namespaces/shop/pods"
                                             : "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies";
    ASSERT_TRUE((*api)->Request("POST", path, o.dump()).ok()) << o.dump();
  }
  const std::string dir = ::testing::TempDir() + "/netpol-live-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/objects.json")
      << Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", objects}}.dump();
  std::ofstream(dir + "/kubeconfig") << "current-context: lab\n"
                                        "clusters: [{name: lab, cluster: {server: \""
                                     << (*server)->url()
                                     << "\"}}]\n"
                                        "contexts: [{name: lab, context: {cluster: lab}}]\n";
  int from_files = -1;
  int from_api = -1;
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"matrix", "--port", "3306/TCP"},
        std::vector<std::string>{"check", "--from", "shop/client", "--to", "shop/db", "--port", "3306"},
        std::vector<std::string>{"check", "--from", "shop/web", "--to", "shop/db", "--port", "3306"}}) {
    std::vector<std::string> files = command;
    files.insert(files.end(), {"-f", dir + "/objects.json"});
    std::vector<std::string> live = command;
    live.insert(live.end(), {"--live", "--kubeconfig", dir + "/kubeconfig"});
    const std::string expected = RunCli(files, from_files);
    EXPECT_EQ(RunCli(live, from_api), expected);
    EXPECT_EQ(from_api, from_files);
    EXPECT_NE(expected.find("shop/db"), std::string::npos) << expected;
  }
  int code = 0;
  const std::string unreachable = RunCli({"matrix", "--live", "--kubeconfig", dir + "/missing"}, code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(unreachable.find("kubeconfig"), std::string::npos) << unreachable;
  std::filesystem::remove_all(dir);
}

// `--live -f FILE` (issue 15 item 7): the files' objects on top of the
// cluster's, as `kubectl apply -f FILE` would leave it; a file's object with a
// live object's name replaces it. Before, -f was silently ignored.
TEST(LiveTest, FilesWithLiveAreAppliedOnTopOfTheCluster) {
  auto server = lab::ApiServer::Start({});
  ASSERT_TRUE(server.ok()) << server.error().message();
  auto api = kube::Client::Create(kube::Api((*server)->url()));
  ASSERT_TRUE(api.ok());
  ASSERT_TRUE(
      (*api)
          ->Request(
              "POST", "/api/v1/namespaces",
              Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "shop"}}}}.dump())
          .ok());
  for (const Json& pod : {Pod("shop", "web", "web", "198.18.3.1"), Pod("shop", "db", "db", "198.18.3.2"),
                          Pod("shop", "client", "client", "198.18.3.3")}) {
    ASSERT_TRUE((*api)->Request("POST", "/api/v1/namespaces/shop/pods", pod.dump()).ok());
  }
  const std::string db_from_web =
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db-access, namespace: shop}\n"
      "spec: {podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: "
      "%s}}}]}]}\n";
  const auto policy_from = [&](const std::string& app) {
    std::string text = db_from_web;
    return text.replace(text.find("%s"), 2, app);
  };
  Json policy_json = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", {{"name", "db-access"}, {"namespace", "shop"}}},
      {"spec",
       {{"podSelector", {{"matchLabels", {{"app", "db"}}}}},
        {"ingress", {{{"from", {{{"podSelector", {{"matchLabels", {{"app", "web"}}}}}}}}}}}}}};
  ASSERT_TRUE(
      (*api)
          ->Request("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", policy_json.dump())
          .ok());
  const std::string dir = ::testing::TempDir() + "/netpol-live-apply-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/kubeconfig") << "current-context: lab\nclusters: [{name: lab, cluster: {server: \""
                                     << (*server)->url()
                                     << "\"}}]\ncontexts: [{name: lab, context: {cluster: lab}}]\n";
  std::ofstream(dir + "/from-client.yaml") << policy_from("client");
  std::ofstream(dir + "/deny-web.yaml")
      << "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
         "metadata: {name: web-deny, namespace: shop}\nspec: {podSelector: {matchLabels: {app: web}}}\n";
  std::ofstream(dir + "/invalid.yaml") << "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                          "metadata: {name: Bad, namespace: shop}\nspec: {podSelector: {}}\n";
  const std::vector<std::string> live = {"--live", "--kubeconfig", dir + "/kubeconfig"};
  const auto check = [&](const std::string& from, const std::string& to, std::vector<std::string> extra) {
    std::vector<std::string> args = {"check", "--from", from, "--to", to, "--port", "3306"};
    args.insert(args.end(), live.begin(), live.end());
    args.insert(args.end(), extra.begin(), extra.end());
    int code = -1;
    const std::string out = RunCli(args, code);
    return std::pair{code, out};
  };
  EXPECT_EQ(check("shop/client", "shop/db", {}).first, 1);
  // The file's db-access replaces the live one: client in, web out.
  EXPECT_EQ(check("shop/client", "shop/db", {"-f", dir + "/from-client.yaml"}).first, 0);
  EXPECT_EQ(check("shop/web", "shop/db", {"-f", dir + "/from-client.yaml"}).first, 1);
  // A new policy adds to the cluster's.
  EXPECT_EQ(check("shop/client", "shop/web", {}).first, 0);
  EXPECT_EQ(check("shop/client", "shop/web", {"-f", dir + "/deny-web.yaml"}).first, 1);
  EXPECT_EQ(check("shop/web", "shop/db", {"-f", dir + "/deny-web.yaml"}).first, 0);
  // An invalid file rejects the whole input.
  const auto [code, out] = check("shop/web", "shop/db", {"-f", dir + "/invalid.yaml"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("invalid.yaml:3:"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// `lint --live` (issue 17 point 3): the ClusterNetworkPolicy lints on the
// cluster's objects say what they say on the same objects as files (only the
// locations differ: a live object has no file and line).
TEST(LiveTest, LintOfClusterPoliciesFromTheApiEqualsItFromFiles) {
  const Json guard = {
      {"apiVersion", "policy.networking.k8s.io/v1alpha2"},
      {"kind", "ClusterNetworkPolicy"},
      {"metadata", {{"name", "guard"}}},
      {"spec",
       {{"tier", "Admin"},
        {"priority", 10},
        {"subject", {{"namespaces", {{"matchLabels", {{"team", "a"}}}}}}},
        {"ingress",
         {{{"name", "deny-all"}, {"action", "Deny"}, {"from", {{{"namespaces", Json::object()}}}}},
          {{"name", "web"},
           {"action", "Accept"},
           {"from",
            {{{"pods",
               {{"namespaceSelector", Json::object()},
                {"podSelector", {{"matchLabels", {{"app", "web"}}}}}}}}}}}}},
        {"egress",
         {{{"name", "pass"}, {"action", "Pass"}, {"to", {{{"networks", {"198.51.100.0/24"}}}}}}}}}}};
  const std::vector<Json> objects = {{{"apiVersion", "v1"},
                                      {"kind", "Namespace"},
                                      {"metadata", {{"name", "shop"}, {"labels", {{"team", "a"}}}}}},
                                     Pod("shop", "web", "web", "198.18.3.1"),
                                     Pod("shop", "db", "db", "198.18.3.2"),
                                     guard};
  auto server = lab::ApiServer::Start({});
  ASSERT_TRUE(server.ok()) << server.error().message();
  auto api = kube::Client::Create(kube::Api((*server)->url()));
  ASSERT_TRUE(api.ok());
  for (const Json& o : objects) {
    const std::string kind = o["kind"];
    const std::string path = kind == "Namespace" ? "/api/v1/namespaces"
                             : kind == "Pod"
                                 ? "/api/v1/namespaces/shop/pods"
                                 : "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies";
    ASSERT_TRUE((*api)->Request("POST", path, o.dump()).ok()) << o.dump();
  }
  const std::string dir = ::testing::TempDir() + "/netpol-live-lint-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/objects.json")
      << Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", objects}}.dump();
  std::ofstream(dir + "/kubeconfig") << "current-context: lab\nclusters: [{name: lab, cluster: {server: \""
                                     << (*server)->url()
                                     << "\"}}]\ncontexts: [{name: lab, context: {cluster: lab}}]\n";
  // The findings without their locations.
  const auto findings = [](const std::string& out) {
    Json parsed = Json::parse(out.substr(0, out.find("\n]}") + 3), nullptr, false);
    if (!parsed.is_object()) return Json();
    for (Json& f : parsed["findings"]) f.erase("location");
    return parsed["findings"];
  };
  int from_files = -1;
  int from_api = -1;
  const Json expected = findings(RunCli({"lint", "-o", "json", "-f", dir + "/objects.json"}, from_files));
  const Json live =
      findings(RunCli({"lint", "-o", "json", "--live", "--kubeconfig", dir + "/kubeconfig"}, from_api));
  EXPECT_EQ(from_files, 1);
  EXPECT_EQ(from_api, 1);
  EXPECT_EQ(live, expected);
  // The shadowed rule and the Pass to the default, from the cluster.
  std::vector<std::string> checks;
  for (const Json& f : live) checks.push_back(f.value("check", "") + " " + f.value("field", ""));
  EXPECT_EQ(checks, (std::vector<std::string>{"cluster-rule-shadowed spec.ingress[1]",
                                              "cluster-pass-to-default spec.egress[0]"}))
      << live.dump();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace netpol
