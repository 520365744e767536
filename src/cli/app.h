// The `netpol` command line: parsing, dispatch, exit codes.
//
//   int main(int argc, char** argv) {
//     return netpol::cli::Run(argc, argv, std::cin, std::cout, std::cerr);
//   }
//
// Streams are parameters so tests run commands in-process and compare output
// with golden files. Exit codes: 0 success (allowed, valid, no findings);
// 1 a negative answer (denied, invalid manifests, lint findings); 2 no answer
// (usage error, unreadable or invalid input).
#pragma once

#include <iosfwd>

namespace netpol::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNegative = 1;
inline constexpr int kExitError = 2;

int Run(int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace netpol::cli
