// Golden files: compare output with a checked-in file, or rewrite it.
//
//   EXPECT_GOLDEN("cli/testdata/matrix_guide.golden", output);
//
// With NETPOL_UPDATE_GOLDEN=1 in the environment the file is (re)written and the
// check passes; review the diff before committing. Paths are relative to tests/.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace netpol::testing {

// The repository root (NETPOL_SOURCE_DIR, set by ctest), for test data.
std::string SourceDir();
std::string ReadFileOrDie(const std::string& path);

::testing::AssertionResult MatchesGolden(const std::string& relative_path, const std::string& actual);

}  // namespace netpol::testing

#define EXPECT_GOLDEN(path, actual) EXPECT_TRUE(::netpol::testing::MatchesGolden(path, actual))
