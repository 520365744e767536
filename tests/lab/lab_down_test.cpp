// `netpol lab down` reads a journal anyone may have edited: text that is not
// what it expects is skipped, never an exception (no root needed: a journal
// that names no namespace touches nothing).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "lab/lab.h"

namespace netpol::lab {
namespace {

TEST(LabDownTest, AJournalWithGarbageIsReadWithoutThrowing) {
  char dir[] = "/tmp/netpol-lab-down-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::ofstream(std::string(dir) + "/journal")
      << "agent not-a-pid\nagent 99999999999999999999\nagent -5\nagent\nstray line\n";
  std::ofstream(std::string(dir) + "/control-plane.pid") << "garbage\n";
  std::ostringstream progress;
  LabOptions options;
  options.dir = dir;
  const Status down = LabDown(options, progress);
  EXPECT_TRUE(down.ok()) << down.error().message();
  EXPECT_EQ(progress.str(), "lab down\n");
  EXPECT_FALSE(std::filesystem::exists(std::string(dir) + "/journal"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace netpol::lab
