#include "cli/matrix_output.h"

#include <algorithm>
#include <optional>
#include <string>

#include "policy/flow_text.h"

namespace netpol::cli {
namespace {

using policy::Matrix;

constexpr size_t kMaxTableGroups = 20;
constexpr size_t kMaxUngroupedPods = 12;  // small clusters: one row per pod
constexpr size_t kMaxGroupingPods = 400;  // grouping is O(groups x pods^2)

// i and j are twins when swapping them changes no verdict among `indices`.
bool Twins(const Matrix& m, const std::vector<size_t>& indices, size_t i, size_t j) {
  for (size_t p = 0; p < m.ports().size(); ++p) {
    if (MatrixCell(m, p, i, j) != MatrixCell(m, p, j, i)) return false;
    for (const size_t k : indices) {
      if (k == i || k == j) continue;
      if (MatrixCell(m, p, i, k) != MatrixCell(m, p, j, k) ||
          MatrixCell(m, p, k, i) != MatrixCell(m, p, k, j)) {
        return false;
      }
    }
  }
  return true;
}

std::string GroupLabel(size_t g) {
  return std::string(1, static_cast<char>('A' + g));
}

std::string PodName(const policy::Engine& engine, const Matrix& m, size_t i) {
  return engine.pod(m.pods()[i]).FullName();
}

std::string MemberList(const policy::Engine& engine, const Matrix& m, const PodGroup& g) {
  std::string out = PodName(engine, m, g.members[0]);
  if (g.members.size() > 1) out += ", " + PodName(engine, m, g.members[1]);
  if (g.members.size() > 2) out += " (+" + std::to_string(g.members.size() - 2) + " more)";
  return out;
}

// Cell for a group pair: pairs within one group are uniform (twins), so the
// first members decide; a singleton group's diagonal is the pod itself.
char Cell(const Matrix& m, size_t port, const PodGroup& from, const PodGroup& to, bool same) {
  if (same) {
    if (from.members.size() == 1) return kCellSelf;
    return MatrixCell(m, port, from.members[0], from.members[1]);
  }
  return MatrixCell(m, port, from.members[0], to.members[0]);
}

void Table(const policy::Engine& engine, const Matrix& m, const std::vector<size_t>& visible,
           std::ostream& out) {
  if (visible.empty()) {
    out << "No pods.\n";
    return;
  }
  if (m.ports().empty()) {
    out << "No ports: no pod declares a container port; pass --port PORT[/PROTOCOL].\n";
    return;
  }
  std::vector<PodGroup> groups;
  if (visible.size() <= kMaxUngroupedPods) {
    for (const size_t i : visible) groups.push_back({{i}});
  } else if (visible.size() <= kMaxGroupingPods) {
    groups = GroupPods(m, visible);
  }
  if (groups.empty() || groups.size() > kMaxTableGroups) {
    const size_t n = visible.size();
    out << n
        << " pods; too many distinct behaviours for a table (use -o json, csv or dot, or -n NAMESPACE).\n";
    for (size_t p = 0; p < m.ports().size(); ++p) {
      size_t allowed = 0;
      size_t isolated = 0;  // pods that no other visible pod may reach
      std::vector<bool> reached(m.pods().size(), false);
      for (const size_t i : visible) {
        for (const size_t j : visible) {
          if (i != j && m.Allowed(p, i, j)) {
            ++allowed;
            reached[j] = true;
          }
        }
      }
      for (const size_t j : visible) isolated += reached[j] ? size_t{0} : size_t{1};
      const size_t pairs = n * (n - 1);
      out << "  " << m.ports()[p].ToString() << ": " << allowed << " of " << pairs << " pod pairs allowed ("
          << (pairs ? allowed * 100 / pairs : 0) << "%), " << isolated
          << " pods unreachable from every other pod\n";
    }
    return;
  }
  out << visible.size() << (visible.size() == 1 ? " pod" : " pods");
  if (groups.size() < visible.size()) {
    out << " in " << groups.size() << (groups.size() == 1 ? " group" : " groups")
        << " of identical connectivity";
  }
  out << ". Rows: from. Columns: to.\n" << CellLegend(m.per_family()) << ".\n\n";
  for (size_t g = 0; g < groups.size(); ++g) {
    out << "  " << GroupLabel(g) << "  " << MemberList(engine, m, groups[g]) << "\n";
  }
  for (size_t p = 0; p < m.ports().size(); ++p) {
    std::string header = m.ports()[p].ToString();
    header.resize(std::max<size_t>(header.size() + 1, 12), ' ');
    out << "\n" << header;
    for (size_t g = 0; g < groups.size(); ++g) out << GroupLabel(g) << (g + 1 < groups.size() ? "  " : "");
    out << "\n";
    for (size_t f = 0; f < groups.size(); ++f) {
      std::string row = "  " + GroupLabel(f);
      row.resize(header.size(), ' ');
      for (size_t t = 0; t < groups.size(); ++t) {
        row += Cell(m, p, groups[f], groups[t], f == t);
        if (t + 1 < groups.size()) row += "  ";
      }
      out << row << "\n";
    }
  }
}

void Records(const policy::Engine& engine, const Matrix& m, const std::vector<size_t>& visible,
             MatrixFormat format, std::ostream& out) {
  std::vector<std::string> names(m.pods().size());
  for (const size_t i : visible) names[i] = PodName(engine, m, i);
  std::vector<std::string> ports;
  for (const auto& pp : m.ports()) ports.emplace_back(api::ProtocolName(pp.protocol));
  bool first = true;
  if (format == MatrixFormat::kJson) out << "{\"verdicts\":[";
  if (format == MatrixFormat::kYaml) out << "verdicts:";
  if (format == MatrixFormat::kCsv) out << "from,to,port,protocol,allowed,family\n";
  // One record per pair and port; a dual-stack pair whose families differ
  // gets one per family, with its family (docs/SEMANTICS.md §19).
  const auto record = [&](size_t i, size_t j, size_t p, bool allowed, std::optional<IpFamily> family) {
    const char* verdict = allowed ? "true" : "false";
    const std::string fam = family ? std::string(policy::FamilyName(*family)) : std::string();
    switch (format) {
      case MatrixFormat::kJson:
        // Pod names are RFC 1123 names: no JSON escaping needed.
        out << (first ? "\n" : ",\n") << "{\"from\":\"" << names[i] << "\",\"to\":\"" << names[j]
            << "\",\"port\":" << m.ports()[p].port << ",\"protocol\":\"" << ports[p]
            << "\",\"allowed\":" << verdict << (family ? ",\"family\":\"" + fam + "\"" : "") << "}";
        break;
      case MatrixFormat::kYaml:
        out << "\n- from: " << names[i] << "\n  to: " << names[j] << "\n  port: " << m.ports()[p].port
            << "\n  protocol: " << ports[p] << "\n  allowed: " << verdict
            << (family ? "\n  family: " + fam : "");
        break;
      case MatrixFormat::kCsv:
        out << names[i] << "," << names[j] << "," << m.ports()[p].port << "," << ports[p] << "," << verdict
            << "," << fam << "\n";
        break;
      default:
        break;
    }
    first = false;
  };
  for (const size_t i : visible) {
    for (const size_t j : visible) {
      if (i == j) continue;
      for (size_t p = 0; p < m.ports().size(); ++p) {
        if (m.FamiliesDiffer(p, i, j)) {
          for (const IpFamily family : {IpFamily::kV4, IpFamily::kV6}) {
            record(i, j, p, m.AllowedOver(p, i, j, family), family);
          }
        } else {
          record(i, j, p, m.Allowed(p, i, j), std::nullopt);
        }
      }
    }
  }
  if (format == MatrixFormat::kJson) out << (first ? "]}\n" : "\n]}\n");
  if (format == MatrixFormat::kYaml) out << (first ? " []\n" : "\n");
}

void Dot(const policy::Engine& engine, const Matrix& m, const std::vector<size_t>& visible,
         std::ostream& out) {
  std::vector<PodGroup> groups;
  if (visible.size() <= kMaxGroupingPods) {
    groups = GroupPods(m, visible);
  } else {
    for (const size_t i : visible) groups.push_back({{i}});
  }
  out << "digraph netpol {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (size_t g = 0; g < groups.size(); ++g) {
    std::string label;
    for (const size_t i : groups[g].members) label += (label.empty() ? "" : "\\n") + PodName(engine, m, i);
    out << "  g" << g << " [label=\"" << label << "\"];\n";
  }
  for (size_t f = 0; f < groups.size(); ++f) {
    for (size_t t = 0; t < groups.size(); ++t) {
      std::string label;
      for (size_t p = 0; p < m.ports().size(); ++p) {
        const char cell = Cell(m, p, groups[f], groups[t], f == t);
        if (cell == kCellAllowed || cell == kCellOnlyV4 || cell == kCellOnlyV6) {
          label += (label.empty() ? "" : ", ") + m.ports()[p].ToString();
          if (cell == kCellOnlyV4) label += " (IPv4 only)";
          if (cell == kCellOnlyV6) label += " (IPv6 only)";
        }
      }
      if (!label.empty()) out << "  g" << f << " -> g" << t << " [label=\"" << label << "\"];\n";
    }
  }
  out << "}\n";
}

}  // namespace

