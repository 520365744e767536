// Rendering a connectivity matrix: table (grouped, 80 columns), json, yaml, csv, dot.
//
//   RenderMatrix(engine, matrix, MatrixFormat::kTable, visible, std::cout);
//
// `visible` restricts which pods are printed (e.g. one namespace with -n); the
// matrix itself is always computed over the whole cluster.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "policy/engine.h"
#include "policy/matrix.h"

namespace netpol::cli {

// The one legend of connectivity cells, for `matrix` and `lab probe` alike.
inline constexpr char kCellAllowed = '.';
inline constexpr char kCellDenied = 'X';
inline constexpr char kCellSelf = '-';
// A dual-stack pair whose families differ: allowed over IPv4 only, IPv6 only.
inline constexpr char kCellOnlyV4 = '4';
inline constexpr char kCellOnlyV6 = '6';
// `lab probe`: after the measured cell, the measurement differs from the engine.
inline constexpr char kCellDiffers = '!';

// The cell of one pair on one port (kCellSelf is the caller's).
char MatrixCell(const policy::Matrix& matrix, size_t port, size_t from, size_t to);
// The legend (no final newline): a second line for the family cells when
// `per_family`, the difference mark when `probe`.
std::string CellLegend(bool per_family, bool probe = false);

enum class MatrixFormat { kTable, kJson, kYaml, kCsv, kDot };

// Pods that behave alike: same verdicts to and from every other pod on every port.
struct PodGroup {
  std::vector<size_t> members;  // indices into Matrix::pods()
};

// Groups the given matrix indices; twins end up in one group, in index order.
std::vector<PodGroup> GroupPods(const policy::Matrix& matrix, const std::vector<size_t>& indices);

void RenderMatrix(const policy::Engine& engine, const policy::Matrix& matrix, MatrixFormat format,
                  const std::vector<size_t>& visible, std::ostream& out);

}  // namespace netpol::cli
