// The CLI, run in-process, against golden files of its whole output (stdout,
// stderr, exit code). NETPOL_UPDATE_GOLDEN=1 rewrites them; review the diff.
#include "testutil/golden.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>

#include "cli/app.h"

namespace netpol::cli {
namespace {

struct Case {
  const char* golden;
  std::vector<std::string> args;
  int exit_code;
  std::string stdin_text = "";
};

// Keeps test listings short: gtest would otherwise print the case's bytes.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.golden;
}

std::string RunCli(const Case& c, int& exit_code) {
  std::vector<const char*> argv = {"netpol"};
  for (const auto& a : c.args) argv.push_back(a.c_str());
  std::istringstream in(c.stdin_text);
  std::ostringstream out;
  std::ostringstream err;
  exit_code = Run(static_cast<int>(argv.size()), argv.data(), in, out, err);
  std::string cmd = "$ netpol";
  for (const auto& a : c.args) cmd += " " + a;
  return cmd + "\nexit: " + std::to_string(exit_code) + "\n--- stdout\n" + out.str() + "--- stderr\n" +
         err.str();
}

class CliGoldenTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { ASSERT_EQ(::chdir(testing::SourceDir().c_str()), 0); }
};

TEST_P(CliGoldenTest, MatchesGolden) {
  const Case& c = GetParam();
  int exit_code = -1;
  const std::string output = RunCli(c, exit_code);
  EXPECT_EQ(exit_code, c.exit_code) << output;
  EXPECT_GOLDEN(std::string("cli/testdata/") + c.golden + ".golden", output);
}

const std::string kApp = "examples/wordpress/app.yaml";
const std::string kDeny = "examples/wordpress/policy-deny-all.yaml";
const std::string kGuide = "examples/wordpress";
const std::string kDual = "tests/cli/testdata/dual_stack.yaml";
const std::string kCnpLint = "tests/cli/testdata/lint_cluster.yaml";

