#include "testutil/scenario.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "api/load.h"
#include "policy/engine.h"
#include "policy/explain.h"
#include "policy/flow_text.h"
#include "policy/lint.h"
#include "policy/matrix.h"
#include "testutil/golden.h"
#include "testutil/reference.h"

namespace netpol::testing {
namespace {

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::string current;
  for (const char c : text) {
    if (c == sep) {
      out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  out.push_back(current);
  return out;
}

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string ObjectKey(const api::Object& object) {
  return api::ObjectRef(object);
}

class Runner {
 public:
  explicit Runner(std::string file) : file_(std::move(file)) {}

  std::vector<std::string> Run(const std::vector<ScenarioRecord>& records) {
    for (const ScenarioRecord& r : records) {
      line_ = r.line;
      const std::vector<std::string> words = Words(r.command);
      if (words.empty()) continue;
      const std::string& verb = words[0];
      if (verb == "apply") {
        Apply(r);
      } else if (verb == "reject") {
        Reject(r);
      } else if (verb == "delete") {
        Delete(words);
      } else if (verb == "check") {
        Check(r.command);
        for (const std::string& l : r.lines) Check(l);
      } else if (verb == "matrix") {
        Matrix(words, r);
      } else if (verb == "explain") {
        Explain(r);
      } else if (verb == "lint") {
        Lint(r);
      } else {
        Fail("unknown record \"" + verb + "\"");
      }
    }
    return std::move(failures_);
  }

 private:
  void Fail(const std::string& message) {
    failures_.push_back(file_ + ":" + std::to_string(line_) + ": " + message);
  }

  static std::string Join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }

  void Apply(const ScenarioRecord& r) {
    api::LoadResult loaded = api::LoadText(Join(r.lines), file_, {});
    if (!loaded.ok()) {
      std::string all;
      for (const auto& d : loaded.diagnostics) all += "\n  " + d.ToString();
      Fail("apply: input rejected:" + all);
      return;
    }
    for (const api::Object& object : loaded.objects) {
      objects_[ObjectKey(object)] = object;
      engine_.Apply(object);
    }
    CheckEquivalences();
  }

  void Reject(const ScenarioRecord& r) {
    api::LoadResult loaded = api::LoadText(Join(r.lines), file_, {});
    if (loaded.ok()) {
      Fail("reject: input was accepted");
      return;
    }
    std::string all;
    for (const auto& d : loaded.diagnostics) all += d.ToString() + "\n";
    if (Words(r.command).size() > 1 && Words(r.command)[1] == "exact") {
      // Every diagnostic, in order, and nothing else.
      std::string want;
      for (const std::string& l : r.expected) want += l + "\n";
      if (all != want) Fail("reject exact: the diagnostics differ; want:\n" + want + "got:\n" + all);
      return;
    }
    for (const std::string& want : r.expected) {
      if (all.find(want) == std::string::npos)
        Fail("reject: no diagnostic contains \"" + want + "\"; got:\n" + all);
    }
  }

  void Delete(const std::vector<std::string>& words) {
    if (words.size() != 3) {
      Fail("delete: want \"delete KIND NAMESPACE/NAME\"");
      return;
    }
    const std::string& kind = words[1];
    std::string ns;
    std::string name = words[2];
    if (const size_t slash = name.find('/'); slash != std::string::npos) {
      ns = name.substr(0, slash);
      name = name.substr(slash + 1);
    }
    if (!engine_.Delete(kind, ns, name)) {
      Fail("delete: " + kind + " " + words[2] + " not found");
      return;
    }
    const std::string key = kind + " " + (ns.empty() ? "" : ns + "/") + name;
    objects_.erase(key);
    if (kind == "Namespace") {
      for (auto it = objects_.begin(); it != objects_.end();) {
        it = api::MetaOf(it->second).namespace_ == name ? objects_.erase(it) : std::next(it);
      }
    }
    CheckEquivalences();
  }

  // Parses "FROM -> TO PORT" from words[start..]; returns its connections, one
  // per family for dual-stack pods (docs/SEMANTICS.md §19).
  std::vector<policy::FamilyFlow> ParseFlows(const std::vector<std::string>& w, size_t start) {
    if (w.size() < start + 4 || w[start + 1] != "->") {
      Fail("want \"FROM -> TO PORT[/PROTO]\"");
      return {};
    }
    Result<policy::Endpoint> from = policy::ParseEndpoint(engine_, w[start], "default");
    Result<policy::Endpoint> to = policy::ParseEndpoint(engine_, w[start + 2], "default");
    Result<policy::PortText> port = policy::ParsePortText(w[start + 3]);
    if (!from || !to || !port) {
      Fail(!from ? from.error().message() : !to ? to.error().message() : port.error().message());
      return {};
    }
    Result<uint16_t> number = policy::ResolvePort(engine_, *port, *to);
    if (!number) {
      Fail(number.error().message());
      return {};
    }
    return policy::FamilyFlows(engine_, *from, *to, port->protocol, *number);
  }

  std::string ClusterRule(const std::string& action, const policy::ClusterRuleRef& ref) const {
    return action + ":" + engine_.ClusterPolicyName(ref.policy) + "[" + std::to_string(ref.rule) + "]";
  }

  // "pass:admin/x[1]>" for each Pass on the way, then the decision.
  std::string Why(const policy::DirectionVerdict& d) const {
    std::string chain;
    for (const policy::ClusterRuleRef& pass : d.passed) chain += ClusterRule("pass", pass) + ">";
    return chain + Decision(d);
  }

  std::string Decision(const policy::DirectionVerdict& d) const {
    switch (d.reason) {
      case policy::Reason::kClusterAccept:
        return ClusterRule("accept", *d.cluster_rule);
      case policy::Reason::kClusterDeny:
        return ClusterRule("deny", *d.cluster_rule);
      case policy::Reason::kNotIsolated:
        return "not-isolated";
      case policy::Reason::kNoRuleMatched:
        return "denied";
      case policy::Reason::kSelf:
        return "self";
      case policy::Reason::kOwnNode:
        return "own-node";
      case policy::Reason::kNotPolicyManaged:
        return "unmanaged";
      case policy::Reason::kAllowedByRule:
        return engine_.PolicyName(d.allowed_by->policy) + "[" + std::to_string(d.allowed_by->rule) + "]";
    }
    return "?";
  }

  // A dual-stack pair's verdict and reasons must hold in each family; give an
  // address to check one family.
  void Check(const std::string& line) {
    const std::vector<std::string> w = Words(line);
    const size_t start = w[0] == "check" ? 1 : 0;
    const std::vector<policy::FamilyFlow> flows = ParseFlows(w, start);
    if (flows.empty()) return;
    if (w.size() < start + 5 || (w[start + 4] != "allow" && w[start + 4] != "deny")) {
      Fail("check: want allow or deny after the port: " + line);
      return;
    }
    const bool want = w[start + 4] == "allow";
    for (const policy::FamilyFlow& f : flows) {
      const std::string over = f.family ? " (over " + std::string(policy::FamilyName(*f.family)) + ")" : "";
      const policy::Verdict v = engine_.Evaluate(f.flow);
      if (v.allowed != want || engine_.Allowed(f.flow) != want) {
        Fail("check " + line + over + ": got " + (v.allowed ? "allow" : "deny") + "\n" +
             policy::FormatVerdict(engine_, f.flow, v));
        continue;
      }
      for (size_t i = start + 5; i < w.size(); ++i) {
        const size_t eq = w[i].find('=');
        const std::string side = w[i].substr(0, eq);
        const std::string expected = eq == std::string::npos ? "" : w[i].substr(eq + 1);
        if (side != "egress" && side != "ingress") {
          Fail("check: unknown assertion " + w[i]);
          continue;
        }
        const std::string got = Why(side == "egress" ? v.egress : v.ingress);
        if (got != expected) Fail("check " + line + over + ": " + side + " is " + got + ", want " + expected);
      }
    }
  }

  void Matrix(const std::vector<std::string>& words, const ScenarioRecord& r) {
    std::vector<policy::PortProto> ports;
    for (size_t i = 1; i < words.size(); ++i) {
      Result<policy::PortText> p = policy::ParsePortText(words[i]);
      if (!p || !p->number) {
        Fail("matrix: bad port " + words[i]);
        return;
      }
      ports.push_back({p->protocol, *p->number});
    }
    const policy::Matrix m = policy::ComputeMatrix(engine_, ports);
    std::vector<std::string> got;
    for (size_t i = 0; i < m.pods().size(); ++i) {
      std::string line = engine_.pod(m.pods()[i]).FullName() + " ->";
      bool any = false;
      for (size_t j = 0; j < m.pods().size(); ++j) {
        // "ns/b" when allowed in every family on every port; "ns/b[IPv4]"
        // when allowed on every port over one family of a dual-stack pair only.
        bool all_ports = !ports.empty();
        bool over4 = !ports.empty();
        bool over6 = !ports.empty();
        for (size_t p = 0; p < ports.size(); ++p) {
          all_ports = all_ports && m.Allowed(p, i, j);
          over4 = over4 && m.AllowedOver(p, i, j, IpFamily::kV4);
          over6 = over6 && m.AllowedOver(p, i, j, IpFamily::kV6);
        }
        if (i == j || (!all_ports && !over4 && !over6)) continue;
        line += " " + engine_.pod(m.pods()[j]).FullName() + (all_ports ? "" : over4 ? "[IPv4]" : "[IPv6]");
        any = true;
      }
      if (!any) line += " -";
      got.push_back(line);
    }
    if (got != r.expected) Fail("matrix: got\n" + Join(got) + "want\n" + Join(r.expected));
  }

  void Explain(const ScenarioRecord& r) {
    std::string got;
    for (const policy::FamilyFlow& f : ParseFlows(Words(r.command), 1)) {
      got += policy::FormatVerdict(engine_, f.flow, engine_.Evaluate(f.flow));
    }
    if (got != Join(r.expected)) Fail("explain: got\n" + got + "want\n" + Join(r.expected));
  }

  void Lint(const ScenarioRecord& r) {
    std::vector<std::string> got;
    for (const policy::Finding& f : policy::Lint(engine_)) {
      got.push_back("[" + f.check + "] " + f.policy + (f.field.empty() ? "" : " " + f.field));
    }
    if (got != r.expected) Fail("lint: got\n" + Join(got) + "want\n" + Join(r.expected));
  }

  // Incremental engine == engine rebuilt from scratch == matrix == reference.
  void CheckEquivalences() {
    std::vector<api::Object> all;
    for (const auto& [key, object] : objects_) {
      if (std::holds_alternative<api::Namespace>(object)) all.push_back(object);
    }
    for (const auto& [key, object] : objects_) {
      if (!std::holds_alternative<api::Namespace>(object)) all.push_back(object);
    }
    // Engine vs reference vs matrix vs the compiled form, per node.
    if (const std::string mismatch = CompareEngineWithReference(engine_, all); !mismatch.empty()) {
      Fail("equivalence: " + mismatch);
    }
    policy::Engine fresh;
    for (const auto& object : all) fresh.Apply(object);
    const ReferenceEvaluator reference(all);

    std::set<policy::PortProto> port_set;
    for (const auto& pp : policy::DeclaredPorts(engine_)) port_set.insert(pp);
    for (const uint16_t p : {uint16_t{53}, uint16_t{80}, uint16_t{443}, uint16_t{3306}}) {
      for (const auto proto : {api::Protocol::kTCP, api::Protocol::kUDP, api::Protocol::kSCTP}) {
        port_set.insert({proto, p});
      }
    }
    const std::vector<policy::PortProto> ports(port_set.begin(), port_set.end());
    const policy::Matrix matrix = policy::ComputeMatrix(engine_, ports);
    const std::vector<policy::PodId> pods = engine_.Pods();
    if (pods.size() != fresh.Pods().size() || pods.size() != reference.pods().size()) {
      Fail("equivalence: pod counts differ: incremental " + std::to_string(pods.size()) + ", fresh " +
           std::to_string(fresh.Pods().size()) + ", reference " + std::to_string(reference.pods().size()));
      return;
    }
    std::map<std::string, const RefPod*> ref_pods;
    for (const RefPod& p : reference.pods()) ref_pods[p.namespace_ + "/" + p.name] = &p;
    int reported = 0;
    for (size_t i = 0; i < pods.size(); ++i) {
      for (size_t j = 0; j < pods.size(); ++j) {
        const policy::Pod& a = engine_.pod(pods[i]);
        const policy::Pod& b = engine_.pod(pods[j]);
        const auto fa = fresh.FindPod(a.namespace_, a.name);
        const auto fb = fresh.FindPod(b.namespace_, b.name);
        const RefPod* ra = ref_pods[a.FullName()];
        const RefPod* rb = ref_pods[b.FullName()];
        if (!fa || !fb || ra == nullptr || rb == nullptr) {
          Fail("equivalence: pod missing in rebuild or reference: " + a.FullName() + " or " + b.FullName());
          return;
        }
        for (size_t p = 0; p < ports.size(); ++p) {
          const auto& pp = ports[p];
          // Per family (docs/SEMANTICS.md §19): each of the pair's connections.
          for (const policy::FamilyFlow& f :
               policy::FamilyFlows(engine_, policy::Endpoint::OfPod(pods[i]),
                                   policy::Endpoint::OfPod(pods[j]), pp.protocol, pp.port)) {
            RefPod from = *ra;
            RefPod to = *rb;
            if (f.flow.src.ip) from.ip = f.flow.src.ip;
            if (f.flow.dst.ip) to.ip = f.flow.dst.ip;
            const bool inc = engine_.Allowed(f.flow);
            const bool scratch =
                fresh.Allowed({policy::Endpoint::OfPod(*fa, f.flow.src.ip),
                               policy::Endpoint::OfPod(*fb, f.flow.dst.ip), pp.protocol, pp.port});
            const bool mat = f.family ? matrix.AllowedOver(p, i, j, *f.family) : matrix.Allowed(p, i, j);
            const bool ref = reference.Allowed(from, to, pp.protocol, pp.port);
            if ((inc != scratch || inc != mat || inc != ref) && reported++ < 5) {
              Fail("equivalence: " + a.FullName() + " -> " + b.FullName() + " " + pp.ToString() +
                   (f.family ? " over " + std::string(policy::FamilyName(*f.family)) : "") +
                   ": incremental=" + std::to_string(inc) + " rebuilt=" + std::to_string(scratch) +
                   " matrix=" + std::to_string(mat) + " reference=" + std::to_string(ref));
            }
          }
        }
      }
    }
  }

  std::string file_;
  int line_ = 0;
  policy::Engine engine_;
  std::map<std::string, api::Object> objects_;
  std::vector<std::string> failures_;
};

}  // namespace

std::vector<ScenarioRecord> ParseScenario(std::string_view text) {
  std::vector<ScenarioRecord> records;
  ScenarioRecord current;
  bool in_record = false;
  int number = 0;
  for (const std::string& raw : Split(text, '\n')) {
    ++number;
    const std::string& line = raw;
    const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (blank) {
      if (in_record) records.push_back(std::move(current));
      current = ScenarioRecord{};
      in_record = false;
      continue;
    }
    // Comments: anywhere except in expected output after "----".
    if (line.starts_with("#") && !current.has_separator) continue;
    if (!in_record) {
      current.line = number;
      current.command = line;
      in_record = true;
      continue;
    }
    if (line == "----") {
      current.has_separator = true;
    } else if (current.has_separator) {
      current.expected.push_back(line);
    } else {
      current.lines.push_back(line);
    }
  }
  if (in_record) records.push_back(std::move(current));
  return records;
}

std::vector<std::string> ListScenarioFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(SourceDir() + "/tests/scenarios")) {
    if (entry.path().extension() == ".scenario") files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> RunScenario(std::string_view text, const std::string& file) {
  return Runner(file).Run(ParseScenario(text));
}

}  // namespace netpol::testing
