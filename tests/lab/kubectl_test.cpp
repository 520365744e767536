// The lab API server driven by a stock kubectl (no root: the API server alone,
// in this process, on plain HTTP): `kubectl apply` of a changed object changes
// it, as the strategic merge patch kubectl sends it is merged by the kind's
// merge keys (lab/internal/patch.h).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lab/apiserver.h"

namespace netpol::lab {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct Output {
  int code = -1;
  std::string text;  // stdout and stderr
};

Output Shell(const std::string& command) {
  Output out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0) out.text.append(buffer, n);
  const int status = ::pclose(p);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Shell("command -v kubectl").code != 0) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") FAIL() << "kubectl is not installed";
      GTEST_SKIP() << "kubectl is not installed";
    }
    auto server = ApiServer::Start({.nodes = {"node-1"}});
    ASSERT_TRUE(server.ok()) << server.error().message();
    server_ = std::move(*server);
    char tmp[] = "/tmp/netpol-kubectl-XXXXXX";
    ASSERT_NE(::mkdtemp(tmp), nullptr);
    dir_ = tmp;
    fs::create_directories(dir_ + "/home");
    std::ofstream(dir_ + "/kubeconfig")
        << "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: " << server_->url()
        << "\nusers:\n- name: lab\n  user: {}\ncontexts:\n- name: lab\n  context: {cluster: lab, user: lab}\n"
           "current-context: lab\n";
    // kubectl caches discovery under $HOME: one of our own.
    kubectl_ = "HOME=" + dir_ + "/home KUBECONFIG=" + dir_ + "/kubeconfig kubectl ";
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  Output Apply(const std::string& yaml) {
    const std::string file = dir_ + "/object.yaml";
    std::ofstream(file) << yaml;
    return Shell(kubectl_ + "apply -f " + file);
  }
  Json Get(const std::string& what) {
    const Output out = Shell(kubectl_ + "get " + what + " -o json");
    EXPECT_EQ(out.code, 0) << out.text;
    return out.code == 0 ? Json::parse(out.text, nullptr, false) : Json();
  }

  std::unique_ptr<ApiServer> server_;
  std::string dir_;
  std::string kubectl_;
};

std::string Service(int port, int target) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  selector:\n    app: db\n"
         "  ports:\n  - name: sql\n    port: " +
         std::to_string(port) + "\n    targetPort: " + std::to_string(target) + "\n";
}

TEST_F(KubectlTest, ApplyOfAChangedServicePortChangesIt) {
  const Output created = Apply(Service(3306, 3306));
  ASSERT_EQ(created.code, 0) << created.text;
  EXPECT_NE(created.text.find("service/db created"), std::string::npos) << created.text;

  // The port changes: kubectl deletes the old one by port and adds the new.
  const Output moved = Apply(Service(3307, 3306));
  ASSERT_EQ(moved.code, 0) << moved.text;
  EXPECT_NE(moved.text.find("service/db configured"), std::string::npos) << moved.text;
  Json ports = Get("service db")["spec"]["ports"];
  ASSERT_EQ(ports.size(), 1u) << ports;
  EXPECT_EQ(ports[0]["port"], 3307);
  EXPECT_EQ(ports[0]["targetPort"], 3306);
  EXPECT_EQ(ports[0]["name"], "sql");

  // Only the target port changes: merged into the port it names.
  const Output retargeted = Apply(Service(3307, 3308));
  ASSERT_EQ(retargeted.code, 0) << retargeted.text;
  EXPECT_NE(retargeted.text.find("service/db configured"), std::string::npos) << retargeted.text;
  ports = Get("service db")["spec"]["ports"];
  ASSERT_EQ(ports.size(), 1u) << ports;
  EXPECT_EQ(ports[0]["port"], 3307);
  EXPECT_EQ(ports[0]["targetPort"], 3308);

  const Output same = Apply(Service(3307, 3308));
  ASSERT_EQ(same.code, 0) << same.text;
  EXPECT_NE(same.text.find("service/db unchanged"), std::string::npos) << same.text;
}

// A Deployment's template: containers by name, their ports by containerPort.
TEST_F(KubectlTest, ApplyOfAChangedContainerPortChangesIt) {
  auto deployment = [](int port) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n"
           "    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n"
           "    spec:\n      containers:\n      - name: c\n        image: none\n        ports:\n"
           "        - containerPort: " +
           std::to_string(port) + "\n          name: http\n";
  };
  const Output created = Apply(deployment(80));
  ASSERT_EQ(created.code, 0) << created.text;
  const Output changed = Apply(deployment(8080));
  ASSERT_EQ(changed.code, 0) << changed.text;
  EXPECT_NE(changed.text.find("deployment.apps/web configured"), std::string::npos) << changed.text;
  const Json containers = Get("deployment web")["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 1u) << containers;
  ASSERT_EQ(containers[0]["ports"].size(), 1u) << containers;
  EXPECT_EQ(containers[0]["ports"][0]["containerPort"], 8080);
  EXPECT_EQ(containers[0]["ports"][0]["name"], "http");
}

// ClusterNetworkPolicy (issue 17 point 5): discovered, so kubectl finds the
// kind and its short name; cluster-scoped; validated as netpol validates it;
// printed with the CRD's columns; changed by kubectl's merge patch (a custom
// resource has no strategic merge patch).
TEST_F(KubectlTest, ClusterNetworkPolicyIsAppliedListedAndValidated) {
  auto cnp = [](int priority, const std::string& action) {
    return "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n"
           "  name: deny-web\nspec:\n  tier: Admin\n  priority: " +
           std::to_string(priority) +
           "\n  subject:\n    namespaces: {}\n  ingress:\n  - name: r\n    action: " + action +
           "\n    from:\n    - namespaces: {matchLabels: {team: web}}\n";
  };
  const Output created = Apply(cnp(10, "Deny"));
  ASSERT_EQ(created.code, 0) << created.text;
  EXPECT_NE(created.text.find("clusternetworkpolicy.policy.networking.k8s.io/deny-web created"),
            std::string::npos)
      << created.text;
  const Output changed = Apply(cnp(20, "Accept"));
  ASSERT_EQ(changed.code, 0) << changed.text;
  EXPECT_NE(changed.text.find("configured"), std::string::npos) << changed.text;
  const Json got = Get("cnp deny-web");
  EXPECT_EQ(got["spec"]["priority"], 20) << got;
  EXPECT_EQ(got["spec"]["ingress"][0]["action"], "Accept") << got;
  EXPECT_FALSE(got["metadata"].contains("namespace")) << got;
  EXPECT_EQ(got["metadata"]["generation"], 2) << got;

  const Output table = Shell(kubectl_ + "get cnp");
  ASSERT_EQ(table.code, 0) << table.text;
  EXPECT_NE(table.text.find("NAME"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("TIER"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("PRIORITY"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("deny-web"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("Admin"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("20"), std::string::npos) << table.text;

  // netpol's validation answers: an action the kind does not have.
  const Output invalid = Apply(cnp(30, "Allow"));
  EXPECT_NE(invalid.code, 0) << invalid.text;
  EXPECT_NE(invalid.text.find("is invalid"), std::string::npos) << invalid.text;
  EXPECT_EQ(Get("clusternetworkpolicies.policy.networking.k8s.io deny-web")["spec"]["priority"], 20);

  const Output deleted = Shell(kubectl_ + "delete cnp deny-web");
  ASSERT_EQ(deleted.code, 0) << deleted.text;
  EXPECT_NE(deleted.text.find("deleted"), std::string::npos) << deleted.text;
}

}  // namespace
}  // namespace netpol::lab
