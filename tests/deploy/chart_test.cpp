// deploy/helm/netpol: the chart rendered (tests/deploy/chart_render.h, the
// Go-template subset it uses) with its defaults and with each value changed,
// and the objects checked with netpol's own decoder. The defaults must render
// exactly deploy/netpol.yaml, so the two ways to install never drift apart;
// every netpold flag the chart passes must be one netpold accepts.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "api/load.h"
#include "api/yaml_json.h"
#include "deploy/chart_render.h"

namespace netpol {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing_chart::ChartRender;
using testing_chart::MergeValues;

const fs::path kChart = fs::path(NETPOL_SOURCE_DIR) / "deploy/helm/netpol";

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Json YamlFile(const fs::path& path) {
  Result<std::vector<Json>> docs = api::YamlDocumentsToJson(Read(path), path.filename().string());
  EXPECT_TRUE(docs.ok() && docs->size() == 1) << path;
  return docs.ok() && !docs->empty() ? (*docs)[0] : Json();
}

// `helm template` for this chart: every template but NOTES.txt and partials,
// in name order, as one stream of documents.
std::string RenderText(const Json& overrides, const std::string& release_namespace = "kube-system") {
  ChartRender render;
  render.values = MergeValues(YamlFile(kChart / "values.yaml"), overrides);
  render.chart = YamlFile(kChart / "Chart.yaml");
  render.release_namespace = release_namespace;
  std::vector<fs::path> templates;
  for (const auto& entry : fs::directory_iterator(kChart / "templates")) {
    const std::string name = entry.path().filename().string();
    if (name != "NOTES.txt" && name[0] != '_') templates.push_back(entry.path());
  }
  std::sort(templates.begin(), templates.end());
  std::string out;
  for (const fs::path& path : templates) {
    Result<std::string> text = render.Render(Read(path), path.filename().string());
    EXPECT_TRUE(text.ok()) << text.error().message();
    if (text.ok()) out += "---\n# Source: netpol/templates/" + path.filename().string() + "\n" + *text + "\n";
  }
  return out;
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

TEST(ChartTest, DefaultsRenderExactlyTheManifest) {
  Result<std::vector<Json>> manifest =
      api::YamlDocumentsToJson(Read(fs::path(NETPOL_SOURCE_DIR) / "deploy/netpol.yaml"), "netpol.yaml");
  ASSERT_TRUE(manifest.ok()) << manifest.error().message();
  const std::map<std::string, Json> chart = ByName(Render(Json::object()));
  const std::map<std::string, Json> plain = ByName(*manifest);
  ASSERT_EQ(chart.size(), 4u);
  for (const auto& [name, doc] : plain) {
    ASSERT_TRUE(chart.contains(name)) << name;
    EXPECT_TRUE(chart.at(name) == doc) << name << " differs from deploy/netpol.yaml:\n"
                                       << Json::diff(doc, chart.at(name)).dump(1);
  }
  EXPECT_EQ(chart.size(), plain.size());
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
    ASSERT_EQ(env.size(), 2u);
    EXPECT_EQ(env[0]["value"], "standalone");
    EXPECT_EQ(env[1]["name"], "NETPOL_POD_CIDRS");
    EXPECT_EQ(env[1]["value"], "198.18.4.0/24,2001:2:0:4::/64");
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
  {  // Resources are passed through whole.
    const std::vector<Json> docs = Render(Json::parse(R"({"resources":{"requests":{"cpu":"200m"}}})"));
    const Json& agent = DaemonSet(docs)["spec"]["template"]["spec"]["containers"][0];
    EXPECT_EQ(agent["resources"]["requests"]["cpu"], "200m");
    EXPECT_EQ(agent["resources"]["limits"]["memory"], "512Mi");
  }
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

TEST(ChartRenderTest, TheSubsetItSupports) {
  ChartRender render;
  render.values = Json::parse(R"({"a":{"b":"x y","n":3,"on":true,"off":false,"list":["p","q"],
                                   "map":{"k":"v","l":["m"]}}})");
  const auto run = [&](const std::string& text) {
    Result<std::string> out = render.Render(text, "t.yaml");
    return out.ok() ? *out : "ERROR " + out.error().message();
  };
  EXPECT_EQ(run("v: {{ .Values.a.b }}"), "v: x y");
  EXPECT_EQ(run("v: {{ .Values.a.b | quote }}"), "v: \"x y\"");
  EXPECT_EQ(run("v: {{ .Values.a.n }}"), "v: 3");
  EXPECT_EQ(run("a\n  {{- if .Values.a.on }}\nb\n  {{- end }}\nc"), "a\nb\nc");
  EXPECT_EQ(run("a\n  {{- if .Values.a.off }}\nb\n  {{- else }}\nd\n  {{- end }}\nc"), "a\nd\nc");
  EXPECT_EQ(run("{{ if not .Values.a.off }}yes{{ end }}"), "yes");
  EXPECT_EQ(run("{{ if .Values.a.off }}1{{ else if .Values.a.on }}2{{ else }}3{{ end }}"), "2");
  EXPECT_EQ(run("{{ if .Values.a.off }}1{{ else if .Values.a.off }}2{{ else }}3{{ end }}"), "3");
  EXPECT_EQ(run("{{ if .Values.a.on }}1{{ else if .Values.a.on }}2{{ end }}"), "1");
  EXPECT_EQ(run("{{ if eq .Values.a.b \"x y\" }}same{{ end }}"), "same");
  EXPECT_EQ(run("{{ join \",\" .Values.a.list }}"), "p,q");
  EXPECT_EQ(run("{{ .Values.a.missing | default \"d\" }}"), "d");
  EXPECT_EQ(run("m:\n  {{- toYaml .Values.a.map | nindent 2 }}"), "m:\n  k: v\n  l:\n  - m");
  EXPECT_EQ(run("x {{- /* a comment */ -}} y"), "xy");
  // Beyond the subset, or a missing value: an error, never a silent empty.
  EXPECT_EQ(run("{{ .Values.a.missing }}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(run("{{ .Values.a.map }}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(run("{{ range .Values.a.list }}{{ . }}{{ end }}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(run("{{ include \"x\" . }}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(run("{{ upper .Values.a.b }}").rfind("ERROR", 0), 0u);
  EXPECT_EQ(run("{{ if .Values.a.on }}unclosed").rfind("ERROR", 0), 0u);
}

}  // namespace
}  // namespace netpol