char MatrixCell(const Matrix& matrix, size_t port, size_t from, size_t to) {
  if (matrix.FamiliesDiffer(port, from, to)) {
    return matrix.AllowedOnly(port, from, to) == IpFamily::kV4 ? kCellOnlyV4 : kCellOnlyV6;
  }
  return matrix.Allowed(port, from, to) ? kCellAllowed : kCellDenied;
}

std::string CellLegend(bool per_family, bool probe) {
  const auto quoted = [](char c) { return std::string("\"") + c + "\""; };
  std::string out = quoted(kCellAllowed) + " allowed, " + quoted(kCellDenied) + " denied, " +
                    quoted(kCellSelf) + " the pod itself";
  if (per_family) {
    out += ".\n" + quoted(kCellOnlyV4) + " allowed over IPv4 only, " + quoted(kCellOnlyV6) +
           " over IPv6 only (dual-stack pods; denied over the other family)";
  }
  if (probe) {
    out += "; " + quoted(kCellDiffers) + " after a cell: measured so, the engine expected otherwise";
  }
  return out;
}

std::vector<PodGroup> GroupPods(const Matrix& matrix, const std::vector<size_t>& indices) {
  std::vector<PodGroup> groups;
  for (const size_t i : indices) {
    bool placed = false;
    for (PodGroup& g : groups) {
      if (Twins(matrix, indices, g.members.front(), i)) {
        g.members.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({{i}});
  }
  return groups;
}

void RenderMatrix(const policy::Engine& engine, const Matrix& matrix, MatrixFormat format,
                  const std::vector<size_t>& visible, std::ostream& out) {
  switch (format) {
    case MatrixFormat::kTable:
      Table(engine, matrix, visible, out);
      break;
    case MatrixFormat::kDot:
      Dot(engine, matrix, visible, out);
      break;
    default:
      Records(engine, matrix, visible, format, out);
      break;
  }
}

}  // namespace netpol::cli
