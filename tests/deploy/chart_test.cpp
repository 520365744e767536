// deploy/helm/netpol: the chart rendered by the real Helm (`helm template`,
// built from the pinned module by scripts/cluster/build-components.sh helm, which
// `make test` runs first) with its defaults and with each value changed, linted
// (`helm lint --strict`) with the same values, and the objects checked with
// netpol's own decoder. The defaults must render exactly deploy/netpol.yaml, so the
// two ways to install never drift apart; every netpold flag the chart passes must
// be one netpold accepts.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <system_error>
#include <vector>

#include "api/load.h"
#include "api/yaml_json.h"

namespace netpol {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const fs::path kChart = fs::path(NETPOL_SOURCE_DIR) / "deploy/helm/netpol";

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A shell word for a path of ours.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct HelmRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// This process's scratch directory, removed at exit.
const fs::path& Scratch() {
  struct Dir {
    fs::path path;
    ~Dir() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  };
  static const Dir dir{[] {
    const fs::path path = fs::temp_directory_path() / ("netpol-chart-test." + std::to_string(getpid()));
    fs::create_directories(path);
    return path;
  }()};
  return dir.path;
}

// Runs helm with `args` (shell words), its caches and configuration in the scratch
// directory (never the user's), and `overrides` as a values file.
HelmRun Helm(const std::string& args, const Json& overrides) {
  const fs::path& scratch = Scratch();
  const fs::path values = scratch / "values.json";  // JSON is YAML
  std::ofstream(values) << overrides.dump();
  const std::string command = "HELM_CACHE_HOME=" + Quote((scratch / "cache").string()) +
                              " HELM_CONFIG_HOME=" + Quote((scratch / "config").string()) +
                              " HELM_DATA_HOME=" + Quote((scratch / "data").string()) + " " +
                              Quote(NETPOL_HELM_BIN) + " " + args + " -f " + Quote(values.string()) + " 2>" +
                              Quote((scratch / "stderr").string());
  HelmRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) run.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.err = Read(scratch / "stderr");
  return run;
}

// `helm template` of the chart, as one stream of documents; the same values must
// also pass `helm lint --strict` (a missing value, a malformed object).
std::string RenderText(const Json& overrides, const std::string& release_namespace = "kube-system") {
  if (!fs::exists(NETPOL_HELM_BIN)) {
    ADD_FAILURE() << "no helm at " NETPOL_HELM_BIN
                     ": build it with scripts/cluster/build-components.sh helm "
                     "(make test does)";
    return "";
  }
  const std::string chart = Quote(kChart.string()) + " --namespace " + Quote(release_namespace);
  const HelmRun lint = Helm("lint --strict " + chart, overrides);
  EXPECT_EQ(lint.exit_code, 0) << "helm lint --strict with " << overrides.dump() << ":\n"
                               << lint.out << lint.err;
  const HelmRun render = Helm("template netpol " + chart, overrides);
  EXPECT_EQ(render.exit_code, 0) << "helm template with " << overrides.dump() << ":\n" << render.err;
  return render.out;
}

std::vector<Json> Render(const Json& overrides, const std::string& release_namespace = "kube-system") {
  Result<std::vector<Json>> docs =
      api::YamlDocumentsToJson(RenderText(overrides, release_namespace), "chart");
  EXPECT_TRUE(docs.ok()) << docs.error().message();
  std::vector<Json> out;
  if (docs.ok()) {
    for (Json& d : *docs) {
      if (!d.is_null()) out.push_back(std::move(d));
    }
  }
  return out;
}

// Documents by kind/name, for an order-free comparison.
std::map<std::string, Json> ByName(const std::vector<Json>& docs) {
  std::map<std::string, Json> out;
  for (const Json& d : docs) out[d.value("kind", "") + "/" + d["metadata"].value("name", "")] = d;
  return out;
}

const Json& DaemonSet(const std::vector<Json>& docs) {
  static const Json kNone;
  for (const Json& d : docs) {
    if (d.value("kind", "") == "DaemonSet") return d;
  }
  ADD_FAILURE() << "no DaemonSet";
  return kNone;
}

