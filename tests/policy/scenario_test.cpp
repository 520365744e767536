// Runs every tests/scenarios/*.scenario file against the engine (see
// testutil/scenario.h for the format). One test per file.
#include "testutil/scenario.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "testutil/golden.h"

namespace netpol::testing {
namespace {

class ScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioTest, Passes) {
  const std::string path = SourceDir() + "/tests/scenarios/" + GetParam();
  const std::string text = ReadFileOrDie(path);
  ASSERT_FALSE(text.empty());
  for (const std::string& failure : RunScenario(text, "tests/scenarios/" + GetParam())) {
    ADD_FAILURE() << failure;
  }
}

TEST(ScenarioFilesTest, AtLeastTheGuideExists) {
  const auto files = ListScenarioFiles();
  EXPECT_NE(std::find(files.begin(), files.end(), "guide.scenario"), files.end());
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(ListScenarioFiles()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.substr(0, param_info.param.find('.'));
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The runner itself must catch wrong expectations, or a green run proves nothing.
TEST(ScenarioRunnerTest, ReportsWrongExpectations) {
  const std::string text = R"(apply
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c}]}
status: {podIP: 198.18.0.2}

check default/a -> default/b 80 deny
check default/a -> default/b 80 allow ingress=denied

reject
apiVersion: v1
kind: Pod
metadata: {name: c}
spec: {containers: [{name: c}]}
----
no such message

matrix 80
----
default/a -> -
)";
  const std::vector<std::string> failures = RunScenario(text, "inline");
  ASSERT_EQ(failures.size(), 4u) << ::testing::PrintToString(failures);
  EXPECT_NE(failures[0].find("got allow"), std::string::npos);
  EXPECT_NE(failures[1].find("ingress is not-isolated, want denied"), std::string::npos);
  EXPECT_NE(failures[2].find("input was accepted"), std::string::npos);
  EXPECT_NE(failures[3].find("matrix: got"), std::string::npos);
}

}  // namespace
}  // namespace netpol::testing
