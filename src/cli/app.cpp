#include "cli/app.h"

#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "api/encode.h"
#include "api/load.h"
#include "cli/matrix_output.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/routes.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"
#include "lab/lab.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "policy/explain.h"
#include "policy/flow_text.h"
#include "policy/lint.h"
#include "policy/matrix.h"

namespace netpol::cli {
namespace {

constexpr std::string_view kVersion = "0.1.0";

// Flags shared by every command that reads manifests.
struct InputFlags {
  std::vector<std::string> files;
  std::string namespace_;
  bool all_namespaces = false;
  bool strict = false;
  std::string output;
  bool live = false;  // the cluster's current state instead of files
  std::string kubeconfig;
  std::string context;
};

void AddInputFlags(CLI::App& cmd, InputFlags& flags, bool live = true) {
  cmd.add_option("-f,--filename", flags.files,
                 "Manifest file, directory (recursive: *.yaml, *.yml, *.json) or - for stdin; repeatable")
      ->type_name("PATH");
  if (live) {
    cmd.add_flag("--live", flags.live,
                 "Read namespaces, pods and policies from the cluster (kubeconfig as kubectl finds it); "
                 "with -f, the files' objects on top, as if applied");
    cmd.add_option("--kubeconfig", flags.kubeconfig,
                   "With --live: kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
        ->type_name("PATH");
    cmd.add_option("--context", flags.context, "With --live: kubeconfig context (default: current-context)")
        ->type_name("NAME");
  }
  cmd.add_option("-n,--namespace", flags.namespace_,
                 "Namespace for objects that name none (default \"default\"); also limits what is shown")
      ->type_name("NAMESPACE");
  cmd.add_flag("-A,--all-namespaces", flags.all_namespaces, "Show every namespace (the default)");
  cmd.add_flag("--strict", flags.strict, "Treat unknown fields as errors instead of warnings");
}

struct Context {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// The cluster's namespaces, pods and policies, as objects. An object netpol
// cannot read is left out with a warning: the API server already accepted it.
Result<api::LoadResult> LoadLive(const InputFlags& flags) {
  NETPOL_ASSIGN_OR_RETURN(kube::ClientConfig config,
                          kube::LoadKubeconfig({.path = flags.kubeconfig, .context = flags.context}),
                          "--live");
  NETPOL_ASSIGN_OR_RETURN(std::unique_ptr<kube::Client> client, kube::Client::Create(config), "--live");
  api::LoadResult out;
  // Nodes (for nodes peers) and ClusterNetworkPolicies are read too when the
  // cluster serves them and lets us list them; without them (no CRD, no RBAC)
  // the analysis goes on with a warning.
  std::vector<kube::PolicyResource> resources(std::begin(kube::kPolicyResources),
                                              std::end(kube::kPolicyResources));
  resources.insert(resources.end(), std::begin(kube::kOptionalPolicyResources),
                   std::end(kube::kOptionalPolicyResources));
  for (size_t i = 0; i < resources.size(); ++i) {
    const kube::PolicyResource& resource = resources[i];
    const bool optional = i >= std::size(kube::kPolicyResources);
    const Status listed = client->List(resource.path, [&](std::vector<kube::Json>& items, const kube::Json&) {
      for (kube::Json& item : items) {
        item["kind"] = resource.kind;
        item["apiVersion"] = resource.api_version;
        api::LoadResult one = api::LoadJson(item, config.server + resource.path, {.field_positions = false});
        if (one.ok() && one.objects.size() == 1) {
          out.objects.push_back(std::move(one.objects.front()));
          continue;
        }
        for (api::Diagnostic& d : one.diagnostics) {
          d.severity = api::Severity::kWarning;
          out.diagnostics.push_back(std::move(d));
        }
      }
    });
    if (!listed && optional) {
      out.diagnostics.push_back({api::Severity::kWarning,
                                 {},
                                 "",
                                 "",
                                 "--live: " + std::string(resource.kind) + "s not read (" +
                                     listed.error().message() + "); analysing without them"});
      continue;
    }
    NETPOL_RETURN_IF_ERROR(listed, "--live");
  }
  return out;
}

// `--live -f FILE`: the files' objects on top of the cluster's, as `kubectl
// apply -f FILE` would leave the cluster (an object with the kind, namespace and
// name of a live one replaces it). Invalid files reject the whole input.
void ApplyFiles(api::LoadResult& live, api::LoadResult files) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < live.objects.size(); ++i) index.emplace(api::ObjectRef(live.objects[i]), i);
  for (api::Diagnostic& d : files.diagnostics) live.diagnostics.push_back(std::move(d));
  for (const auto& [kind, count] : files.ignored) live.ignored[kind] += count;
  live.files += files.files;
  for (api::Object& object : files.objects) {
    if (const auto it = index.find(api::ObjectRef(object)); it != index.end()) {
      live.objects[it->second] = std::move(object);
    } else {
      live.objects.push_back(std::move(object));
    }
  }
}

// True when files were read and held no object at all (kubectl: "no objects
// passed to apply"): an empty stdin or file is a mistake, not an empty cluster.
bool NoObjects(const InputFlags& flags, const api::LoadResult& loaded) {
  return !flags.live && loaded.ok() && loaded.objects.empty() && loaded.ignored.empty();
}

void ReportNoObjects(const InputFlags& flags, Context& ctx) {
  std::string inputs;
  for (const std::string& file : flags.files)
    inputs += (inputs.empty() ? "" : ", ") + (file == "-" ? "stdin" : file);
  ctx.err << "error: no objects passed: " << inputs << " held no Kubernetes object\n";
}

// Loads and validates the input and prints every diagnostic on stderr.
api::LoadResult LoadAndReport(const InputFlags& flags, Context& ctx) {
  api::DecodeOptions options;
  if (!flags.namespace_.empty()) options.default_namespace = flags.namespace_;
  options.strict = flags.strict;
  api::LoadResult loaded;
  if (flags.live) {
    Result<api::LoadResult> live = LoadLive(flags);
    if (!live) {
      loaded.diagnostics.push_back({api::Severity::kError, {}, "", "", live.error().message()});
    } else {
      loaded = std::move(*live);
      if (!flags.files.empty()) ApplyFiles(loaded, api::LoadManifests(flags.files, options, ctx.in));
    }
  } else if (flags.files.empty()) {
    loaded.diagnostics.push_back({api::Severity::kError,
                                  {},
                                  "",
                                  "",
                                  "no input: give -f FILE (or a directory, or - for stdin), or --live"});
  } else {
    loaded = api::LoadManifests(flags.files, options, ctx.in);
  }
  for (const auto& d : loaded.diagnostics) ctx.err << d.ToString() << "\n";
  return loaded;
}

// As LoadAndReport, for commands that need valid input: nullopt when the input
// is rejected (the caller exits 2).
std::optional<api::LoadResult> Load(const InputFlags& flags, Context& ctx) {
  api::LoadResult loaded = LoadAndReport(flags, ctx);
  if (!loaded.ok()) {
    ctx.err << "error: input rejected: " << api::CountErrors(loaded.diagnostics)
            << " error(s); nothing was used\n";
    return std::nullopt;
  }
  if (NoObjects(flags, loaded)) {
    ReportNoObjects(flags, ctx);
    return std::nullopt;
  }
  return loaded;
}

// `-n NAMESPACE` limits what is shown: a namespace the input does not have is a
// mistake (a typo shows nothing), not an empty answer.
bool NamespaceKnown(const InputFlags& flags, const policy::Engine& engine, Context& ctx) {
  if (flags.namespace_.empty() || flags.all_namespaces) return true;
  std::string known;
  for (const auto& [name, labels] : engine.Namespaces()) {
    if (name == flags.namespace_) return true;
    known += (known.empty() ? "" : ", ") + name;
  }
  ctx.err << "error: namespace \"" << flags.namespace_ << "\" is not in the "
          << (flags.live ? "cluster" : "input") << " (" << (known.empty() ? "it has none" : "it has " + known)
          << ")\n";
  return false;
}

policy::Engine BuildEngine(const api::LoadResult& loaded) {
  policy::Engine engine;
  // Namespaces first so that their labels are known when pods and policies arrive
  // (not needed for correctness, the engine is incremental, but it is cheaper).
  for (const auto& object : loaded.objects) {
    if (std::holds_alternative<api::Namespace>(object)) engine.Apply(object);
  }
  for (const auto& object : loaded.objects) {
    if (!std::holds_alternative<api::Namespace>(object)) engine.Apply(object);
  }
  return engine;
}

int Fail(Context& ctx, const Error& error) {
  ctx.err << "error: " << error.message() << "\n";
  return kExitError;
}

bool Visible(const InputFlags& flags, const std::string& ns) {
  return flags.all_namespaces || flags.namespace_.empty() || ns == flags.namespace_;
}

// ---- commands -----------------------------------------------------------------

int Validate(const InputFlags& flags, Context& ctx) {
  const api::LoadResult loaded = LoadAndReport(flags, ctx);
  if (!loaded.ok()) {
    ctx.err << "error: " << api::CountErrors(loaded.diagnostics)
            << " error(s); the input is invalid and would be rejected as a whole\n";
    return kExitNegative;
  }
  if (NoObjects(flags, loaded)) {
    ReportNoObjects(flags, ctx);
    return kExitError;
  }
  if (flags.output == "yaml") {
    ctx.out << api::Encode(loaded.objects);
    return kExitOk;
  }
  std::map<std::string, int> kinds;
  for (const auto& object : loaded.objects) ++kinds[std::string(api::KindOf(object))];
  ctx.out << loaded.objects.size() << (loaded.objects.size() == 1 ? " object" : " objects") << " valid";
  std::string sep = " (";
  for (const auto& [kind, count] : kinds) {
    ctx.out << sep << count << " " << kind;
    sep = ", ";
  }
  ctx.out << (kinds.empty() ? "" : ")") << " in " << loaded.files << (loaded.files == 1 ? " file" : " files")
          << "\n";
  if (!loaded.ignored.empty()) {
    ctx.out << "ignored (no bearing on network policy):";
    for (const auto& [kind, count] : loaded.ignored) ctx.out << " " << count << " " << kind;
    ctx.out << "\n";
  }
  return kExitOk;
}

struct CheckFlags {
  std::string from;
  std::string to;
  std::string port;
};

std::string VerdictJson(const policy::Engine& engine, const policy::Flow& flow, const policy::Verdict& v) {
  const auto direction = [&](const policy::DirectionVerdict& d, policy::Direction dir) {
    std::string s = "{\"allowed\":" + std::string(d.allowed() ? "true" : "false") + ",\"reason\":\"" +
                    std::string(policy::ReasonName(d.reason)) + "\",\"isolatedBy\":[";
    for (size_t i = 0; i < d.isolating.size(); ++i) {
      s += (i ? ",\"" : "\"") + engine.PolicyName(d.isolating[i]) + "\"";
    }
    s += "]";
    if (d.allowed_by) {
      s += ",\"rule\":{\"policy\":\"" + engine.PolicyName(d.allowed_by->policy) + "\",\"direction\":\"" +
           (dir == policy::Direction::kIngress ? "ingress" : "egress") +
           "\",\"index\":" + std::to_string(d.allowed_by->rule) +
           ",\"peer\":" + std::to_string(d.allowed_by->peer) +
           ",\"port\":" + std::to_string(d.allowed_by->port) + "}";
    }
    return s + "}";
  };
  const auto endpoint = [&](const policy::Endpoint& e) {
    return "\"" + policy::DescribeEndpoint(engine, e) + "\"";
  };
  return "{\"from\":" + endpoint(flow.src) + ",\"to\":" + endpoint(flow.dst) +
         ",\"port\":" + std::to_string(flow.port) + ",\"protocol\":\"" +
         std::string(api::ProtocolName(flow.protocol)) + "\",\"allowed\":" + (v.allowed ? "true" : "false") +
         ",\"egress\":" + direction(v.egress, policy::Direction::kEgress) +
         ",\"ingress\":" + direction(v.ingress, policy::Direction::kIngress) + "}\n";
}

int Check(const InputFlags& flags, const CheckFlags& check, Context& ctx) {
  const auto loaded = Load(flags, ctx);
  if (!loaded) return kExitError;
  const policy::Engine engine = BuildEngine(*loaded);
  const std::string ns = flags.namespace_.empty() ? "default" : flags.namespace_;
  Result<policy::Endpoint> src = policy::ParseEndpoint(engine, check.from, ns);
  if (!src) return Fail(ctx, src.error());
  Result<policy::Endpoint> dst = policy::ParseEndpoint(engine, check.to, ns);
  if (!dst) return Fail(ctx, dst.error());
  Result<policy::PortText> port = policy::ParsePortText(check.port);
  if (!port) return Fail(ctx, port.error());
  Result<uint16_t> number = policy::ResolvePort(engine, *port, *dst);
  if (!number) return Fail(ctx, number.error());
  // Dual-stack pods: one verdict per family (docs/SEMANTICS.md §19).
  const std::vector<policy::FamilyFlow> flows =
      policy::FamilyFlows(engine, *src, *dst, port->protocol, *number);
  std::vector<policy::Verdict> verdicts;
  bool allowed = true;
  for (const policy::FamilyFlow& f : flows) {
    verdicts.push_back(engine.Evaluate(f.flow));
    allowed = allowed && verdicts.back().allowed;
  }
  if (flows.size() == 1) {
    ctx.out << (flags.output == "json" ? VerdictJson(engine, flows[0].flow, verdicts[0])
                                       : policy::FormatVerdict(engine, flows[0].flow, verdicts[0]));
    return allowed ? kExitOk : kExitNegative;
  }
  if (flags.output == "json") {
    std::string families;
    for (size_t i = 0; i < flows.size(); ++i) {
      std::string one = VerdictJson(engine, flows[i].flow, verdicts[i]);
      one.pop_back();  // the newline
      families += (i ? "," : "") + ("{\"family\":\"" + std::string(policy::FamilyName(*flows[i].family)) +
                                    "\"," + one.substr(1));
    }
    ctx.out << "{\"from\":\"" << engine.pod(src->pod).FullName() << "\",\"to\":\""
            << engine.pod(dst->pod).FullName() << "\",\"port\":" << *number << ",\"protocol\":\""
            << api::ProtocolName(port->protocol) << "\",\"allowed\":" << (allowed ? "true" : "false")
            << ",\"families\":[" << families << "]}\n";
    return allowed ? kExitOk : kExitNegative;
  }
  // "a -> b on 80/TCP: ALLOWED over IPv4, DENIED over IPv6", then each family's verdict.
  std::string summary;
  if (verdicts[0].allowed == verdicts[1].allowed) {
    summary = std::string(allowed ? "ALLOWED" : "DENIED") + " over IPv4 and IPv6";
  } else {
    for (size_t i = 0; i < flows.size(); ++i) {
      summary += std::string(i ? ", " : "") + (verdicts[i].allowed ? "ALLOWED" : "DENIED") + " over " +
                 std::string(policy::FamilyName(*flows[i].family));
    }
  }
  ctx.out << engine.pod(src->pod).FullName() << " -> " << engine.pod(dst->pod).FullName() << " on " << *number
          << "/" << api::ProtocolName(port->protocol) << ": " << summary
          << " (dual-stack: judged per family)\n";
  for (size_t i = 0; i < flows.size(); ++i) {
    ctx.out << policy::FamilyName(*flows[i].family) << ": "
            << policy::FormatVerdict(engine, flows[i].flow, verdicts[i]);
  }
  return allowed ? kExitOk : kExitNegative;
}

int MatrixCommand(const InputFlags& flags, const std::vector<std::string>& port_flags, Context& ctx) {
  MatrixFormat format = MatrixFormat::kTable;
  if (flags.output == "json") {
    format = MatrixFormat::kJson;
  } else if (flags.output == "yaml") {
    format = MatrixFormat::kYaml;
  } else if (flags.output == "csv") {
    format = MatrixFormat::kCsv;
  } else if (flags.output == "dot") {
    format = MatrixFormat::kDot;
  }
  const auto loaded = Load(flags, ctx);
  if (!loaded) return kExitError;
  const policy::Engine engine = BuildEngine(*loaded);
  if (!NamespaceKnown(flags, engine, ctx)) return kExitError;
  std::vector<policy::PortProto> ports;
  for (const std::string& text : port_flags) {
    const Result<policy::PortText> spec = policy::ParsePortText(text);
    if (!spec || !spec->number) {
      ctx.err << "error: " << (spec ? "--port wants a number, not a name: " + text : spec.error().message())
              << "\n";
      return kExitError;
    }
    ports.push_back({spec->protocol, *spec->number});
  }
  if (port_flags.empty()) ports = policy::DeclaredPorts(engine);
  const policy::Matrix matrix = policy::ComputeMatrix(engine, ports);
  std::vector<size_t> visible;
  for (size_t i = 0; i < matrix.pods().size(); ++i) {
    if (Visible(flags, engine.pod(matrix.pods()[i]).namespace_)) visible.push_back(i);
  }
  RenderMatrix(engine, matrix, format, visible, ctx.out);
  return kExitOk;
}

// `netpol lab probe`: the measured matrix beside the expected one, every
// difference marked; exit 1 when they differ.
struct FlowsFlags {
  std::string agent = "http://127.0.0.1:9963";
  std::string namespace_;
  std::string pod;
  std::string verdict;
  bool follow = false;
  std::string output = "text";
};

// A field of an agent's JSON as text ("" when absent or not text): the line is
// the agent's, so nothing in it may make the reader throw.
std::string TextField(const kube::Json& object, const char* key, std::string fallback = "") {
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// One flow log line for people: "12:00:01 node-1 ingress DENIED shop/web 198.18.3.1 -> shop/db
// 198.18.3.2 TCP/3306 (isolated by shop/db-deny)".
std::string FlowText(const kube::Json& flow) {
  const auto end = [](const kube::Json& e) {
    std::string out = e.is_object() && e.contains("pod")
                          ? TextField(e, "namespace") + "/" + TextField(e, "pod") + " "
                          : std::string();
    return out + TextField(e, "ip", "?");
  };
  const auto child = [&](const char* key) {
    const auto it = flow.find(key);
    return it != flow.end() ? *it : kube::Json::object();
  };
  std::string policies;
  if (const kube::Json listed = child("policies"); listed.is_array()) {
    for (const kube::Json& p : listed) {
      if (p.is_string()) policies += (policies.empty() ? "" : ", ") + p.get<std::string>();
    }
  }
  std::string line = TextField(flow, "time") + " " + TextField(flow, "node") + " " +
                     TextField(flow, "direction") + " " +
                     (TextField(flow, "verdict") == "denied" ? "DENIED" : "allowed") + " " +
                     end(child("src")) + " -> " + end(child("dst")) + " " + TextField(flow, "protocol");
  if (const kube::Json port = child("port"); port.is_number_integer()) line += "/" + port.dump();
  if (!policies.empty()) line += " (isolated by " + policies + ")";
  if (flow.contains("policy"))
    line += " (by " + TextField(flow, "policy") + " " + TextField(flow, "rule") + ")";
  return line;
}

int FlowsCommand(const FlowsFlags& f, Context& ctx) {
  httplib::Client client(f.agent);
  if (!client.is_valid()) return Fail(ctx, InvalidArgument("--agent wants http://host:port, not " + f.agent));
  client.set_read_timeout(f.follow ? std::chrono::hours(24) : std::chrono::seconds(10));
  httplib::Params params;
  if (!f.namespace_.empty()) params.emplace("namespace", f.namespace_);
  if (!f.pod.empty()) params.emplace("pod", f.pod);
  if (!f.verdict.empty()) params.emplace("verdict", f.verdict);
  if (f.follow) params.emplace("follow", "true");
  std::string pending;
  const auto print = [&](const char* data, size_t size) {
    pending.append(data, size);
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (f.output == "json") {
        ctx.out << line << "\n";
      } else {
        const kube::Json flow = kube::Json::parse(line, nullptr, false);
        ctx.out << (flow.is_object() ? FlowText(flow) : line) << "\n";
      }
    }
    ctx.out.flush();
    return true;
  };
  const httplib::Result res = client.Get("/flows", params, httplib::Headers{},
                                         [&](const char* data, size_t size) { return print(data, size); });
  if (!res) {
    return Fail(
        ctx, Unavailable("cannot read flow logs from the agent at " + f.agent + ": " +
                         httplib::to_string(res.error()) + " (is netpold running with --metrics-address?)"));
  }
  if (res->status != 200)
    return Fail(ctx, Unavailable("the agent answered HTTP " + std::to_string(res->status)));
  return kExitOk;
}

int LabProbeCommand(const lab::LabOptions& options, const std::vector<std::string>& port_flags,
                    const std::string& output, Context& ctx) {
  std::vector<policy::PortProto> ports;
  for (const std::string& text : port_flags) {
    const Result<policy::PortText> spec = policy::ParsePortText(text);
    if (!spec || !spec->number) {
      ctx.err << "error: --port wants PORT/PROTO with a number: " << text << "\n";
      return kExitError;
    }
    if (spec->protocol == api::Protocol::kSCTP) {
      ctx.err << "error: the lab cannot probe SCTP (this kernel has no SCTP sockets)\n";
      return kExitError;
    }
    ports.push_back({spec->protocol, *spec->number});
  }
  Result<lab::LabProbe> probe = lab::ProbeLab(options, ports);
  if (!probe) {
    ctx.err << "error: " << probe.error().message() << "\n";
    return kExitError;
  }
  const policy::Matrix& expected = probe->expected;
  const policy::Matrix& measured = probe->measured;
  std::vector<size_t> all;
  for (size_t i = 0; i < measured.pods().size(); ++i) all.push_back(i);
  // Measured otherwise than expected over either address family (pods
  // without an address are in neither matrix: ProbeLab leaves them out).
  const auto differs = [&](size_t p, size_t i, size_t j) {
    return expected.AllowedOver(p, i, j, IpFamily::kV4) != measured.AllowedOver(p, i, j, IpFamily::kV4) ||
           expected.AllowedOver(p, i, j, IpFamily::kV6) != measured.AllowedOver(p, i, j, IpFamily::kV6);
  };
  size_t checks = 0;
  size_t differences = 0;
  for (size_t p = 0; p < measured.ports().size(); ++p) {
    for (size_t i : all) {
      for (size_t j : all) {
        if (i == j) continue;
        ++checks;
        if (differs(p, i, j)) ++differences;
      }
    }
  }
  if (output == "json") {
    RenderMatrix(probe->engine, measured, MatrixFormat::kJson, all, ctx.out);
    return differences == 0 ? kExitOk : kExitNegative;
  }
  const auto name = [&](size_t i) { return probe->engine.pod(measured.pods()[i]).FullName(); };
  size_t width = 10;
  for (size_t i : all) width = std::max(width, name(i).size() + 2);
  for (size_t p = 0; p < measured.ports().size(); ++p) {
    ctx.out << measured.ports()[p].ToString() << "  ("
            << CellLegend(measured.per_family() || expected.per_family(), true) << ")\n";
    ctx.out << std::string(width, ' ');
    for (size_t j : all) ctx.out << name(j) << "  ";
    ctx.out << "\n";
    for (size_t i : all) {
      std::string row = name(i);
      row.resize(width, ' ');
      for (size_t j : all) {
        std::string cell(1, i == j ? kCellSelf : MatrixCell(measured, p, i, j));
        if (i != j && differs(p, i, j)) cell += kCellDiffers;
        cell.resize(name(j).size() + 2, ' ');
        row += cell;
      }
      ctx.out << row << "\n";
    }
    ctx.out << "\n";
  }
  for (const policy::PortProto& port : probe->not_probed) {
    ctx.out << "not probed: " << port.ToString() << " (this kernel has no SCTP sockets)\n";
  }
  for (const std::string& pod : probe->without_address) {
    ctx.out << "not probed: " << pod << " (no address: not started, or finished)\n";
  }
  ctx.out << checks << " connections probed, " << differences << " differ from the engine's expectation\n";
  return differences == 0 ? kExitOk : kExitNegative;
}

int Explain(const InputFlags& flags, Context& ctx) {
  const auto loaded = Load(flags, ctx);
  if (!loaded) return kExitError;
  const policy::Engine engine = BuildEngine(*loaded);
  if (!NamespaceKnown(flags, engine, ctx)) return kExitError;
  bool first = true;
  // Cluster-wide policies first, in evaluation order (Admin tier, then Baseline).
  for (const policy::ClusterPolicyId id : engine.ClusterPolicies()) {
    ctx.out << (first ? "" : "\n") << policy::ExplainClusterPolicy(engine, id);
    first = false;
  }
  for (const policy::PolicyId id : engine.Policies()) {
    if (!Visible(flags, engine.policy(id).metadata.namespace_)) continue;
    ctx.out << (first ? "" : "\n") << policy::ExplainPolicy(engine, id);
    first = false;
  }
  if (first) ctx.out << "No NetworkPolicies: every pod accepts and sends all traffic.\n";
  return kExitOk;
}

// One finding as a JSON object, keys in a fixed order (-o json, and each
// value's quoting for -o yaml: a JSON string is a YAML double-quoted scalar).
nlohmann::ordered_json FindingJson(const policy::Finding& f) {
  nlohmann::ordered_json j;
  j["check"] = f.check;
  j["kind"] = std::string(f.kind());
  j["policy"] = f.policy;
  if (f.cluster) {
    j["tier"] = std::string(api::TierName(f.cluster->tier));
    j["priority"] = f.cluster->priority;
  }
  if (!f.field.empty()) j["field"] = f.field;
  if (!f.rule.empty()) j["rule"] = f.rule;
  if (const std::string at = f.where.ToString(); !at.empty()) j["location"] = at;
  j["message"] = f.message;
  return j;
}

// -o table: aligned columns, the message last and unbounded.
void LintTable(const std::vector<policy::Finding>& findings, std::ostream& out) {
  std::vector<std::vector<std::string>> rows = {
      {"CHECK", "KIND", "POLICY", "PRIORITY", "FIELD", "RULE", "MESSAGE"}};
  for (const policy::Finding& f : findings) {
    rows.push_back({f.check, std::string(f.kind()), f.policy,
                    f.cluster ? std::to_string(f.cluster->priority) : "-", f.field.empty() ? "-" : f.field,
                    f.rule.empty() ? "-" : f.rule, f.message});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c + 1 < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c + 1 < row.size(); ++c) {
      std::string cell = row[c];
      cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    out << line << row.back() << "\n";
  }
}

int LintCommand(const InputFlags& flags, Context& ctx) {
  const auto loaded = Load(flags, ctx);
  if (!loaded) return kExitError;
  const policy::Engine engine = BuildEngine(*loaded);
  if (!NamespaceKnown(flags, engine, ctx)) return kExitError;
  std::vector<policy::Finding> shown;
  for (policy::Finding& f : policy::Lint(engine)) {
    // ClusterNetworkPolicies are cluster-scoped: -n does not hide them.
    if (!f.cluster && !Visible(flags, f.policy.substr(0, f.policy.find('/')))) continue;
    shown.push_back(std::move(f));
  }
  if (flags.output == "json" || flags.output == "yaml") {
    const bool json = flags.output == "json";
    ctx.out << (json ? "{\"findings\":[" : "findings:");
    for (size_t i = 0; i < shown.size(); ++i) {
      const nlohmann::ordered_json j = FindingJson(shown[i]);
      if (json) {
        ctx.out << (i ? ",\n" : "\n") << j.dump();
        continue;
      }
      bool first = true;
      for (const auto& [key, value] : j.items()) {
        ctx.out << (first ? "\n- " : "\n  ") << key << ": " << value.dump();
        first = false;
      }
    }
    ctx.out << (json ? (shown.empty() ? "]}\n" : "\n]}\n") : (shown.empty() ? " []\n" : "\n"));
    return shown.empty() ? kExitOk : kExitNegative;
  }
  if (shown.empty()) {
    const size_t policies = engine.stats().policies + engine.stats().cluster_policies;
    ctx.out << "No problems found in " << policies << (policies == 1 ? " policy.\n" : " policies.\n");
    return kExitOk;
  }
  if (flags.output == "table") {
    LintTable(shown, ctx.out);
  } else {
    for (const policy::Finding& f : shown) ctx.out << f.ToString() << "\n";
  }
  ctx.out << shown.size() << (shown.size() == 1 ? " finding\n" : " findings\n");
  return kExitNegative;
}

struct EnforceFlags {
  std::string netns;
  bool dry_run = false;
  bool show = false;
  bool remove = false;
  uint16_t log_group = 100;
};

int Enforce(const InputFlags& flags, const EnforceFlags& enforce, Context& ctx) {
  const auto backend = dataplane::nft::NftBackend::Create({enforce.netns, {enforce.log_group}});
  if (!backend) return Fail(ctx, backend.error());
  if (enforce.show || enforce.remove) {
    if (!flags.files.empty()) {
      ctx.err << "error: --show and --remove take no -f\n";
      return kExitError;
    }
    if (enforce.remove) {
      if (const Status s = (*backend)->Remove(); !s) return Fail(ctx, s.error());
      ctx.out << "removed table inet netpol" << (enforce.netns.empty() ? "" : " from " + enforce.netns)
              << "\n";
      return kExitOk;
    }
    const Result<std::string> text = (*backend)->Show();
    if (!text) return Fail(ctx, text.error());
    ctx.out << *text;
    return kExitOk;
  }
  if (flags.files.empty()) {
    ctx.err << "error: -f is required (or --show / --remove)\n";
    return kExitError;
  }
  const auto loaded = Load(flags, ctx);
  if (!loaded) return kExitError;
  const policy::Engine engine = BuildEngine(*loaded);
  // Local pods: those whose address has a host route to an interface here.
  const auto routes = dataplane::HostRoutes(enforce.netns);
  if (!routes) return Fail(ctx, routes.error());
  const policy::NodeProgram program =
      policy::CompileNode(engine, policy::LocalPodsByAddress(engine, *routes));
  // What the dataplane cannot carry is said, never dropped in silence: an
  // Accept for domain names is left out (fails closed); a Deny or Pass for
  // them would fail open, so nothing is programmed.
  bool fails_open = false;
  for (const policy::CompileNote& note : program.notes) {
    ctx.err << (note.fails_open ? "error: " : "warning: ") << note.text << "\n";
    fails_open = fails_open || note.fails_open;
  }
  if (fails_open) {
    ctx.err << "error: refusing to program rules the dataplane would enforce more loosely than written\n";
    return kExitError;
  }
  if (enforce.dry_run) {
    const Result<std::string> plan = (*backend)->Plan(program);
    if (!plan) return Fail(ctx, plan.error());
    ctx.out << (plan->empty() ? "# nothing to change\n" : *plan);
    return kExitOk;
  }
  const Result<dataplane::ApplyStats> stats = (*backend)->Apply(program);
  if (!stats) return Fail(ctx, stats.error());
  size_t in = 0;
  size_t eg = 0;
  size_t tiered = 0;
  for (const auto& [name, pod] : program.pods) {
    in += pod.ingress.isolated ? 1 : 0;
    eg += pod.egress.isolated ? 1 : 0;
    tiered += (pod.ingress.has_tiers() || pod.egress.has_tiers()) ? 1U : 0U;
  }
  ctx.out << program.pods.size() << " local pods (" << in << " isolated for ingress, " << eg << " for egress";
  if (tiered > 0) ctx.out << ", " << tiered << " with ClusterNetworkPolicy decisions";
  ctx.out << "); ";
  if (stats->commands.empty()) {
    ctx.out << "already in force, nothing changed\n";
  } else {
    ctx.out << (stats->created ? "table built: " : "updated: ") << "+" << stats->added << " -"
            << stats->removed << " set elements in one transaction\n";
  }
  return kExitOk;
}

std::string ProgramName(const char* argv0) {
  const std::string base = std::filesystem::path(argv0 ? argv0 : "netpol").filename().string();
  return base == "kubectl-netpol" ? "kubectl netpol" : "netpol";
}

}  // namespace

int Run(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err) {
  Context ctx{in, out, err};
  const std::string prog = ProgramName(argc > 0 ? argv[0] : nullptr);
  CLI::App app{
      "netpol: Kubernetes NetworkPolicy, enforced and explained.\n\n"
      "Reads manifests (YAML or JSON, as kubectl does) and answers: is this valid, can A\n"
      "reach B and why, what can reach what, what does each policy do, what looks wrong.",
      prog};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(kVersion));
  app.footer(
      "Exit codes: 0 success; 1 denied, invalid or findings; 2 usage or input error.\n"
      "Semantics: docs/SEMANTICS.md. Run '" +
      prog + " COMMAND --help' for examples.");

