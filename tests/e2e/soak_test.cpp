// Soak on real packets (root): a thousand policy updates (policies created, edited,
// deleted, pods relabelled) while probes run between pods whose verdicts change. A
// connection may see either side of an update while it is being applied, but never a
// verdict that neither side gives: nothing passes that both the state before and the
// state after deny, nothing fails that both allow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/load.h"
#include "base/netns.h"
#include "dataplane/nft/nft_backend.h"
#include "dataplane/routes.h"
#include "e2e/lab.h"
#include "policy/compile.h"
#include "policy/compiled.h"
#include "policy/engine.h"

namespace netpol::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDb = "198.18.9.10";
constexpr const char* kWeb = "198.18.9.11";
constexpr const char* kClient = "198.18.9.12";

struct ProbeSpec {
  const char* from;
  const char* to;
  uint16_t port;
};
// Pairs whose verdicts the policies below turn on and off.
constexpr std::array<ProbeSpec, 6> kProbes{{{kWeb, kDb, 3306},
                                            {kClient, kDb, 3306},
                                            {kWeb, kDb, 80},
                                            {kClient, kDb, 80},
                                            {kDb, kWeb, 80},
                                            {kClient, kWeb, 80}}};

// The parts a state is made of: each policy present or not, and the client pod
// labelled as itself or as a web pod (a relabel).
constexpr std::array<const char*, 5> kPolicies{
    R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 3306}]}]
)",
    R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-deny-all}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
)",
    R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-http-from-all}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {}}], ports: [{port: 80}]}]
)",
    R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress-db-only}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: 3306}]}]
)",
    R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
)"};

struct State {
  unsigned policies = 0;  // bit i: kPolicies[i] present
  bool client_as_web = false;

  bool operator==(const State&) const = default;

  std::string Yaml() const {
    std::string out;
    const auto pod = [&out](const char* name, const char* labels, const char* ip) {
      out.append("apiVersion: v1\nkind: Pod\nmetadata: {name: ").append(name);
      out.append(", labels: {").append(labels).append("}}\nspec: {containers: [{name: c}]}\n");
      out.append("status: {podIP: ").append(ip).append("}\n---\n");
    };
    pod("db", "app: db", kDb);
    pod("web", "app: web", kWeb);
    pod("client", client_as_web ? "app: web, role: client" : "app: client, role: client", kClient);
    for (size_t i = 0; i < kPolicies.size(); ++i) {
      if ((policies & (1u << i)) != 0) out.append(kPolicies[i]).append("---\n");
    }
    return out;
  }
};

// One connection attempt. Its SYN leaves inside connect(), so the rules that judged it
// were those in force somewhere in [before, after]; a dropped SYN is not retried
// before the attempt gives up (the kernel's first retransmission comes after 1 s).
struct ProbeRecord {
  size_t probe = 0;
  Clock::time_point before;
  Clock::time_point after;
  bool reached = false;
};

// From the calling thread, which is inside the source pod's namespace.
Result<ProbeRecord> Attempt(size_t probe, std::chrono::milliseconds timeout) {
  const ProbeSpec& spec = kProbes[probe];
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal("socket failed");
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, spec.from, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(spec.port);
  ::inet_pton(AF_INET, spec.to, &dst.sin_addr);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
    ::close(fd);
    return Internal(std::string("bind to ") + spec.from + " failed");
  }
  ProbeRecord r;
  r.probe = probe;
  r.before = Clock::now();
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst);
  r.after = Clock::now();
  if (rc == 0) {
    r.reached = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int error = 0;
      socklen_t size = sizeof error;
      r.reached = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0;
    }
  }
  // Reset instead of TIME_WAIT: thousands of attempts from one address to one port
  // would otherwise run out of source ports.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(fd);
  return r;
}

// The update that put state k in place: applying started at `start`, returned at `end`.
struct Update {
  Clock::time_point start;
  Clock::time_point end;
  std::array<bool, kProbes.size()> allowed{};
};

