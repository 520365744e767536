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
// rather than per pair: for each port, each class's allowed peer classes are
// OR-ed bitsets; ingress sets are transposed so that a source class's row of
// allowed destination classes is one AND; a pod's row is then filled by looking
// up each destination's class in that row. Only ipBlock rules and hostNetwork
// pods look at individual pods. Pods are in Engine::Pods() order and each pod
// uses its first IP address.
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
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 on a defaulted <=>
  friend auto operator<=>(const PortProto&, const PortProto&) = default;
};

class Matrix {
 public:
  Matrix(std::vector<PodId> pods, std::vector<PortProto> ports);

  const std::vector<PodId>& pods() const { return pods_; }
  const std::vector<PortProto>& ports() const { return ports_; }

  bool Allowed(size_t port, size_t from, size_t to) const {
    return ((bits_[port][from * stride_ + (to >> 6)] >> (to & 63)) & 1U) != 0;
  }
  void Set(size_t port, size_t from, size_t to) {
    bits_[port][from * stride_ + (to >> 6)] |= uint64_t{1} << (to & 63);
  }
  // The row of `from` as 64-bit words (bit j of the row: `from` may reach pod j).
  uint64_t* Row(size_t port, size_t from) { return &bits_[port][from * stride_]; }
  size_t row_words() const { return stride_; }
  // Allowed ordered pairs of distinct pods for one port.
  size_t AllowedPairs(size_t port) const;

 private:
  std::vector<PodId> pods_;
  std::vector<PortProto> ports_;
  size_t stride_;                            // words per row
  std::vector<std::vector<uint64_t>> bits_;  // per port, row-major pods x pods
};

// Every (port, protocol) some pod declares in its containers, sorted.
std::vector<PortProto> DeclaredPorts(const Engine& engine);

Matrix ComputeMatrix(const Engine& engine, const std::vector<PortProto>& ports);

}  // namespace netpol::policy
