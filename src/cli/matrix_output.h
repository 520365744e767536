// Rendering a connectivity matrix: table (grouped, 80 columns), json, yaml, csv, dot.
//
//   RenderMatrix(engine, matrix, MatrixFormat::kTable, visible, std::cout);
//
// `visible` restricts which pods are printed (e.g. one namespace with -n); the
// matrix itself is always computed over the whole cluster.
#pragma once

#include <ostream>
#include <vector>

#include "policy/engine.h"
#include "policy/matrix.h"

namespace netpol::cli {

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
