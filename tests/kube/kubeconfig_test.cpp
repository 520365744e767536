// Finding the API server as kubectl does: kubeconfig files (merged, contexts,
// relative paths, inline data) and a pod's service account; and the token
// read again before each request.
#include "kube/kubeconfig.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "testutil/error.h"

namespace netpol::kube {
namespace {

using ::testing::HasSubstr;
using testutil::IsError;

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("netpol-kubeconfig-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "certs");
    ::unsetenv("KUBECONFIG");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
  }
  void TearDown() override {
    ::unsetenv("KUBECONFIG");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    fs::remove_all(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

constexpr const char* kMain = R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod-cluster
  cluster:
    server: https://198.18.0.1:6443
    certificate-authority: certs/ca.crt
- name: lab
  cluster:
    server: http://127.0.0.1:8080
    insecure-skip-tls-verify: true
contexts:
- name: prod
  context: {cluster: prod-cluster, user: admin}
- name: lab
  context: {cluster: lab, user: robot}
users:
- name: admin
  user:
    token: s3cret
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
)";

TEST_F(KubeconfigTest, CurrentContextWithRelativePathsAndInlineData) {
  const std::string path = Write("main/config", kMain);
  Result<ClientConfig> c = LoadKubeconfig({.path = path});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://198.18.0.1:6443");
  EXPECT_EQ(c->ca_file, (dir_ / "main/certs/ca.crt").string());  // relative to the file
  EXPECT_EQ(c->bearer_token, "s3cret");
  EXPECT_EQ(c->client_cert_data, "cert");  // base64 decoded
  EXPECT_EQ(c->client_key_data, "key");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
}

TEST_F(KubeconfigTest, FilesInKubeconfigMergeFirstWins) {
  // The second file has its own current-context and a second "prod-cluster":
  // both lose to the first file; its user "robot" is found.
  const std::string first = Write("a/config", kMain);
  const std::string second = Write("b/config", R"(
current-context: lab
clusters:
- name: prod-cluster
  cluster: {server: https://198.18.9.9:6443}
users:
- name: robot
  user: {tokenFile: robot.token}
)");
  ::setenv("KUBECONFIG", (first + ":" + (dir_ / "missing").string() + ":" + second).c_str(), 1);
  Result<ClientConfig> c = LoadKubeconfig({});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://198.18.0.1:6443");
  Result<ClientConfig> lab = LoadKubeconfig({.context = "lab"});
  ASSERT_TRUE(lab.ok()) << lab.error().message();
  EXPECT_EQ(lab->server, "http://127.0.0.1:8080");
  EXPECT_TRUE(lab->insecure_skip_tls_verify);
  EXPECT_EQ(lab->bearer_token_file, (dir_ / "b/robot.token").string());
}

TEST_F(KubeconfigTest, ProblemsAreNamed) {
  const std::string path = Write("config", kMain);
  Result<ClientConfig> missing = LoadKubeconfig({.path = path, .context = "staging"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("\"staging\""), std::string::npos);
  const std::string nope = (dir_ / "nope").string();
  EXPECT_THAT(LoadKubeconfig({.path = nope}),
              IsError(ErrorCode::kNotFound, HasSubstr("cannot read " + nope)));
  const std::string exec = Write("exec", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://198.18.0.1"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {exec: {command: aws}}}]
)");
  Result<ClientConfig> plugin = LoadKubeconfig({.path = exec});
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.error().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(plugin.error().message().find("exec"), std::string::npos);
  const std::string broken = Write("broken", "clusters: [\n");
  Result<ClientConfig> unreadable = LoadKubeconfig({.path = broken});
  EXPECT_THAT(unreadable, IsError(ErrorCode::kInvalidArgument, HasSubstr(broken)));
  // Entries whose names are not text are passed over, not thrown at (issue 15 item 4).
  const std::string odd = Write("odd", R"(
current-context: c
clusters: [{name: 5, cluster: {}}, {name: [k], cluster: {}}]
contexts: [{name: true}, {name: c, context: {cluster: k}}]
)");
  Result<ClientConfig> odd_names = LoadKubeconfig({.path = odd});
  ASSERT_FALSE(odd_names.ok());
  EXPECT_EQ(odd_names.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(odd_names.error().message().find("cluster \"k\""), std::string::npos)
      << odd_names.error().message();
}

TEST_F(KubeconfigTest, InClusterFromTheServiceAccount) {
  EXPECT_EQ(InClusterConfig(dir_.string()).error().code(), ErrorCode::kNotFound);  // no env
  Write("var/run/secrets/kubernetes.io/serviceaccount/token", "tok\n");
  Write("var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "pem");
  ::setenv("KUBERNETES_SERVICE_HOST", "2001:2::1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  Result<ClientConfig> c = InClusterConfig(dir_.string());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://[2001:2::1]:443");
  EXPECT_EQ(c->ca_file, (dir_ / "var/run/secrets/kubernetes.io/serviceaccount/ca.crt").string());
  EXPECT_EQ(c->bearer_token_file, (dir_ / "var/run/secrets/kubernetes.io/serviceaccount/token").string());
}

// A rotated token is used from the next request on.
TEST_F(KubeconfigTest, TheTokenFileIsReadBeforeEveryRequest) {
  httplib::Server server;
  std::string seen;
  std::mutex mu;
  server.Get("/version", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    seen = req.get_header_value("Authorization");
    res.set_content("{}", "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  const std::string token = Write("token", "first\n");
  ClientConfig config = Api("http://127.0.0.1:" + std::to_string(port));
  config.bearer_token_file = token;
  Result<std::unique_ptr<Client>> client = Client::Create(config);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Get("/version").ok());
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen, "Bearer first");
  }
  Write("token", "second");
  ASSERT_TRUE((*client)->Get("/version").ok());
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen, "Bearer second");
  }
  server.stop();
  serving.join();
}

}  // namespace
}  // namespace netpol::kube

namespace netpol::kube {
namespace {

// HTTPS as a real API server speaks it: a CA, a server certificate for
// 127.0.0.1, and a client certificate the server requires.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("netpol-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string script =
        "set -e; cd " + d +
        "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "
        "/CN=netpol-test-ca"
        " 2>/dev/null"
        "; openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 "
        "2>/dev/null"
        "; printf 'subjectAltName=IP:127.0.0.1' > san"
        "; openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1"
        " -extfile san 2>/dev/null"
        "; openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=netpold "
        "2>/dev/null"
        "; openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1"
        " 2>/dev/null"
        "; openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 1 -subj /CN=other"
        " 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed";
    server_ = std::make_unique<httplib::SSLServer>((d + "/server.crt").c_str(), (d + "/server.key").c_str(),
                                                   (d + "/ca.crt").c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"gitVersion":"v1.30.0"})", "application/json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    serving_ = std::thread([this] { server_->listen_after_bind(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (serving_.joinable()) serving_.join();
    fs::remove_all(dir_);
  }
  ClientConfig Base() const {
    ClientConfig c = Api("https://127.0.0.1:" + std::to_string(port_));
    c.request_timeout = std::chrono::milliseconds(5000);
    return c;
  }
  std::string File(const std::string& name) const { return (dir_ / name).string(); }
  std::string Pem(const std::string& name) const {
    std::ifstream in(dir_ / name);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static Status Version(const ClientConfig& config) {
    Result<std::unique_ptr<Client>> client = Client::Create(config);
    if (!client) return std::move(client).error();
    Result<Json> v = (*client)->Get("/version");
    if (!v) return std::move(v).error();
    return Ok();
  }

  fs::path dir_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread serving_;
  int port_ = 0;
};

TEST_F(TlsTest, VerifiesTheServerAndPresentsTheClientCertificate) {
  ClientConfig files = Base();
  files.ca_file = File("ca.crt");
  files.client_cert_file = File("client.crt");
  files.client_key_file = File("client.key");
  EXPECT_TRUE(Version(files).ok()) << Version(files).error().message();

  ClientConfig inline_data = Base();  // as certificate-authority-data and client-*-data give them
  inline_data.ca_data = Pem("ca.crt");
  inline_data.client_cert_data = Pem("client.crt");
  inline_data.client_key_data = Pem("client.key");
  EXPECT_TRUE(Version(inline_data).ok()) << Version(inline_data).error().message();

  ClientConfig no_client_cert = files;
  no_client_cert.client_cert_file.clear();
  no_client_cert.client_key_file.clear();
  // The server requires one: the handshake fails (how depends on when the
  // server's alert arrives), not the request.
  EXPECT_THAT(Version(no_client_cert), IsError(ErrorCode::kUnavailable, HasSubstr("GET /version: ")));

  ClientConfig wrong_ca = files;
  wrong_ca.ca_file = File("other.crt");
  // The server's certificate does not chain to it.
  EXPECT_THAT(Version(wrong_ca), IsError(ErrorCode::kUnavailable, HasSubstr("certificate")));

  ClientConfig insecure = wrong_ca;  // only when asked for
  insecure.insecure_skip_tls_verify = true;
  EXPECT_TRUE(Version(insecure).ok()) << Version(insecure).error().message();
}

}  // namespace
}  // namespace netpol::kube