INSTANTIATE_TEST_SUITE_P(
    Commands, CliGoldenTest,
    ::testing::Values(
        Case{"help", {"--help"}, 0}, Case{"check_help", {"check", "--help"}, 0},
        Case{"usage_error", {"check", "-f", kGuide, "--from", "client"}, 2},
        Case{"validate_guide", {"validate", "-f", kGuide}, 0},
        Case{"validate_invalid", {"validate", "-f", "tests/cli/testdata/invalid.yaml"}, 1},
        Case{"validate_stdin_yaml",
             {"validate", "-f", "-", "-n", "team-a", "-o", "yaml"},
             0,
             "kind: NetworkPolicy\napiVersion: networking.k8s.io/v1\nmetadata: {name: "
             "p}\nspec: {podSelector: {}}\n"},
        Case{"validate_missing_file", {"validate", "-f", "no/such/file.yaml"}, 1},
        Case{"matrix_step1", {"matrix", "-f", kApp}, 0},
        Case{"matrix_step2", {"matrix", "-f", kApp, "-f", kDeny}, 0},
        Case{"matrix_step3", {"matrix", "-f", kGuide}, 0},
        Case{"matrix_json", {"matrix", "-f", kGuide, "--port", "3306", "-o", "json"}, 0},
        Case{
            "matrix_csv", {"matrix", "-f", kGuide, "--port", "3306/tcp", "--port", "53/UDP", "-o", "csv"}, 0},
        Case{"matrix_yaml", {"matrix", "-f", kGuide, "--port", "80", "-o", "yaml"}, 0},
        Case{"matrix_dot", {"matrix", "-f", kGuide, "-o", "dot"}, 0},
        Case{"matrix_invalid_input", {"matrix", "-f", "tests/cli/testdata/invalid.yaml"}, 2},
        Case{"check_allowed",
             {"check", "-f", kGuide, "--from", "np-test-wordpress-0", "--to", "np-test-mariadb-0", "--port",
              "3306"},
             0},
        Case{"check_denied",
             {"check", "-f", kGuide, "--from", "default/client", "--to", "np-test-mariadb-0", "--port",
              "mysql"},
             1},
        Case{"check_json",
             {"check", "-f", kGuide, "--from", "client", "--to", "np-test-wordpress-0", "--port", "80", "-o",
              "json"},
             1},
        Case{
            "check_external",
            {"check", "-f", kGuide, "--from", "np-test-wordpress-0", "--to", "203.0.113.10", "--port", "443"},
            0},
        Case{"check_unknown_pod",
             {"check", "-f", kGuide, "--from", "nope", "--to", "client", "--port", "80"},
             2},
        Case{"explain_guide", {"explain", "-f", kGuide}, 0}, Case{"lint_guide", {"lint", "-f", kGuide}, 0},
        Case{"lint_findings", {"lint", "-f", "tests/cli/testdata/lint.yaml"}, 1},
        // Issue 15 item 9: words and exit codes a new user met.
        Case{"unknown_command", {"bogus"}, 2}, Case{"unknown_lab_command", {"lab", "bogus"}, 2},
        Case{"check_missing_port",
             {"check", "-f", kGuide, "--from", "client", "--to", "np-test-mariadb-0"},
             2},
        Case{"matrix_unknown_namespace",
             {"matrix", "-f", "tests/cli/testdata/lint.yaml", "-n", "nosuchns"},
             2},
        Case{"validate_empty_stdin", {"validate", "-f", "-"}, 2, ""},
        Case{"lint_one_policy", {"lint", "-f", "tests/cli/testdata/one_policy.yaml"}, 0},
        Case{"lint_empty_namespace", {"lint", "-f", "tests/cli/testdata/empty_namespace.yaml"}, 1},
        Case{"explain_named_ports", {"explain", "-f", "tests/cli/testdata/named_ports.yaml"}, 0},
        // Issue 15 item 1: dual-stack pods, judged per family in every command.
        Case{"check_dual_stack",
             {"check", "-f", kDual, "--from", "shop/client", "--to", "shop/web", "--port", "80"},
             1},
        Case{
            "check_dual_stack_json",
            {"check", "-f", kDual, "--from", "shop/client", "--to", "shop/web", "--port", "80", "-o", "json"},
            1},
        Case{"check_dual_stack_agree",
             {"check", "-f", kDual, "--from", "shop/client", "--to", "shop/api", "--port", "80"},
             0},
        Case{"check_dual_stack_ipv6",
             {"check", "-f", kDual, "--from", "shop/client6first", "--to", "2001:2:0:1::5", "--port", "80"},
             1},
        Case{"check_dual_stack_ipv4",
             {"check", "-f", kDual, "--from", "shop/client6first", "--to", "198.18.1.5", "--port", "80"},
             0},
        Case{"matrix_dual_stack", {"matrix", "-f", kDual}, 0},
        Case{"matrix_dual_stack_csv", {"matrix", "-f", kDual, "-o", "csv"}, 0},
        Case{"matrix_dual_stack_json", {"matrix", "-f", kDual, "-o", "json"}, 0},
        Case{"matrix_dual_stack_yaml", {"matrix", "-f", kDual, "-o", "yaml"}, 0},
        Case{"matrix_dual_stack_dot", {"matrix", "-f", kDual, "-o", "dot"}, 0},
        Case{"explain_dual_stack", {"explain", "-f", kDual}, 0},
        // Issue 15 item 8: DNS judged with the engine.
        Case{"lint_dns", {"lint", "-f", "tests/cli/testdata/lint_dns.yaml"}, 1},
        // Issue 17 point 4: domainNames are judged, and said not to be enforced.
        Case{"explain_domain_names", {"explain", "-f", "tests/cli/testdata/domain_names.yaml"}, 0},
        // Issue 17 point 3: the ClusterNetworkPolicy lints, in every output format; -n
        // never hides them (they are cluster-scoped).
        Case{"lint_cluster", {"lint", "-f", kCnpLint}, 1},
        Case{"lint_cluster_table", {"lint", "-f", kCnpLint, "-o", "table"}, 1},
        Case{"lint_cluster_json", {"lint", "-f", kCnpLint, "-o", "json"}, 1},
        Case{"lint_cluster_yaml", {"lint", "-f", kCnpLint, "-o", "yaml"}, 1},
        Case{"lint_cluster_namespace", {"lint", "-f", kCnpLint, "-n", "dev"}, 1},
        Case{"lint_clean_json", {"lint", "-f", "tests/cli/testdata/one_policy.yaml", "-o", "json"}, 0},
        Case{"lint_clean_yaml", {"lint", "-f", "tests/cli/testdata/one_policy.yaml", "-o", "yaml"}, 0}),
    [](const auto& param_info) { return std::string(param_info.param.golden); });

// Installed as kubectl-netpol, the plugin names itself the way users type it.
TEST(CliTest, AsKubectlPluginUsesKubectlName) {
  const char* argv[] = {"/usr/local/bin/kubectl-netpol", "--help"};
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(cli::Run(2, argv, in, out, err), 0);
  EXPECT_NE(out.str().find("Usage: kubectl netpol [OPTIONS] SUBCOMMAND"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace netpol::cli