TEST(PolicySoakTest, UpdatesNeverPassWhatBothSidesDenyNorDropWhatBothAllow) {
  NETPOL_REQUIRE_E2E();
  PacketLab lab;
  ASSERT_TRUE(lab.Up({{kDb, ""}, {kWeb, ""}, {kClient, ""}}).ok());
  ASSERT_TRUE(lab.Serve({{api::Protocol::kTCP, 3306}, {api::Protocol::kTCP, 80}}).ok());
  auto backend = dataplane::nft::NftBackend::Create({lab.node(), {}});
  ASSERT_TRUE(backend.ok()) << backend.error().message();
  const auto routes = dataplane::HostRoutes(lab.node());
  ASSERT_TRUE(routes.ok());

  // Compiles and applies a state; returns the engine's verdict for every probe.
  const auto apply = [&](const State& state, Update& update) -> bool {
    const api::LoadResult loaded = api::LoadText(state.Yaml(), "soak.yaml", {});
    if (!loaded.ok()) {
      ADD_FAILURE() << "state does not load";
      return false;
    }
    policy::Engine engine;
    for (const auto& o : loaded.objects) engine.Apply(o);
    for (size_t i = 0; i < kProbes.size(); ++i) {
      const auto src = engine.FindPodByIp(*IpAddress::Parse(kProbes[i].from));
      const auto dst = engine.FindPodByIp(*IpAddress::Parse(kProbes[i].to));
      if (!src || !dst) {
        ADD_FAILURE() << "probe pods unknown to the engine";
        return false;
      }
      update.allowed[i] = engine.Allowed({policy::Endpoint::OfPod(*src), policy::Endpoint::OfPod(*dst),
                                          api::Protocol::kTCP, kProbes[i].port});
    }
    policy::NodeProgram program = policy::CompileNode(engine, policy::LocalPodsByAddress(engine, *routes));
    update.start = Clock::now();
    const auto applied = (*backend)->Apply(std::move(program));
    update.end = Clock::now();
    if (!applied.ok()) ADD_FAILURE() << applied.error().message();
    return applied.ok();
  };

  std::vector<Update> updates(1);
  ASSERT_TRUE(apply(State{}, updates[0]));

  // Two probing threads per pair, each inside its source pod's namespace, for as long
  // as updates go on (bounded in count as well).
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<ProbeRecord> records;
  std::string probe_error;
  std::vector<std::thread> probers;
  for (size_t t = 0; t < 2 * kProbes.size(); ++t) {
    probers.emplace_back([&, probe = t % kProbes.size()] {
      auto guard = NetnsGuard::Enter(lab.PodNetns(kProbes[probe].from));
      std::vector<ProbeRecord> mine;
      std::string error = guard.ok() ? "" : guard.error().message();
      for (size_t n = 0; error.empty() && !stop.load() && n < 100000; ++n) {
        auto r = Attempt(probe, std::chrono::milliseconds(300));
        if (!r.ok()) {
          error = r.error().message();
        } else {
          mine.push_back(*r);
          // At most ~200 attempts a second per thread: enough samples, little CPU.
          if (r->reached) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      std::lock_guard lock(mu);
      records.insert(records.end(), mine.begin(), mine.end());
      if (!error.empty()) probe_error = error;
    });
  }

  constexpr int kUpdates = 1000;
  std::mt19937 rng(20261206);
  State current;
  int changed_verdicts = 0;
  for (int k = 1; k <= kUpdates; ++k) {
    State next = current;
    // One edit per update: a policy created or deleted, or the client relabelled.
    const auto pick = static_cast<unsigned>(rng() % (kPolicies.size() + 1));
    if (pick == kPolicies.size()) {
      next.client_as_web = !next.client_as_web;
    } else {
      next.policies ^= 1u << pick;
    }
    Update update;
    if (!apply(next, update)) break;
    if (update.allowed != updates.back().allowed) ++changed_verdicts;
    updates.push_back(update);
    current = next;
    // A few milliseconds in force, so that probes also see settled states.
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
  }
  // The last state settles under the probes for a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (std::thread& t : probers) t.join();
  ASSERT_EQ(probe_error, "");
  ASSERT_EQ(updates.size(), static_cast<size_t>(kUpdates + 1));

  // State k may be in force from the start of its update to the end of the next one.
  // A probe may have met every state whose window overlaps [before, after].
  std::sort(records.begin(), records.end(),
            [](const ProbeRecord& a, const ProbeRecord& b) { return a.before < b.before; });
  int passed_both_deny = 0;
  int dropped_both_allow = 0;
  int decisive_allow = 0;
  int decisive_deny = 0;
  int mixed = 0;
  size_t first = 0;
  for (const ProbeRecord& r : records) {
    while (first + 1 < updates.size() && updates[first + 1].end < r.before) ++first;
    bool any_allow = false;
    bool any_deny = false;
    for (size_t k = first; k < updates.size() && updates[k].start <= r.after; ++k) {
      (updates[k].allowed[r.probe] ? any_allow : any_deny) = true;
    }
    if (any_allow && any_deny) {
      ++mixed;
      continue;
    }
    ++(any_allow ? decisive_allow : decisive_deny);
    if (any_deny && r.reached) {
      ++passed_both_deny;
      ADD_FAILURE() << kProbes[r.probe].from << " -> " << kProbes[r.probe].to << ":" << kProbes[r.probe].port
                    << " got through while every state it could have met denied it";
    }
    if (any_allow && !r.reached) {
      ++dropped_both_allow;
      ADD_FAILURE() << kProbes[r.probe].from << " -> " << kProbes[r.probe].to << ":" << kProbes[r.probe].port
                    << " was dropped while every state it could have met allowed it (connect took "
                    << std::chrono::duration_cast<std::chrono::microseconds>(r.after - r.before).count()
                    << " us; states " << first << "..)";
    }
  }
  std::printf(
      "soak: %d updates (%d changed a probed verdict), %zu probes: %d where both sides allowed, "
      "%d where both denied, %d across a change; %d passed that both sides denied, %d dropped "
      "that both allowed\n",
      kUpdates, changed_verdicts, records.size(), decisive_allow, decisive_deny, mixed, passed_both_deny,
      dropped_both_allow);
  RecordProperty("probes", static_cast<int>(records.size()));
  RecordProperty("changed_verdicts", changed_verdicts);
  EXPECT_EQ(passed_both_deny, 0);
  EXPECT_EQ(dropped_both_allow, 0);
  // The soak must have exercised what it exists for: verdicts that change, and probes
  // that judged both kinds.
  EXPECT_GT(changed_verdicts, kUpdates / 3);
  EXPECT_GT(decisive_allow, 1000);
  EXPECT_GT(decisive_deny, 200);
}

}  // namespace
}  // namespace netpol::testing
