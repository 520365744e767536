// The agent's HTTP endpoints: /metrics (agent_metrics.h renders it from a
// snapshot and the dataplane's counters), /healthz, /readyz and /flows (the
// flow log, filtered, optionally followed).
#include <httplib.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent/agent_metrics.h"
#include "agent/internal/agent_impl.h"

namespace netpol::agent {

using internal::Clock;
using internal::NameThread;

// Here, where httplib::Server is complete.
Agent::Impl::Impl(AgentOptions o, BackendFactory make)
    : options(std::move(o)),
      log(options.log_level, options.node_name),
      state({.node_name = options.node_name}, log),
      make_backend(std::move(make)) {}

Agent::Impl::~Impl() = default;

std::string Agent::Impl::NotReady() const {
  if (!stats.synced) return "the first full sync is not in force yet";
  return watch_health.Failing();
}

std::vector<std::string> Agent::Impl::Stuck() const {
  return liveness ? liveness->Stuck() : std::vector<std::string>{};
}

std::string Agent::Impl::Metrics() {
  // The per-pod counters first, from the kernel, without the agent's lock:
  // reading them takes milliseconds, and programming waits for that lock (a
  // scrape must not show up in the update latency).
  bool synced = false;
  {
    std::lock_guard lock(mu);
    synced = stats.synced;
  }
  std::vector<dataplane::ConnectionCount> counted;
  if (backend && synced) {
    if (Result<std::vector<dataplane::ConnectionCount>> read = backend->CountConnections()) {
      counted = std::move(*read);
    }
  }
  std::lock_guard lock(mu);
  AgentMetrics m{.ready = stats.synced,
                 .local_pods = state.local_pods(),
                 .reserved_pods = state.reserved_pods(),
                 .installed_elements = stats.installed_elements,
                 .programs = stats.programs,
                 .failures = stats.failures,
                 .repairs = stats.repairs,
                 .flow_lines = flows.lines(),
                 .flows_suppressed = flows.suppressed(),
                 .program_seconds = &program_seconds,
                 .update_seconds = &update_seconds};
  if (cni_server != nullptr) m.cni = cni_server->stats();
  for (const auto& [kind, watch] : watches) {
    const auto it = state.events_by_kind().find(kind);
    m.watches.push_back(
        {kind, it == state.events_by_kind().end() ? 0 : it->second, watch->lists(), watch->watches()});
  }
  return RenderMetrics(m, counted, state.engine());
}

Status Agent::Impl::BindMetrics(const std::atomic<bool>& stop) {
  const size_t colon = options.metrics_address.rfind(':');
  int port = 0;
  const char* digits = options.metrics_address.c_str() + (colon == std::string::npos ? 0 : colon + 1);
  const auto [end, ec] =
      std::from_chars(digits, options.metrics_address.c_str() + options.metrics_address.size(), port);
  if (colon == std::string::npos || ec != std::errc() || *end != '\0' || port <= 0 || port > 65535) {
    return InvalidArgument("--metrics-address wants host:port, not \"" + options.metrics_address + "\"");
  }
  std::string host = options.metrics_address.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";  // ":9963": every address (a hostNetwork DaemonSet's probes)
  http = std::make_unique<httplib::Server>();
  httplib::Server& server = *http;
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // Flow log lines (JSON, one per line); ?namespace=&pod=&verdict= filter,
  // ?follow=true keeps the response open and streams new lines.
  server.Get("/flows", [&](const httplib::Request& req, httplib::Response& res) {
    const FlowFilter filter{req.get_param_value("namespace"), req.get_param_value("pod"),
                            req.get_param_value("verdict")};
    FlowLog::Read first = flows.Since(0, filter);
    if (req.get_param_value("follow") != "true") {
      res.set_content(first.text, "application/x-ndjson");
      return;
    }
    res.set_chunked_content_provider(
        "application/x-ndjson", [this, &stop, filter, body = std::move(first.text), seen = first.last](
                                    size_t, httplib::DataSink& sink) mutable {
          if (!body.empty()) {
            sink.write(body.data(), body.size());
            body.clear();
          }
          flows.WaitNewer(seen, std::chrono::milliseconds(500), stop);
          if (stop.load()) {
            sink.done();
            return true;
          }
          FlowLog::Read more = flows.Since(seen, filter);
          seen = more.last;
          if (!more.text.empty() && !sink.write(more.text.data(), more.text.size())) return false;
          return sink.is_writable();
        });
  });
  // Live: every loop that beats made progress lately (a loop that ended
  // ends the agent, and this server answering is its own proof).
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    const std::vector<std::string> stuck = Stuck();
    std::string body = stuck.empty() ? "ok\n" : "";
    for (const std::string& line : stuck) body += line + "\n";
    res.status = stuck.empty() ? 200 : 503;
    res.set_content(body, "text/plain");
  });
  server.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
    std::string why;
    {
      std::lock_guard lock(mu);
      why = NotReady();
    }
    res.status = why.empty() ? 200 : 503;
    res.set_content(why.empty() ? "ok\n" : why + "\n", "text/plain");
  });
  errno = 0;
  if (!server.bind_to_port(host, port)) {
    const int err = errno;
    return Unavailable("cannot serve metrics on " + options.metrics_address +
                       (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }
  return Ok();
}

void Agent::Impl::ServeMetrics(const std::atomic<bool>& stop) {
  NameThread("np-metrics");
  log(LogLevel::kInfo, "serving /metrics, /healthz and /readyz", {{"address", options.metrics_address}});
  std::thread stopper([&] {
    while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    http->stop();
  });
  http->listen_after_bind();
  stopper.join();
}

void Agent::Impl::CloseHttp() {
  http.reset();
}

}  // namespace netpol::agent
