// The flow log on its own: its rate limit, its ring, its filters, and how a
// logged packet is attributed to pods and policies by the engine.
#include "agent/flow_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "api/load.h"

namespace netpol::agent {
namespace {

using Json = nlohmann::json;
using Clock = FlowLog::Clock;

IpAddress Ip(const std::string& text) {
  return *IpAddress::Parse(text);
}

Json Line(const std::string& verdict, const std::string& src_pod, const std::string& dst_pod) {
  return {{"verdict", verdict},
          {"src", {{"namespace", "shop"}, {"pod", src_pod}}},
          {"dst", {{"namespace", "db"}, {"pod", dst_pod}}}};
}

TEST(FlowLogTest, TheRateLimitAdmitsABurstThenItsRate) {
  FlowLog log(/*ring=*/100, /*per_second=*/10);
  const Clock::time_point t0 = Clock::now();
  int admitted = 0;
  for (int i = 0; i < 25; ++i) admitted += log.Admit(t0) ? 1 : 0;
  EXPECT_EQ(admitted, 10) << "a full bucket is one second's worth";
  EXPECT_EQ(log.suppressed(), 15u);
  EXPECT_FALSE(log.Admit(t0 + std::chrono::milliseconds(50))) << "half a token";
  EXPECT_TRUE(log.Admit(t0 + std::chrono::milliseconds(150)));
  admitted = 0;
  for (int i = 0; i < 25; ++i) admitted += log.Admit(t0 + std::chrono::seconds(60)) ? 1 : 0;
  EXPECT_EQ(admitted, 10) << "the bucket holds at most one second's worth";
}

TEST(FlowLogTest, TheRingKeepsTheNewestLinesAndReadsResumeWhereTheyStopped) {
  FlowLog log(/*ring=*/3, /*per_second=*/100);
  for (int i = 0; i < 5; ++i) log.Add(Line("denied", "p" + std::to_string(i), "db"));
  const FlowLog::Read all = log.Since(0, {});
  EXPECT_EQ(all.text.find("\"p1\""), std::string::npos) << "older than the ring";
  EXPECT_NE(all.text.find("\"p2\""), std::string::npos);
  EXPECT_NE(all.text.find("\"p4\""), std::string::npos);
  EXPECT_EQ(all.last, 5u);
  EXPECT_EQ(log.lines(), 5u);
  log.Add(Line("allowed", "p5", "db"));
  const FlowLog::Read more = log.Since(all.last, {});
  EXPECT_EQ(more.text, Line("allowed", "p5", "db").dump() + "\n");
  EXPECT_EQ(log.Since(more.last, {}).text, "");
  std::atomic<bool> stop = false;
  const Clock::time_point before = Clock::now();
  log.WaitNewer(0, std::chrono::seconds(5), stop);  // there is a newer line: no wait
  EXPECT_LT(Clock::now() - before, std::chrono::seconds(5));
}

TEST(FlowLogTest, FiltersMatchEitherEnd) {
  const Json line = Line("denied", "web", "mysql");
  EXPECT_TRUE((FlowFilter{}).Matches(line));
  EXPECT_TRUE((FlowFilter{.ns = "db"}).Matches(line));
  EXPECT_TRUE((FlowFilter{.ns = "shop", .pod = "web"}).Matches(line));
  EXPECT_TRUE((FlowFilter{.pod = "db/mysql"}).Matches(line));
  EXPECT_FALSE((FlowFilter{.ns = "shop", .pod = "mysql"}).Matches(line)) << "the same end must match both";
  EXPECT_FALSE((FlowFilter{.verdict = "allowed"}).Matches(line));
  EXPECT_FALSE((FlowFilter{.ns = "other"}).Matches(line));
}

// An engine with pods web (198.18.5.1) and db (198.18.5.2) in shop, db
// isolated for ingress by deny-db except from web on TCP 5432.
policy::Engine Shop() {
  const api::LoadResult loaded = api::LoadText(R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.5.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.5.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 5432}]
)",
                                               "shop.yaml", {});
  EXPECT_TRUE(loaded.ok());
  policy::Engine engine;
  for (const api::Object& object : loaded.objects) engine.Apply(object);
  return engine;
}

dataplane::LoggedPacket Packet(const std::string& src, const std::string& dst, uint16_t port, bool allowed) {
  dataplane::LoggedPacket p;
  p.direction = policy::Direction::kIngress;
  p.allowed = allowed;
  p.src = Ip(src);
  p.dst = Ip(dst);
  p.ip_protocol = 6;
  p.protocol = api::Protocol::kTCP;
  p.dst_port = port;
  return p;
}

TEST(FlowLogTest, ADeniedConnectionNamesThePoliciesIsolatingThePod) {
  const policy::Engine engine = Shop();
  const Json line = AttributeFlow(engine, Packet("198.18.9.9", "198.18.5.2", 5432, false), "node-1", "T");
  EXPECT_EQ(line["verdict"], "denied");
  EXPECT_EQ(line["direction"], "ingress");
  EXPECT_EQ(line["protocol"], "TCP");
  EXPECT_EQ(line["port"], 5432);
  EXPECT_EQ(line["dst"]["pod"], "db");
  EXPECT_FALSE(line["src"].contains("pod")) << "198.18.9.9 is no pod";
  EXPECT_EQ(line["policies"], Json::array({"shop/deny-db"}));
  EXPECT_EQ(line["reason"], "isolated, and no rule of its policies allows this peer and port");
}

TEST(FlowLogTest, AnAllowedConnectionNamesTheRuleThatAllowsItNow) {
  const policy::Engine engine = Shop();
  const Json line = AttributeFlow(engine, Packet("198.18.5.1", "198.18.5.2", 5432, true), "node-1", "T");
  EXPECT_EQ(line["verdict"], "allowed");
  EXPECT_EQ(line["policy"], "shop/deny-db");
  EXPECT_EQ(line["rule"], "ingress[0]");
  // Logged as allowed, but the policies changed since: said so, not invented.
  const Json stale = AttributeFlow(engine, Packet("198.18.9.9", "198.18.5.2", 5432, true), "node-1", "T");
  EXPECT_FALSE(stale.contains("policy"));
  EXPECT_NE(stale["reason"].get<std::string>().find("changed since"), std::string::npos);
}

TEST(FlowLogTest, ATierDecisionNamesTheTier) {
  const policy::Engine engine = Shop();
  dataplane::LoggedPacket p = Packet("198.18.9.9", "198.18.5.2", 80, false);
  p.decider = dataplane::Decider::kBaselineTier;
  const Json line = AttributeFlow(engine, p, "node-1", "T");
  EXPECT_EQ(line["tier"], "baseline");
  EXPECT_NE(line["reason"].get<std::string>().find("baseline ClusterNetworkPolicy"), std::string::npos)
      << line.dump();
}

}  // namespace
}  // namespace netpol::agent
