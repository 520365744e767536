// The lab API server driven by a client other than kubectl and netpol's own:
// the official JavaScript client, @kubernetes/client-node (issue 15 item 16;
// it refused the lab's plain HTTP and got 415 for its JSON patches). What it
// does is in tests/lab/client-node/drive.mjs; `npm ci --prefix
// tests/lab/client-node` (scripts/install-deps.sh) installs it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lab/apiserver.h"
#include "lab/internal/pki.h"

namespace netpol::lab {
namespace {

namespace fs = std::filesystem;

TEST(ClientNodeTest, TheOfficialJavaScriptClientWorksAgainstTheLab) {
  const char* root = std::getenv("NETPOL_SOURCE_DIR");
  const std::string dir = std::string(root != nullptr ? root : ".") + "/tests/lab/client-node";
  std::error_code ec;
  const bool installed = fs::exists(dir + "/node_modules/@kubernetes/client-node", ec);
  if (!installed || std::system("command -v node >/dev/null 2>&1") != 0) {
    const char* ci = std::getenv("CI");
    const std::string missing =
        "node or @kubernetes/client-node is not installed (npm ci --prefix " + dir + ")";
    if (ci != nullptr && std::string(ci) == "true") FAIL() << missing;
    GTEST_SKIP() << missing;
  }
  const Result<internal::Pki> pki = internal::MakePki();
  ASSERT_TRUE(pki.ok());
  const std::string token = "client-node-test-token";
  auto server = ApiServer::Start(
      {.nodes = {"node-1"}, .token = token, .tls_cert = pki->server_cert, .tls_key = pki->server_key});
  ASSERT_TRUE(server.ok()) << server.error().message();
  char tmp[] = "/tmp/netpol-client-node-XXXXXX";
  ASSERT_NE(::mkdtemp(tmp), nullptr);
  const std::string kubeconfig = std::string(tmp) + "/kubeconfig";
  std::ofstream(kubeconfig)
      << "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: " << (*server)->url()
      << "\n    certificate-authority-data: " << internal::Base64(pki->ca_cert)
      << "\nusers:\n- name: lab\n  user:\n    token: " << token
      << "\ncontexts:\n- name: lab\n  context: {cluster: lab, user: lab}\n"
         "current-context: lab\n";
  std::string output;
  FILE* p = ::popen(("node " + dir + "/drive.mjs " + kubeconfig + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0) output.append(buffer, n);
  const int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "ok\n");
  fs::remove_all(tmp, ec);
}

}  // namespace
}  // namespace netpol::lab
