// Synthetic clusters for differential tests, fuzzing and benchmarks.
//
//   SeededChoices choices(42);
//   std::vector<api::Object> small = GenerateSmallCluster(choices);
//
//   ClusterShape shape{.namespaces = 100, .pods = 10000, .policies = 1000};
//   std::vector<api::Object> big = GenerateRealisticCluster(shape, 7);
//
// Small clusters draw every field from a tiny vocabulary so that collisions
// (same labels, same named port names, overlapping blocks) are common: that is
// where semantics go wrong. Realistic clusters follow the shape of real ones:
// apps with a few replicas sharing labels, tiers, namespaces with team labels,
// policies mixing default-deny, pod and namespace selectors, named and numeric
// ports and ipBlocks. All objects are valid (api::Validate passes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "api/objects.h"
#include "policy/engine.h"

namespace netpol::testing {

// A source of bounded choices: a PRNG, or fuzzer bytes.
class Choices {
 public:
  virtual ~Choices() = default;
  // A number in [0, bound); bound > 0.
  virtual uint32_t Next(uint32_t bound) = 0;
  bool Coin(uint32_t one_in = 2) { return Next(one_in) == 0; }
};

class SeededChoices final : public Choices {
 public:
  explicit SeededChoices(uint64_t seed) : rng_(seed) {}
  uint32_t Next(uint32_t bound) override { return static_cast<uint32_t>(rng_() % bound); }

 private:
  std::mt19937_64 rng_;
};

// Consumes fuzzer input; yields 0 once the bytes run out.
class ByteChoices final : public Choices {
 public:
  explicit ByteChoices(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint32_t Next(uint32_t bound) override {
    if (bound <= 1 || pos_ >= bytes_.size()) return 0;
    uint32_t value = bytes_[pos_++];
    if (bound > 256 && pos_ < bytes_.size()) value = (value << 8) | bytes_[pos_++];
    return value % bound;
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

std::vector<api::Object> GenerateSmallCluster(Choices& choices);
// A small cluster plus Node objects and ClusterNetworkPolicies of both tiers
// (priorities 0-2, so ties happen), every rule action and peer kind.
std::vector<api::Object> GenerateTieredCluster(Choices& choices);

struct ClusterShape {
  int namespaces = 10;
  int pods = 1000;
  int policies = 100;
};

std::vector<api::Object> GenerateRealisticCluster(const ClusterShape& shape, uint64_t seed);

// `count` ClusterNetworkPolicies for such a cluster, as cluster administrators
// write them: two in three Admin (subject: a team's namespaces of one env;
// ingress Deny from dev namespaces on a port, Pass from the team, Accept
// frontends on 443; egress Deny to a range), the rest Baseline (a team's
// default deny from other teams), priorities spread over 0-1000.
std::vector<api::Object> GenerateRealisticClusterPolicies(int count, uint64_t seed);

// A node of such a cluster, as the benchmarks model one: the engine's first
// `count` pods, each with a host interface ("veth0", "veth1", ...), ready for
// CompileNode.
std::map<std::string, std::string> FirstPodsAsLocal(const policy::Engine& engine, size_t count);

}  // namespace netpol::testing