std::vector<std::string> Command(const std::vector<Json>& docs) {
  return DaemonSet(docs)["spec"]["template"]["spec"]["containers"][0]["command"]
      .get<std::vector<std::string>>();
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// deploy/netpol.yaml installs netpol standalone (netpol-cni wires pods from each
// node's spec.podCIDRs); the chart's defaults with cni.mode=standalone are exactly it.
TEST(ChartTest, StandaloneDefaultsRenderExactlyTheManifest) {
  Result<std::vector<Json>> manifest =
      api::YamlDocumentsToJson(Read(fs::path(NETPOL_SOURCE_DIR) / "deploy/netpol.yaml"), "netpol.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.error().message();
  const std::map<std::string, Json> chart = ByName(Render(Json::parse(R"({"cni":{"mode":"standalone"}})")));
  const std::map<std::string, Json> plain = ByName(*manifest);
  ASSERT_EQ(chart.size(), 5u);
  for (const auto& [name, doc] : plain) {
    ASSERT_TRUE(chart.contains(name)) << name;
    EXPECT_TRUE(chart.at(name) == doc) << name << " differs from deploy/netpol.yaml:\n"
                                       << Json::diff(doc, chart.at(name)).dump(1);
  }
  EXPECT_EQ(chart.size(), plain.size());
}

// Helm renders a value missing from values.yaml as nothing, silently: every value
// the templates read must be there (a typo, a value renamed in one place only).
TEST(ChartTest, EveryValueTheTemplatesReadIsInValuesYaml) {
  Result<std::vector<Json>> values = api::YamlDocumentsToJson(Read(kChart / "values.yaml"), "values.yaml");
  ASSERT_TRUE(values.ok() && values->size() == 1) << "values.yaml";
  const std::regex reference(R"(\.Values((\.[A-Za-z_][A-Za-z0-9_]*)+))");
  int references = 0;
  for (const auto& entry : fs::directory_iterator(kChart / "templates")) {
    const std::string text = Read(entry.path());
    for (auto m = std::sregex_iterator(text.begin(), text.end(), reference); m != std::sregex_iterator();
         ++m) {
      ++references;
      const std::string path = (*m)[1].str();  // ".cni.mode"
      const Json* at = &(*values)[0];
      for (size_t start = 1; start <= path.size();) {
        const size_t end = std::min(path.find('.', start), path.size());
        const std::string key = path.substr(start, end - start);
        if (!at->is_object() || !at->contains(key)) {
          ADD_FAILURE() << entry.path().filename() << " reads .Values" << path << ", which values.yaml lacks";
          break;
        }
        at = &(*at)[key];
        start = end + 1;
      }
    }
  }
  EXPECT_GT(references, 10);
}

TEST(ChartTest, EveryObjectDecodesAndValidates) {
  for (const Json& overrides : {Json::object(), Json::parse(R"({"cni":{"mode":"standalone",
        "podCIDRs":["198.18.4.0/24","2001:2:0:4::/64"]},"flowLogs":{"enabled":false}})")}) {
    const api::LoadResult loaded = api::LoadText(RenderText(overrides), "chart", {});
    EXPECT_TRUE(loaded.ok());
    for (const auto& d : loaded.diagnostics) ADD_FAILURE() << d.ToString();
    EXPECT_EQ(loaded.objects.size(), 1u);  // the DaemonSet's pod template
  }
}

TEST(ChartTest, EachValueReachesItsObject) {
  {  // Release namespace: every namespaced object, and the binding's subject.
    const std::vector<Json> docs = Render(Json::object(), "netpol-system");
    for (const Json& d : docs) {
      if (d["kind"] == "ServiceAccount" || d["kind"] == "DaemonSet") {
        EXPECT_EQ(d["metadata"]["namespace"], "netpol-system");
      }
      if (d["kind"] == "ClusterRoleBinding") {
        EXPECT_EQ(d["subjects"][0]["namespace"], "netpol-system");
      }
    }
  }
  {  // Standalone CNI with the node's pod ranges.
    const std::vector<Json> docs = Render(
        Json::parse(R"({"cni":{"mode":"standalone","podCIDRs":["198.18.4.0/24","2001:2:0:4::/64"]}})"));
    const Json& env = DaemonSet(docs)["spec"]["template"]["spec"]["initContainers"][0]["env"];
    ASSERT_EQ(env.size(), 3u);
    EXPECT_EQ(env[0]["value"], "standalone");
    EXPECT_EQ(env[1]["name"], "NETPOL_POD_CIDRS");
    EXPECT_EQ(env[1]["value"], "198.18.4.0/24,2001:2:0:4::/64");
    // Without ranges install-cni reads the node's own from the API, by the node's name.
    EXPECT_EQ(env[2]["name"], "NODE_NAME");
    EXPECT_EQ(env[2]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    // netpold reads the conflist install-cni writes, to program pods ahead of their ADD.
    EXPECT_TRUE(Has(Command(docs), "--cni-conf=/etc/cni/net.d/10-netpol.conflist"));
    const Json& mounts = DaemonSet(docs)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
    EXPECT_TRUE(std::any_of(mounts.begin(), mounts.end(), [](const Json& m) {
      return m["name"] == "cni-conf" && m["mountPath"] == "/etc/cni/net.d" && m["readOnly"] == true;
    }));
  }
  {  // Chained (the default) passes no ranges, and netpold no conflist (no addresses of its own to reserve).
    const std::vector<Json> docs = Render(Json::object());
    EXPECT_EQ(DaemonSet(docs)["spec"]["template"]["spec"]["initContainers"][0]["env"].size(), 1u);
    for (const std::string& arg : Command(docs)) EXPECT_EQ(arg.rfind("--cni-conf", 0), std::string::npos);
  }
  {  // Log level, NFLOG group, flow logs off, metrics port, image.
    const std::vector<Json> docs = Render(Json::parse(
        R"({"logLevel":"debug","flowLogs":{"enabled":false,"nflogGroup":7},"metrics":{"port":9100},
            "image":{"repository":"registry.example/netpol","tag":"0.1.0","pullPolicy":"Always"}})"));
    const std::vector<std::string> command = Command(docs);
    EXPECT_TRUE(Has(command, "--log-level=debug"));
    EXPECT_TRUE(Has(command, "--log-group=7"));
    EXPECT_TRUE(Has(command, "--flow-logs=false"));
    EXPECT_TRUE(Has(command, "--metrics-address=:9100"));
    const Json& agent = DaemonSet(docs)["spec"]["template"]["spec"]["containers"][0];
    EXPECT_EQ(agent["livenessProbe"]["httpGet"]["port"], 9100);
    EXPECT_EQ(agent["readinessProbe"]["httpGet"]["port"], 9100);
    EXPECT_EQ(agent["ports"][0]["containerPort"], 9100);
    EXPECT_EQ(agent["image"], "registry.example/netpol:0.1.0");
    EXPECT_EQ(agent["imagePullPolicy"], "Always");
  }
  {  // Allowed connections logged too; but flow logs off wins.
    EXPECT_TRUE(
        Has(Command(Render(Json::parse(R"({"flowLogs":{"allowed":true}})"))), "--flow-logs-allowed=true"));
    const std::vector<std::string> off =
        Command(Render(Json::parse(R"({"flowLogs":{"enabled":false,"allowed":true}})")));
    EXPECT_TRUE(Has(off, "--flow-logs=false"));
    EXPECT_FALSE(Has(off, "--flow-logs-allowed=true"));
  }
  {  // A node selector reaches the pod template; none by default (every node).
    EXPECT_FALSE(DaemonSet(Render(Json::object()))["spec"]["template"]["spec"].contains("nodeSelector"));
    const std::vector<Json> docs = Render(Json::parse(R"({"nodeSelector":{"kubernetes.io/hostname":"n1"}})"));
    EXPECT_EQ(DaemonSet(docs)["spec"]["template"]["spec"]["nodeSelector"],
              Json::parse(R"({"kubernetes.io/hostname":"n1"})"));
  }
  {  // Resources are passed through whole.
    const std::vector<Json> docs = Render(Json::parse(R"({"resources":{"requests":{"cpu":"200m"}}})"));
    const Json& agent = DaemonSet(docs)["spec"]["template"]["spec"]["containers"][0];
    EXPECT_EQ(agent["resources"]["requests"]["cpu"], "200m");
    EXPECT_EQ(agent["resources"]["limits"]["memory"], "512Mi");
  }
}

TEST(ChartTest, TheRoleGrantsNodesOnlyToTheStandaloneInstaller) {
  // Chained, nothing reads nodes: the grant would be more than netpol needs.
  const auto grants = [](const std::vector<Json>& docs) {
    std::vector<std::string> out;
    for (const Json& d : docs) {
      if (d["kind"] != "ClusterRole") continue;
      for (const Json& rule : d["rules"]) {
        for (const Json& r : rule["resources"]) {
          for (const Json& v : rule["verbs"])
            out.push_back(r.get<std::string>() + " " + v.get<std::string>());
        }
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::vector<std::string> chained = {"clusternetworkpolicies list",
                                            "clusternetworkpolicies watch",
                                            "namespaces list",
                                            "namespaces watch",
                                            "networkpolicies list",
                                            "networkpolicies watch",
                                            "nodes list",
                                            "nodes watch",
                                            "pods list",
                                            "pods watch"};
  EXPECT_EQ(grants(Render(Json::object())), chained);
  std::vector<std::string> standalone = chained;
  standalone.push_back("nodes get");
  std::sort(standalone.begin(), standalone.end());
  EXPECT_EQ(grants(Render(Json::parse(R"({"cni":{"mode":"standalone"}})"))), standalone);
}

// The ClusterNetworkPolicy CRD: upstream's standard channel by default, the
// experimental one, or none; any other value is refused. Uninstalling keeps it.
TEST(ChartTest, TheClusterNetworkPolicyCrdIsTheChannelAsked) {
  const auto crds = [](const std::vector<Json>& docs) {
    std::vector<Json> out;
    for (const Json& d : docs) {
      if (d["kind"] == "CustomResourceDefinition") out.push_back(d);
    }
    return out;
  };
  for (const auto& [value, channel] : std::vector<std::pair<std::string, std::string>>{
           {"", "standard"}, {"standard", "standard"}, {"experimental", "experimental"}}) {
    SCOPED_TRACE(value);
    const Json overrides = value.empty() ? Json::object() : Json{{"clusterNetworkPolicy", {{"crd", value}}}};
    const std::vector<Json> found = crds(Render(overrides));
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0]["metadata"]["name"], "clusternetworkpolicies.policy.networking.k8s.io");
    EXPECT_EQ(found[0]["metadata"]["annotations"]["policy.networking.k8s.io/channel"], channel);
    EXPECT_EQ(found[0]["metadata"]["annotations"]["policy.networking.k8s.io/bundle-version"], "v0.3.0");
    // helm uninstall leaves it: deleting it would delete every ClusterNetworkPolicy.
    EXPECT_EQ(found[0]["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    EXPECT_EQ(found[0]["spec"]["scope"], "Cluster");
    // The version netpol reads is served.
    bool served = false;
    for (const Json& v : found[0]["spec"]["versions"])
      served |= v["name"] == "v1alpha2" && v["served"] == true;
    EXPECT_TRUE(served);
  }
  EXPECT_TRUE(crds(Render(Json::parse(R"({"clusterNetworkPolicy":{"crd":"none"}})"))).empty());
  const HelmRun bogus = Helm("template netpol " + Quote(kChart.string()),
                             Json::parse(R"({"clusterNetworkPolicy":{"crd":"bogus"}})"));
  EXPECT_NE(bogus.exit_code, 0);
  EXPECT_NE(bogus.err.find("clusterNetworkPolicy.crd must be standard, experimental or none"),
            std::string::npos)
      << bogus.err;
}

TEST(ChartTest, NetpoldAcceptsEveryFlagTheChartPasses) {
  std::string help;
  {
    const std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(NETPOL_NETPOLD_BIN " --help", "r"), pclose);
    ASSERT_NE(pipe, nullptr);
    std::array<char, 4096> buffer{};
    for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0;)
      help.append(buffer.data(), n);
  }
  ASSERT_NE(help.find("--node-name"), std::string::npos) << help;
  for (const Json& overrides :
       {Json::object(), Json::parse(R"({"flowLogs":{"enabled":false}})"),
        Json::parse(R"({"flowLogs":{"allowed":true}})"),
        Json::parse(R"({"cni":{"mode":"standalone","podCIDRs":["198.18.4.0/24"]}})")}) {
    for (const std::string& arg : Command(Render(overrides))) {
      if (arg.rfind("--", 0) != 0) continue;
      const std::string flag = arg.substr(0, arg.find('='));
      EXPECT_NE(help.find(flag), std::string::npos) << flag << " is not a netpold flag";
    }
  }
}

}  // namespace
}  // namespace netpol
