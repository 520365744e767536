// The connectivity matrix: for every ordered pair of pods and every port, allowed or not.
//
//   std::vector<PortProto> ports = DeclaredPorts(engine);   // or the user's --port list
//   Matrix m = ComputeMatrix(engine, ports);
//   for (size_t p = 0; p < m.ports().size(); ++p)
//     for (size_t i = 0; i < m.pods().size(); ++i)
//       for (size_t j = 0; j < m.pods().size(); ++j)
//         if (i != j && m.Allowed(p, i, j)) ...;
//
// Same answers as Engine::Allowed for each pair (tested), computed per pod class
// rather than per pair: each class's allowed peers for a port are OR-ed bitsets,
// combined into a class-by-class matrix, then spread to pods; only ipBlock rules
// and node traffic look at individual pods. Pods are in Engine::Pods() order and
// each pod uses its first IP address.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "api/objects.h"
#include "policy/engine.h"

namespace netpol::policy {

struct PortProto {
  api::Protocol protocol = api::Protocol::kTCP;
  uint16_t port = 0;
  std::string ToString() const;  // "3306/TCP"
  friend auto operator<=>(const PortProto&, const PortProto&) = default;
};

class Matrix {
 public:
  Matrix(std::vector<PodId> pods, std::vector<PortProto> ports);

  const std::vector<PodId>& pods() const { return pods_; }
  const std::vector<PortProto>& ports() const { return ports_; }

  bool Allowed(size_t port, size_t from, size_t to) const {
    const size_t bit = from * pods_.size() + to;
    return ((bits_[port][bit >> 6] >> (bit & 63)) & 1U) != 0;
  }
  void Set(size_t port, size_t from, size_t to) {
    const size_t bit = from * pods_.size() + to;
    bits_[port][bit >> 6] |= uint64_t{1} << (bit & 63);
  }
  // Allowed ordered pairs of distinct pods for one port.
  size_t AllowedPairs(size_t port) const;

 private:
  std::vector<PodId> pods_;
  std::vector<PortProto> ports_;
  std::vector<std::vector<uint64_t>> bits_;  // per port, row-major pods x pods
};

// Every (port, protocol) some pod declares in its containers, sorted.
std::vector<PortProto> DeclaredPorts(const Engine& engine);

Matrix ComputeMatrix(const Engine& engine, const std::vector<PortProto>& ports);

}  // namespace netpol::policy
