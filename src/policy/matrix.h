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
// pods look at individual pods. Pods are in Engine::Pods() order. A pair of
// pods is judged per address family as FamilyFlows says (docs/SEMANTICS.md
// §19): with dual-stack pods the matrix is computed once at every pod's IPv4
// address (its first where it has none) and once at its IPv6 address, and each
// pair takes its verdicts from the planes of its families.
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
  // `per_family`: keep a second plane of verdicts for the pairs judged per
  // family (ComputeMatrix sets it when some pod is dual-stack).
  Matrix(std::vector<PodId> pods, std::vector<PortProto> ports, bool per_family = false);

  const std::vector<PodId>& pods() const { return pods_; }
  const std::vector<PortProto>& ports() const { return ports_; }
  bool per_family() const { return !bits6_.empty(); }

  // Allowed in every address family the pair connects over (FamilyFlows).
  bool Allowed(size_t port, size_t from, size_t to) const {
    return Bit(bits_, port, from, to) && (bits6_.empty() || Bit(bits6_, port, from, to));
  }
  // The pair is judged per family and the families' verdicts differ: allowed
  // over AllowedOnly() and denied over the other (docs/SEMANTICS.md §19).
  bool FamiliesDiffer(size_t port, size_t from, size_t to) const {
    return !bits6_.empty() && Bit(bits_, port, from, to) != Bit(bits6_, port, from, to);
  }
  // For a pair whose families differ: the family it is allowed over.
  IpFamily AllowedOnly(size_t port, size_t from, size_t to) const {
    return Bit(bits_, port, from, to) ? IpFamily::kV4 : IpFamily::kV6;
  }
  // The verdict over one family (for pairs judged in one family: Allowed).
  bool AllowedOver(size_t port, size_t from, size_t to, IpFamily family) const {
    if (!FamiliesDiffer(port, from, to)) return Allowed(port, from, to);
    return AllowedOnly(port, from, to) == family;
  }
  // Allowed in every family.
  void Set(size_t port, size_t from, size_t to) {
    bits_[port][from * stride_ + (to >> 6)] |= uint64_t{1} << (to & 63);
    if (!bits6_.empty()) bits6_[port][from * stride_ + (to >> 6)] |= uint64_t{1} << (to & 63);
  }
  // The row of `from` as 64-bit words (bit j of the row: `from` may reach pod j):
  // plane 0 is the pair's only verdict or its IPv4 one, plane 1 (per_family())
  // the pair's only verdict or its IPv6 one.
  uint64_t* Row(size_t port, size_t from, int plane = 0) {
    return &(plane == 0 ? bits_ : bits6_)[port][from * stride_];
  }
  size_t row_words() const { return stride_; }
  // Allowed ordered pairs of distinct pods for one port (in every family).
  size_t AllowedPairs(size_t port) const;

 private:
  bool Bit(const std::vector<std::vector<uint64_t>>& bits, size_t port, size_t from, size_t to) const {
    return ((bits[port][from * stride_ + (to >> 6)] >> (to & 63)) & 1U) != 0;
  }

  std::vector<PodId> pods_;
  std::vector<PortProto> ports_;
  size_t stride_;                             // words per row
  std::vector<std::vector<uint64_t>> bits_;   // per port, row-major pods x pods
  std::vector<std::vector<uint64_t>> bits6_;  // the second plane, when per_family
};

// Every (port, protocol) some pod declares in its containers, sorted.
std::vector<PortProto> DeclaredPorts(const Engine& engine);

Matrix ComputeMatrix(const Engine& engine, const std::vector<PortProto>& ports);

}  // namespace netpol::policy
