#include "e2e/packet_scenario.h"

#include <set>
#include <sstream>

#include "api/load.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/routes.h"
#include "e2e/lab.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"
#include "policy/flow_text.h"
#include "testutil/scenario.h"

namespace netpol::testing {
namespace {

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class PacketRunner {
 public:
  PacketRunner(std::string file) : file_(std::move(file)) {}

  PacketRunResult Run(const std::vector<ScenarioRecord>& records) {
    if (!Prepare(records)) return std::move(result_);
    for (const ScenarioRecord& r : records) {
      line_ = r.line;
      const std::vector<std::string> words = Words(r.command);
      if (words.empty()) continue;
      if (words[0] == "apply") {
        const api::LoadResult loaded = api::LoadText(Join(r.lines), file_, {});
        if (!loaded.ok()) continue;  // the engine runner reports it
        for (const auto& o : loaded.objects) engine_.Apply(o);
        Program();
      } else if (words[0] == "delete" && words.size() == 3) {
        const size_t slash = words[2].find('/');
        const std::string ns = slash == std::string::npos ? "" : words[2].substr(0, slash);
        const std::string name = slash == std::string::npos ? words[2] : words[2].substr(slash + 1);
        engine_.Delete(words[1], ns, name);
        Program();
      } else if (words[0] == "check") {
        Check(r.command);
        for (const std::string& l : r.lines) Check(l);
      }
    }
    return std::move(result_);
  }

 private:
  void Fail(const std::string& message) {
    result_.failures.push_back(file_ + ":" + std::to_string(line_) + ": " + message);
  }

  // Every distinct pod address set becomes a lab pod; servers listen on every
  // port the scenario's pods declare or its checks name.
  bool Prepare(const std::vector<ScenarioRecord>& records) {
    std::set<std::pair<std::string, std::string>> pods;
    std::set<std::pair<api::Protocol, uint16_t>> ports = {{api::Protocol::kTCP, 80},
                                                          {api::Protocol::kUDP, 53}};
    for (const ScenarioRecord& r : records) {
      const std::vector<std::string> words = Words(r.command);
      if (!words.empty() && words[0] == "apply") {
        const api::LoadResult loaded = api::LoadText(Join(r.lines), file_, {});
        for (const auto& o : loaded.objects) {
          const auto* pod = std::get_if<api::Pod>(&o);
          if (pod == nullptr) continue;
          for (const auto& c : pod->spec.containers) {
            for (const auto& p : c.ports) {
              if (p.container_port > 0) ports.insert({p.protocol, static_cast<uint16_t>(p.container_port)});
            }
          }
          if (pod->spec.host_network || pod->pod_ips.empty()) continue;
          std::string v4;
          std::string v6;
          for (const std::string& ip : pod->pod_ips) {
            const auto parsed = IpAddress::Parse(ip);
            if (!parsed) continue;
            (parsed->is_v4() ? v4 : v6) = parsed->ToString();
          }
          if (!v4.empty()) pods.insert({v4, v6});  // lab pods need an IPv4 address
        }
      }
      if (!words.empty() && words[0] == "check") {
        std::vector<std::string> lines = {r.command};
        lines.insert(lines.end(), r.lines.begin(), r.lines.end());
        for (const std::string& l : lines) {
          for (const std::string& w : Words(l)) {
            const auto p = policy::ParsePortText(w);
            if (p && p->number && w.find('.') == std::string::npos && w.find(':') == std::string::npos &&
                p->protocol != api::Protocol::kSCTP) {
              ports.insert({p->protocol, *p->number});
            }
          }
        }
      }
    }
    // Addresses checks name that no pod has: they live outside, behind the node.
    std::set<std::string> external;
    const IpPrefix lab_range = *IpPrefix::Parse("198.18.0.0/15");
    for (const ScenarioRecord& r : records) {
      if (Words(r.command).empty() || Words(r.command)[0] != "check") continue;
      std::vector<std::string> lines = {r.command};
      lines.insert(lines.end(), r.lines.begin(), r.lines.end());
      for (const std::string& l : lines) {
        for (const std::string& w : Words(l)) {
          const auto ip = IpAddress::Parse(w);
          if (ip && ip->is_v4() && lab_range.Contains(*ip)) external.insert(ip->ToString());
        }
      }
    }
    for (const auto& [v4, v6] : pods) external.erase(v4);
    std::set<std::string> used;
    std::vector<std::pair<std::string, std::string>> lab_pods;
    for (const auto& [v4, v6] : pods) {
      // Two address sets sharing an address cannot both exist on one node.
      if (used.contains(v4) || (!v6.empty() && used.contains(v6))) continue;
      used.insert(v4);
      if (!v6.empty()) used.insert(v6);
      lab_pods.emplace_back(v4, v6);
    }
    if (const Status s = lab_.Up(lab_pods, {external.begin(), external.end()}); !s) {
      Fail(s.error().message());
      return false;
    }
    std::vector<std::pair<api::Protocol, uint16_t>> listen;
    for (const auto& p : ports) {
      if (p.first != api::Protocol::kSCTP) listen.push_back(p);
    }
    if (const Status s = lab_.Serve(listen); !s) {
      Fail(s.error().message());
      return false;
    }
    auto backend = dataplane::nft::NftBackend::Create({lab_.node(), {}});
    if (!backend) {
      Fail(backend.error().message());
      return false;
    }
    backend_ = std::move(*backend);
    return true;
  }

  void Program() {
    const auto routes = dataplane::HostRoutes(lab_.node());
    if (!routes) return Fail(routes.error().message());
    const auto applied =
        backend_->Apply(policy::CompileNode(engine_, policy::LocalPodsByAddress(engine_, *routes)));
    if (!applied) Fail("enforce: " + applied.error().message());
  }

  void Check(const std::string& line) {
    const std::vector<std::string> w = Words(line);
    const size_t start = w[0] == "check" ? 1 : 0;
    // A line this runner cannot read is a failure, never a silent skip (the
    // engine runner reads the same lines; a disagreement is a bug in one).
    if (w.size() < start + 5 || w[start + 1] != "->") return Fail("check: cannot read \"" + line + "\"");
    const auto from = policy::ParseEndpoint(engine_, w[start], "default");
    const auto to = policy::ParseEndpoint(engine_, w[start + 2], "default");
    const auto port = policy::ParsePortText(w[start + 3]);
    if (!from) return Fail("check: " + from.error().message());
    if (!to) return Fail("check: " + to.error().message());
    if (!port) return Fail("check: " + port.error().message());
    const auto number = policy::ResolvePort(engine_, *port, *to);
    if (!number) {
      // A named port the destination does not have: the engine denies it;
      // there is no port to send packets to.
      ++result_.skipped;
      return;
    }
    const policy::Flow flow = policy::MakeFlow(engine_, *from, *to, port->protocol, *number);
    const bool want = w[start + 4] == "allow";
    const auto lab_address = [&](const policy::Endpoint& e) -> std::string {
      if (!e.ip || e.kind == policy::Endpoint::Kind::kNode) return "";
      if (e.kind == policy::Endpoint::Kind::kPod && engine_.pod(e.pod).host_network) return "";
      return lab_.PodNetns(e.ip->ToString()).empty() ? "" : e.ip->ToString();
    };
    const std::string src = lab_address(flow.src);
    const std::string dst = lab_address(flow.dst);
    const bool same_pod = flow.src.kind == policy::Endpoint::Kind::kPod &&
                          flow.dst.kind == policy::Endpoint::Kind::kPod && flow.src.pod == flow.dst.pod;
    if (src.empty() || dst.empty() || src == dst || same_pod ||
        flow.src.ip->family() != flow.dst.ip->family()) {
      ++result_.skipped;
      return;
    }
    // An allowed connection completes in well under a millisecond here; a denied
    // one never does, so its wait only bounds the test.
    const auto timeout = std::chrono::milliseconds(want ? 3000 : 250);
    const Result<bool> reached = lab_.Reaches(src, dst, flow.protocol, flow.port, timeout);
    ++result_.checked;
    if (!reached) return Fail("probe: " + reached.error().message());
    const bool engine = engine_.Allowed(flow);
    if (*reached != want || *reached != engine) {
      Fail("packets " + std::string(*reached ? "got through" : "were dropped") + " for \"" + line +
           "\" (engine says " + (engine ? "allow" : "deny") + ")");
    }
  }

  std::string file_;
  int line_ = 0;
  PacketLab lab_;
  policy::Engine engine_;
  std::unique_ptr<dataplane::nft::NftBackend> backend_;
  PacketRunResult result_;
};

}  // namespace

PacketRunResult RunScenarioOnPackets(const std::string& text, const std::string& file) {
  return PacketRunner(file).Run(ParseScenario(text));
}

}  // namespace netpol::testing
