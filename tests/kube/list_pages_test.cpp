// Client::ListObjects fetches and decodes the next page while the caller
// applies the current one: pages still reach the caller whole and in order,
// the fetcher never runs more than two pages ahead, and a page that fails
// ends the list with its error after the pages before it, none after.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"

namespace netpol::kube {
namespace {

using std::chrono::milliseconds;

constexpr int kPages = 6;

// Serves /api/v1/namespaces in kPages pages of two namespaces each (tokens
// "1".."5"); page `fail_page` (if any) answers 500.
class PagedServer {
 public:
  explicit PagedServer(int fail_page = -1) : fail_page_(fail_page) {
    server_.Get("/api/v1/namespaces", [this](const httplib::Request& req, httplib::Response& res) {
      const int page = req.has_param("continue") ? std::stoi(req.get_param_value("continue")) : 0;
      {
        std::lock_guard lock(mu_);
        requested_.push_back(page);
      }
      if (page == fail_page_) {
        res.status = 500;
        res.set_content(
            R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"boom","code":500})",
            "application/json");
        return;
      }
      Json list = {{"kind", "NamespaceList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "7"}}}};
      if (page + 1 < kPages) list["metadata"]["continue"] = std::to_string(page + 1);
      list["items"] = Json::array();
      for (int i = 0; i < 2; ++i) {
        list["items"].push_back(
            {{"metadata", {{"name", "ns-" + std::to_string(page * 2 + i)}, {"resourceVersion", "7"}}}});
      }
      res.set_content(list.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~PagedServer() {
    server_.stop();
    thread_.join();
  }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<int> requested() {
    std::lock_guard lock(mu_);
    return requested_;
  }

 private:
  int fail_page_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> requested_;
};

ClientConfig Api(const std::string& server) {
  ClientConfig config;
  config.server = server;
  return config;
}

constexpr api::ApiKind kNamespaces{"Namespace", "v1"};

TEST(ListPagesTest, TheNextPageIsFetchedWhileTheCallerWorks) {
  PagedServer server;
  auto client = Client::Create(Api(server.address()));
  ASSERT_TRUE(client.ok()) << client.error().message();
  std::vector<std::string> names;
  std::vector<size_t> requested_while_applying;
  const Status listed =
      (*client)->ListObjects("/api/v1/namespaces", kNamespaces, [&](api::ApiListPage& page) {
        for (const api::ApiItem& item : page.items) names.push_back(item.name);
        // Slow work on each page: the fetcher gets the next pages meanwhile,
        // but not more than two ahead of this one.
        std::this_thread::sleep_for(milliseconds(150));
        requested_while_applying.push_back(server.requested().size());
      });
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  std::vector<std::string> want;
  for (int i = 0; i < kPages * 2; ++i) want.push_back("ns-" + std::to_string(i));
  EXPECT_EQ(names, want);
  EXPECT_EQ(server.requested(), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  ASSERT_EQ(requested_while_applying.size(), static_cast<size_t>(kPages));
  // While page n is applied, pages n + 1 and n + 2 wait and page n + 3 is
  // fetched (its push waits for room): pages 0 to n + 3 requested, no more.
  for (size_t n = 0; n < requested_while_applying.size(); ++n) {
    EXPECT_GE(requested_while_applying[n], std::min<size_t>(n + 3, kPages)) << "page " << n;
    EXPECT_LE(requested_while_applying[n], std::min<size_t>(n + 4, kPages)) << "page " << n;
  }
}

TEST(ListPagesTest, AFailedPageEndsTheListAfterThePagesBeforeIt) {
  PagedServer server(/*fail_page=*/3);
  auto client = Client::Create(Api(server.address()));
  ASSERT_TRUE(client.ok()) << client.error().message();
  std::vector<std::string> names;
  const Status listed =
      (*client)->ListObjects("/api/v1/namespaces", kNamespaces, [&](api::ApiListPage& page) {
        for (const api::ApiItem& item : page.items) names.push_back(item.name);
      });
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable) << listed.error().message();
  EXPECT_NE(listed.error().message().find("boom"), std::string::npos) << listed.error().message();
  EXPECT_EQ(names, (std::vector<std::string>{"ns-0", "ns-1", "ns-2", "ns-3", "ns-4", "ns-5"}));
  // Nothing is asked for after the failed page.
  EXPECT_EQ(server.requested(), (std::vector<int>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace netpol::kube
