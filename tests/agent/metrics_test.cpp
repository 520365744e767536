// The Prometheus text netpold serves: well formed by hand-checked shape and by
// promtool itself.
#include "agent/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace netpol::agent {
namespace {

TEST(HistogramTest, BucketsCountWhatFallsAtOrBelowTheirBound) {
  Histogram h({0.01, 0.001, 0.1});  // unsorted on purpose
  for (const double v : {0.0005, 0.001, 0.002, 0.05, 3.0}) h.Observe(v);
  ASSERT_EQ(h.upper_bounds(), (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{2, 1, 1, 1}));  // le 0.001 is inclusive; 3.0 in +Inf
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 3.0535);
}

std::string Sample() {
  Histogram h({0.001, 0.01});
  h.Observe(0.0004);
  h.Observe(0.02);
  MetricsWriter out;
  out.Gauge("netpol_agent_ready", "1 once synced.", {{{}, 1}});
  out.Counter("netpol_denied_connections_total", "Denied \"new\" connections\nby namespace.",
              {{{{"namespace", "shop"}, {"direction", "ingress"}}, 3},
               {{{"namespace", "we\"ird\\ns\n"}, {"direction", "egress"}}, 0}});
  out.Histogram("netpol_agent_update_latency_seconds", "Update latency.", h);
  return out.text();
}

TEST(MetricsWriterTest, WritesTheExpositionFormat) {
  const std::string text = Sample();
  EXPECT_NE(text.find("# TYPE netpol_agent_ready gauge\nnetpol_agent_ready 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP netpol_denied_connections_total Denied \"new\" connections\\nby namespace.\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("netpol_denied_connections_total{namespace=\"shop\",direction=\"ingress\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("{namespace=\"we\\\"ird\\\\ns\\n\",direction=\"egress\"} 0\n"), std::string::npos)
      << text;
  // Cumulative buckets, +Inf equal to the count.
  EXPECT_NE(text.find("netpol_agent_update_latency_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("netpol_agent_update_latency_seconds_bucket{le=\"0.01\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("netpol_agent_update_latency_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("netpol_agent_update_latency_seconds_count 2\n"), std::string::npos);
}

// promtool (Debian's prometheus package, installed by scripts/install-deps.sh)
// checks the output; `promtool check metrics` exits non-zero on any problem.
TEST(MetricsWriterTest, PromtoolAcceptsTheOutput) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") FAIL() << "promtool is missing (apt install prometheus)";
    GTEST_SKIP() << "promtool is missing (apt install prometheus)";
  }
  const std::string path = ::testing::TempDir() + "/netpol-metrics-" + std::to_string(::getpid()) + ".txt";
  std::ofstream(path) << Sample();
  const int rc = std::system(("promtool check metrics < " + path + " 2>&1").c_str());
  std::filesystem::remove(path);
  EXPECT_EQ(WEXITSTATUS(rc), 0);
}

}  // namespace
}  // namespace netpol::agent
