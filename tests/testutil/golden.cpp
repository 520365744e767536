#include "testutil/golden.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace netpol::testing {

std::string SourceDir() {
  const char* dir = std::getenv("NETPOL_SOURCE_DIR");
  return dir != nullptr ? dir : NETPOL_SOURCE_DIR_DEFAULT;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

::testing::AssertionResult MatchesGolden(const std::string& relative_path, const std::string& actual) {
  const std::string path = SourceDir() + "/tests/" + relative_path;
  const char* update = std::getenv("NETPOL_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    return ::testing::AssertionSuccess() << "updated " << path;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ::testing::AssertionFailure()
           << "missing golden file " << path << " (run with NETPOL_UPDATE_GOLDEN=1 to create it)";
  }
  std::ostringstream expected;
  expected << in.rdbuf();
  if (expected.str() == actual) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "output differs from " << path << " (NETPOL_UPDATE_GOLDEN=1 rewrites it)\n--- want\n"
         << expected.str() << "--- got\n"
         << actual;
}

}  // namespace netpol::testing
