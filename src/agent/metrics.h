// Prometheus text exposition (format 0.0.4) for netpold's /metrics.
//
//   Histogram latency({0.001, 0.01, 0.1});
//   latency.Observe(0.004);
//   MetricsWriter out;
//   out.Counter("netpol_agent_programs_total", "Dataplane updates in force.", {}, 12);
//   out.Histogram("netpol_agent_update_latency_seconds", "...", latency);
//   std::string body = out.text();   // served as text/plain; version=0.0.4
//
// Every family is written once with its HELP and TYPE, samples of one family
// together, label values escaped; `promtool check metrics` accepts the output
// (tests/agent/metrics_test.cpp runs it).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace netpol::agent {

// Cumulative buckets with fixed upper bounds (seconds, say), plus sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // per bucket, not cumulative
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsWriter {
 public:
  struct Sample {
    MetricLabels labels;
    double value;
  };
  void Counter(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void Gauge(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void Histogram(const std::string& name, const std::string& help, const agent::Histogram& histogram);

  const std::string& text() const { return text_; }

 private:
  void Family(const std::string& name, const std::string& help, const char* type,
              const std::vector<Sample>& samples);
  std::string text_;
};

}  // namespace netpol::agent
