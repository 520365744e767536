// deploy/: the objects `kubectl apply -f deploy/netpol.yaml` creates, checked
// with netpol's own decoder, and the CNI installer the DaemonSet runs, run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "api/load.h"
#include "api/yaml_json.h"

namespace netpol {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string Source(const std::string& path) {
  return std::string(NETPOL_SOURCE_DIR) + "/" + path;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<Json> Manifest() {
  Result<std::vector<Json>> docs =
      api::YamlDocumentsToJson(Read(Source("deploy/netpol.yaml")), "netpol.yaml");
  EXPECT_TRUE(docs.ok()) << docs.error().message();
  return docs.ok() ? *docs : std::vector<Json>{};
}

const Json& Find(const std::vector<Json>& docs, const std::string& kind) {
  static const Json kNone;
  for (const Json& d : docs) {
    if (d.value("kind", "") == kind) return d;
  }
  ADD_FAILURE() << "no " << kind;
  return kNone;
}

TEST(DeployTest, TheManifestIsValidAndLeastPrivileged) {
  // The API objects netpol models decode and validate as the API server would.
  std::istringstream none;
  const api::LoadResult loaded = api::LoadManifests({Source("deploy/netpol.yaml")}, {}, none);
  EXPECT_TRUE(loaded.ok());
  for (const auto& d : loaded.diagnostics) ADD_FAILURE() << d.ToString();
  ASSERT_EQ(loaded.objects.size(), 1u);  // the DaemonSet; RBAC kinds are counted as ignored
  EXPECT_EQ(loaded.ignored.at("ClusterRole"), 1);

  const std::vector<Json> docs = Manifest();
  // RBAC: read-only, and exactly what netpold and its installer use (the cluster tier's
  // check-rbac.sh shows each grant used, from the API server's audit log).
  const Json& role = Find(docs, "ClusterRole");
  std::vector<std::string> grants;
  for (const Json& rule : role["rules"]) {
    for (const Json& r : rule["resources"]) {
      for (const Json& v : rule["verbs"]) grants.push_back(r.get<std::string>() + " " + v.get<std::string>());
    }
  }
  std::sort(grants.begin(), grants.end());
  EXPECT_EQ(grants, (std::vector<std::string>{"clusternetworkpolicies list", "clusternetworkpolicies watch",
                                              "namespaces list", "namespaces watch", "networkpolicies list",
                                              "networkpolicies watch", "nodes get", "nodes list",
                                              "nodes watch", "pods list", "pods watch"}));
  const Json& binding = Find(docs, "ClusterRoleBinding");
  EXPECT_EQ(binding["roleRef"]["name"], "netpol");
  EXPECT_EQ(binding["subjects"][0]["name"], Find(docs, "ServiceAccount")["metadata"]["name"]);

  const Json& pod = Find(docs, "DaemonSet")["spec"]["template"]["spec"];
  EXPECT_EQ(pod["hostNetwork"], true);
  EXPECT_EQ(pod["serviceAccountName"], "netpol");
  EXPECT_EQ(pod["tolerations"], Json::array({{{"operator", "Exists"}}}));  // every node
  const Json& agent = pod["containers"][0];
  EXPECT_EQ(agent["securityContext"]["privileged"], false);
  EXPECT_EQ(agent["securityContext"]["capabilities"]["drop"], Json::array({"ALL"}));
  EXPECT_EQ(agent["securityContext"]["capabilities"]["add"], Json::array({"NET_ADMIN", "NET_RAW"}));
  EXPECT_EQ(agent["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(agent["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_TRUE(agent["resources"].contains("requests"));
  // The probes reach what netpold serves, and it knows its node.
  const Json& command = agent["command"];
  EXPECT_NE(std::find(command.begin(), command.end(), "--metrics-address=:9963"), command.end()) << command;
  EXPECT_EQ(agent["livenessProbe"]["httpGet"]["port"], 9963);
  EXPECT_NE(std::find(command.begin(), command.end(), "--node-name=$(NODE_NAME)"), command.end());
  EXPECT_EQ(agent["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
  // The installer writes into the host's CNI directories.
  std::vector<std::string> mounts;
  for (const Json& m : pod["initContainers"][0]["volumeMounts"]) mounts.push_back(m["mountPath"]);
  EXPECT_EQ(mounts, (std::vector<std::string>{"/host/opt/cni/bin", "/host/etc/cni/net.d"}));
  std::vector<std::string> host_paths;
  for (const Json& v : pod["volumes"]) host_paths.push_back(v["hostPath"]["path"]);
  EXPECT_NE(std::find(host_paths.begin(), host_paths.end(), "/etc/cni/net.d"), host_paths.end());
  EXPECT_NE(std::find(host_paths.begin(), host_paths.end(), "/opt/cni/bin"), host_paths.end());
}

class InstallCniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("netpol-install-cni-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "conf");
    std::ofstream(dir_ / "plugin") << "#!/bin/sh\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  int Install(const std::string& env) {
    const std::string command = "CNI_BIN_DIR=" + (dir_ / "bin").string() +
                                " CNI_CONF_DIR=" + (dir_ / "conf").string() +
                                " NETPOL_CNI_PLUGIN=" + (dir_ / "plugin").string() + " " + env + " " +
                                Source("deploy/install-cni.sh") + " >/dev/null 2>&1";
    const int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  fs::path dir_;
};

TEST_F(InstallCniTest, ChainsAfterTheNodesCniOnceAndOnlyOnce) {
  EXPECT_EQ(Install(""), 1);  // nothing to chain after
  std::ofstream(dir_ / "conf/10-bridge.conflist")
      << R"({"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"portmap"}]})";
  ASSERT_EQ(Install(""), 0);
  const std::string once = Read((dir_ / "conf/10-bridge.conflist").string());
  const Json conf = Json::parse(once);
  ASSERT_EQ(conf["plugins"].size(), 3u);
  EXPECT_EQ(conf["plugins"][0]["type"], "bridge");      // the node's CNI still wires the pod
  EXPECT_EQ(conf["plugins"][2]["type"], "netpol-cni");  // last: it sees prevResult
  EXPECT_EQ(conf["plugins"][2]["agentSocket"], "/run/netpol/agent.sock");
  EXPECT_TRUE(fs::exists(dir_ / "bin/netpol-cni"));
  ASSERT_EQ(Install(""), 0);
  EXPECT_EQ(Read((dir_ / "conf/10-bridge.conflist").string()), once);  // idempotent
}

TEST_F(InstallCniTest, StandaloneWritesItsOwnConflist) {
  EXPECT_NE(Install("NETPOL_CNI_MODE=standalone"), 0);  // no pod CIDRs given
  ASSERT_EQ(Install("NETPOL_CNI_MODE=standalone NETPOL_POD_CIDRS=198.18.4.0/24,2001:2:0:4::/64"), 0);
  const Json conf = Json::parse(Read((dir_ / "conf/10-netpol.conflist").string()));
  ASSERT_EQ(conf["plugins"].size(), 1u);
  EXPECT_EQ(conf["plugins"][0]["type"], "netpol-cni");
  EXPECT_EQ(conf["plugins"][0]["ipam"]["ranges"], Json::array({"198.18.4.0/24", "2001:2:0:4::/64"}));
  EXPECT_EQ(Install("NETPOL_CNI_MODE=sideways"), 1);
}

}  // namespace
}  // namespace netpol
