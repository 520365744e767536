#include "agent/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace netpol::agent {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

// The exposition format's escapes: backslash and newline everywhere, and the
// double quote inside label values.
std::string Escaped(const std::string& text, bool quote) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"" + Escaped(labels[i].second, true) + "\"";
  }
  return out + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double value) {
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  ++counts_[bucket];  // the last one is +Inf
  sum_ += value;
  ++count_;
}

void MetricsWriter::Family(const std::string& name, const std::string& help, const char* type,
                           const std::vector<Sample>& samples) {
  text_ += "# HELP " + name + " " + Escaped(help, false) + "\n# TYPE " + name + " " + type + "\n";
  for (const Sample& s : samples) text_ += name + LabelText(s.labels) + " " + Number(s.value) + "\n";
}

void MetricsWriter::Counter(const std::string& name, const std::string& help,
                            const std::vector<Sample>& samples) {
  Family(name, help, "counter", samples);
}

void MetricsWriter::Gauge(const std::string& name, const std::string& help,
                          const std::vector<Sample>& samples) {
  Family(name, help, "gauge", samples);
}

void MetricsWriter::Histogram(const std::string& name, const std::string& help, const agent::Histogram& h) {
  text_ += "# HELP " + name + " " + Escaped(help, false) + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.upper_bounds().size(); ++i) {
    cumulative += h.counts()[i];
    text_ +=
        name + "_bucket{le=\"" + Number(h.upper_bounds()[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  text_ += name + "_bucket{le=\"+Inf\"} " + std::to_string(h.count()) + "\n";
  text_ += name + "_sum " + Number(h.sum()) + "\n";
  text_ += name + "_count " + std::to_string(h.count()) + "\n";
}

}  // namespace netpol::agent