  InputFlags flags;
  CheckFlags check;
  std::vector<std::string> ports;

  CLI::App* validate = app.add_subcommand("validate", "Check manifests as the API server would");
  AddInputFlags(*validate, flags, /*live=*/false);
  validate->add_option("-o,--output", flags.output, "Print the decoded objects: yaml")
      ->check(CLI::IsMember({"yaml"}));
  validate->footer("Examples:\n  " + prog +
                   " validate -f policy.yaml\n  kubectl get pods,netpol,ns -A -o yaml | " + prog +
                   " validate -f -\n\nEvery error names file:line:column, the object and the field path.\n"
                   "Exit 1 when any object is invalid (the input would be rejected as a whole).");

  CLI::App* check_cmd = app.add_subcommand("check", "Is one connection allowed, and why");
  AddInputFlags(*check_cmd, flags);
  check_cmd->add_option("--from", check.from, "Source: NAMESPACE/POD, POD (in -n), an IP, or node:NAME")
      ->required();
  check_cmd->add_option("--to", check.to, "Destination: NAMESPACE/POD, POD, an IP, or node:NAME")->required();
  check_cmd
      ->add_option("--port", check.port, "PORT[/PROTOCOL] or a named port of the destination; TCP by default")
      ->required();
  check_cmd->add_option("-o,--output", flags.output, "Output format: text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
  check_cmd->footer("Examples:\n  " + prog +
                    " check -f examples/wordpress --from default/np-test-wordpress-0 "
                    "--to default/np-test-mariadb-0 --port 3306\n  " +
                    prog +
                    " check -f cluster.yaml --from 198.51.100.7 --to shop/web-0 --port http\n\n"
                    "Exit 0 when allowed, 1 when denied, 2 on error.");

  CLI::App* matrix = app.add_subcommand("matrix", "Who can reach whom, on which ports");
  AddInputFlags(*matrix, flags);
  matrix->add_option("--port", ports, "PORT[/PROTOCOL]; repeatable (default: the ports pods declare)");
  matrix->add_option("-o,--output", flags.output, "Output format: table (default), json, yaml, csv, dot")
      ->check(CLI::IsMember({"table", "json", "yaml", "csv", "dot"}));
  matrix->footer("Examples:\n  " + prog + " matrix -f examples/wordpress\n  " + prog +
                 " matrix -f cluster/ --port 80 --port 53/UDP -o json\n  " + prog +
                 " matrix -f cluster/ -o dot | dot -Tsvg > matrix.svg\n\n"
                 "Pods that behave alike are grouped in the table. Workload pods are named\n"
                 "<workload>-0, -1, ... A pod always reaches itself (shown as \"-\").");

  CLI::App* explain = app.add_subcommand("explain", "Each policy in plain English");
  AddInputFlags(*explain, flags);
  explain->footer("Example:\n  " + prog + " explain -f examples/wordpress");

  CLI::App* lint = app.add_subcommand("lint", "Warn about policies that probably do not do what was meant");
  AddInputFlags(*lint, flags);
  lint->add_option("-o,--output", flags.output,
                   "Output format: text (default, one line per finding), table, json, yaml")
      ->check(CLI::IsMember({"text", "table", "json", "yaml"}));
  lint->footer("Examples:\n  " + prog + " lint -f cluster/\n  " + prog +
               " lint --live -o json\n\n"
               "Checks: selects-nothing, peer-matches-nothing, namespace-unmatched,\n"
               "named-port-undeclared, egress-blocks-dns, rule-shadowed, ipblock-covers-pods;\n"
               "for ClusterNetworkPolicies: cluster-rule-shadowed, cluster-priority-tie,\n"
               "cluster-pass-to-default, baseline-unreachable, domain-names-unenforced,\n"
               "domain-wildcard-apex (docs/SEMANTICS.md §22).\n"
               "Exit 1 when there are findings.");

  EnforceFlags enforce_flags;
  CLI::App* enforce =
      app.add_subcommand("enforce", "Program the node's nftables to enforce the policies (root)");
  enforce
      ->add_option("-f,--filename", flags.files,
                   "Manifests of the cluster state: namespaces, pods with their IPs, policies; repeatable")
      ->type_name("PATH");
  enforce->add_option("-n,--namespace", flags.namespace_, "Namespace for objects that name none");
  enforce->add_flag("--strict", flags.strict, "Treat unknown fields as errors instead of warnings");
  enforce->add_option("--netns", enforce_flags.netns,
                      "Node network namespace (ip netns name; default: current)");
  enforce->add_flag("--dry-run", enforce_flags.dry_run,
                    "Print the nftables transaction instead of applying it");
  enforce->add_flag("--show", enforce_flags.show,
                    "Print what is programmed (nft syntax, commented by origin)");
  enforce->add_flag("--remove", enforce_flags.remove, "Delete netpol's table");
  enforce->add_option("--log-group", enforce_flags.log_group, "NFLOG group for denied new connections")
      ->check(CLI::Range(0, 65535));
  enforce->footer("Examples:\n  " + prog + " enforce -f cluster/ --netns node-1\n  " + prog +
                  " enforce -f cluster/ --netns node-1 --dry-run\n  " + prog +
                  " enforce --show --netns node-1\n\n"
                  "Pods whose IP has a host route to an interface of the namespace are local; only\n"
                  "they are programmed. Running it again applies only the difference, atomically.");

  FlowsFlags flows_flags;
  CLI::App* flows = app.add_subcommand(
      "flows", "Connections the node agent logged (denied; allowed if asked), with the policy");
  flows->add_option("--agent", flows_flags.agent, "The agent's --metrics-address, as a URL")
      ->capture_default_str();
  flows->add_option("-n,--namespace", flows_flags.namespace_, "Only flows from or to this namespace");
  flows->add_option("--pod", flows_flags.pod, "Only flows from or to this pod (NAME or NAMESPACE/NAME)");
  flows
      ->add_option("--verdict", flows_flags.verdict,
                   "Only this verdict (denied, or allowed when netpold logs them)")
      ->check(CLI::IsMember({"denied", "allowed"}));
  flows->add_flag("-f,--follow", flows_flags.follow, "Keep printing new flows as they come");
  flows->add_option("-o,--output", flows_flags.output, "text or json (the agent's JSON lines)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  flows->footer("Examples:\n  " + prog + " flows -n shop --verdict denied\n  " + prog +
                " flows --agent http://198.18.0.5:9963 --pod shop/db -f\n\n"
                "Each line names both ends (pod and address), the protocol and port, the direction\n"
                "that denied it and the policies isolating the pod there. The agent keeps the last\n"
                "2,000 and writes at most 200 a second (netpol_flow_log_suppressed_total counts the rest).");

  lab::LabOptions lab_options;
  CLI::App* lab_cmd = app.add_subcommand("lab", "A Kubernetes-compatible cluster on this machine (root)");
  lab_cmd->require_subcommand(1);
  const auto lab_flags = [&](CLI::App* cmd) {
    cmd->add_option("--dir", lab_options.dir, "Lab directory (state, logs, kubeconfig)")
        ->capture_default_str();
    cmd->add_option("--name", lab_options.name, "Prefix of the lab's network namespaces")
        ->capture_default_str();
  };
  CLI::App* lab_up = lab_cmd->add_subcommand("up", "Start the control plane and the nodes");
  lab_up->add_option("--nodes", lab_options.nodes, "Number of nodes")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  lab_up->add_option("--port", lab_options.port, "API server port on 127.0.0.1 (default: any free one)");
  CLI::App* lab_down = lab_cmd->add_subcommand("down", "Remove everything the lab created");
  lab_down->add_flag("--keep-state", lab_options.keep_state, "Keep the objects for the next `lab up`");
  CLI::App* lab_kubeconfig = lab_cmd->add_subcommand("kubeconfig", "Print the path of the lab's kubeconfig");
  CLI::App* lab_run =
      lab_cmd->add_subcommand("run", "Run the control plane in the foreground (what `up` starts)");
  lab_run->add_option("--nodes", lab_options.nodes, "Number of nodes")->check(CLI::Range(1, 50));
  lab_run->add_option("--port", lab_options.port, "API server port");
  CLI::App* lab_probe =
      lab_cmd->add_subcommand("probe", "Measure who reaches whom on real packets, beside the engine");
  std::vector<std::string> probe_ports;
  std::string probe_output = "table";
  lab_probe->add_option("--port", probe_ports, "Port to probe, as PORT/PROTO (default: every declared port)");
  lab_probe->add_option("-o,--output", probe_output, "table or json (the schema of `netpol matrix -o json`)")
      ->check(CLI::IsMember({"table", "json"}));
  for (CLI::App* cmd : {lab_up, lab_down, lab_kubeconfig, lab_run, lab_probe}) lab_flags(cmd);
  lab_cmd->footer(
      "Examples:\n  " + prog + " lab up --nodes 2\n  export KUBECONFIG=$(" + prog +
      " lab kubeconfig)\n  kubectl create -f examples/wordpress-lab/\n  kubectl get pods -o wide\n  " + prog +
      " lab down\n\n"
      "Each node is a network namespace with its own netpold and kubelet; pods are network\n"
      "namespaces wired by netpol-cni running host programs. The root namespace's routes\n"
      "and firewall are never touched.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 signals --help and --version as "errors" with exit code 0.
    if (e.get_exit_code() == 0) {
      app.exit(e, out, err);
      return kExitOk;
    }
    // The command the user was typing ("netpol check"): its help is the one to read.
    const CLI::App* where = &app;
    std::string command = prog;
    for (std::vector<CLI::App*> subs = where->get_subcommands(); !subs.empty();
         subs = where->get_subcommands()) {
      where = subs.front();
      command += " " + where->get_name();
    }
    const std::vector<std::string> extra = where->remaining();
    if (where->get_require_subcommand_min() > 0 && !extra.empty() && !extra.front().starts_with("-")) {
      // A word where a command belongs (CLI11 would say "A subcommand is required").
      err << "error: unknown command \"" << extra.front() << "\" for \"" << command << "\"\n";
    } else {
      err << "error: " << e.what() << "\n";
    }
    err << "Run '" << command << " --help' for usage.\n";
    return kExitError;
  }

  if (flows->parsed()) return FlowsCommand(flows_flags, ctx);
  if (validate->parsed()) return Validate(flags, ctx);
  if (check_cmd->parsed()) return Check(flags, check, ctx);
  if (matrix->parsed()) return MatrixCommand(flags, ports, ctx);
  if (explain->parsed()) return Explain(flags, ctx);
  if (lint->parsed()) return LintCommand(flags, ctx);
  if (enforce->parsed()) return Enforce(flags, enforce_flags, ctx);
  if (lab_cmd->parsed()) {
    // The lab starts netpol's other programs from this program's directory.
    std::error_code ec;
    lab_options.bin_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
    if (lab_kubeconfig->parsed()) {
      out << lab::KubeconfigPath(lab_options) << "\n";
      return kExitOk;
    }
    if (lab_probe->parsed()) return LabProbeCommand(lab_options, probe_ports, probe_output, ctx);
    Status done = lab_up->parsed()     ? lab::LabUp(lab_options, out)
                  : lab_down->parsed() ? lab::LabDown(lab_options, out)
                                       : lab::LabRun(lab_options);
    if (!done.ok()) {
      err << "error: " << done.error().message() << "\n";
      return kExitError;
    }
    return kExitOk;
  }
  return kExitError;
}

}  // namespace netpol::cli
