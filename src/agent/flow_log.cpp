#include "agent/flow_log.h"

#include <algorithm>

#include "policy/explain.h"

namespace netpol::agent {
namespace {

using Json = nlohmann::json;

// One end of a logged flow: its address, and the pod it is, if known.
Json EndpointJson(const policy::Engine& engine, const IpAddress& ip) {
  Json out = {{"ip", ip.ToString()}};
  if (const auto pod = engine.FindPodByIp(ip)) {
    out["namespace"] = engine.pod(*pod).namespace_;
    out["pod"] = engine.pod(*pod).name;
  }
  return out;
}

std::string RuleName(policy::Direction direction, int rule) {
  return std::string(direction == policy::Direction::kIngress ? "ingress[" : "egress[") +
         std::to_string(rule) + "]";
}

}  // namespace

bool FlowFilter::Matches(const Json& line) const {
  if (!verdict.empty() && line.value("verdict", "") != verdict) return false;
  const auto end_matches = [&](const char* end) {
    const Json& e = line[end];
    if (!ns.empty() && e.value("namespace", "") != ns) return false;
    if (!pod.empty() && e.value("pod", "") != pod &&
        e.value("namespace", "") + "/" + e.value("pod", "") != pod)
      return false;
    return true;
  };
  return end_matches("src") || end_matches("dst");
}

FlowLog::FlowLog(size_t ring, double per_second)
    : ring_(ring), per_second_(per_second), tokens_(per_second), refilled_(Clock::now()) {}

bool FlowLog::Admit(Clock::time_point now) {
  std::lock_guard lock(mu_);
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  tokens_ = std::min(per_second_, tokens_ + std::max(elapsed, 0.0) * per_second_);
  refilled_ = std::max(refilled_, now);
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  return true;
}

void FlowLog::Add(Json line) {
  std::lock_guard lock(mu_);
  lines_.emplace_back(++sequence_, std::move(line));
  if (lines_.size() > ring_) lines_.pop_front();
  added_.notify_all();
}

FlowLog::Read FlowLog::Since(uint64_t after, const FlowFilter& filter) const {
  std::lock_guard lock(mu_);
  Read read;
  for (const auto& [sequence, line] : lines_) {
    if (sequence > after && filter.Matches(line)) read.text += line.dump() + "\n";
  }
  read.last = std::max(after, sequence_);
  return read;
}

void FlowLog::WaitNewer(uint64_t seen, std::chrono::milliseconds timeout, const std::atomic<bool>& stop) {
  std::unique_lock lock(mu_);
  added_.wait_for(lock, timeout, [&] { return sequence_ > seen || stop.load(); });
}

uint64_t FlowLog::lines() const {
  std::lock_guard lock(mu_);
  return sequence_;
}

uint64_t FlowLog::suppressed() const {
  std::lock_guard lock(mu_);
  return suppressed_;
}

Json AttributeFlow(const policy::Engine& engine, const dataplane::LoggedPacket& p, const std::string& node,
                   const std::string& time) {
  const policy::Direction direction = p.direction;
  const bool ingress = direction == policy::Direction::kIngress;
  Json line = {
      {"time", time},
      {"node", node},
      {"verdict", p.allowed ? "allowed" : "denied"},
      {"direction", ingress ? "ingress" : "egress"},
      {"protocol", p.protocol ? std::string(api::ProtocolName(*p.protocol)) : std::to_string(p.ip_protocol)}};
  if (p.protocol) line["port"] = p.dst_port;
  line["src"] = EndpointJson(engine, p.src);
  line["dst"] = EndpointJson(engine, p.dst);
  // The connection judged by the policies in force now (the log line names no rule).
  const auto judge_now = [&] {
    const auto endpoint = [&](const IpAddress& ip) {
      const auto pod = engine.FindPodByIp(ip);
      return pod ? policy::Endpoint::OfPod(*pod, ip) : policy::Endpoint::OfIp(ip);
    };
    const policy::Flow flow{endpoint(p.src), endpoint(p.dst), p.protocol.value_or(api::Protocol::kTCP),
                            p.dst_port};
    const policy::Verdict verdict = engine.Evaluate(flow);
    return ingress ? verdict.ingress : verdict.egress;
  };
  if (p.decider != dataplane::Decider::kNetworkPolicy) {
    // A ClusterNetworkPolicy tier decided: the rule that decides it now, as
    // the engine says (the map element that matched names it too, in its
    // comment and counter).
    const char* tier = p.decider == dataplane::Decider::kAdminTier ? "admin" : "baseline";
    line["tier"] = tier;
    const policy::DirectionVerdict judged = judge_now();
    if (judged.cluster_rule) {
      line["policy"] = engine.ClusterPolicyName(judged.cluster_rule->policy);
      line["rule"] = RuleName(direction, judged.cluster_rule->rule);
      line["reason"] = policy::DescribeClusterRule(engine, direction, *judged.cluster_rule);
    } else {
      line["reason"] =
          std::string("decided by a ") + tier +
          " ClusterNetworkPolicy rule in force when it was logged (its policies have changed since)";
    }
    return line;
  }
  if (p.allowed) {
    const policy::DirectionVerdict judged = judge_now();
    if (judged.allowed_by) {
      line["policy"] = engine.PolicyName(judged.allowed_by->policy);
      line["rule"] = RuleName(direction, judged.allowed_by->rule);
      line["reason"] = policy::DescribeRule(engine, direction, *judged.allowed_by);
    } else {
      line["reason"] = "allowed by the rules in force when it was logged (its policies have changed since)";
    }
    return line;
  }
  Json policies = Json::array();
  if (const auto pod = engine.FindPodByIp(ingress ? p.dst : p.src)) {
    for (const policy::PolicyId id : engine.IsolatingPolicies(*pod, direction)) {
      policies.push_back(engine.PolicyName(id));
    }
  }
  line["reason"] = policies.empty() ? "isolated (its policies have just changed)"
                                    : "isolated, and no rule of its policies allows this peer and port";
  line["policies"] = std::move(policies);
  return line;
}

}  // namespace netpol::agent
