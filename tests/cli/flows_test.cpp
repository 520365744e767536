// `netpol flows` reads what an agent sends: lines whose fields have other types
// than expected are printed as well as they can be, never an exception.
#include <gtest/gtest.h>
#include <httplib.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/app.h"

namespace netpol {
namespace {

TEST(FlowsTest, FieldsOfOtherTypesDoNotThrow) {
  httplib::Server agent;
  agent.Get("/flows", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        R"({"time":"12:00:01","node":"node-1","direction":"ingress","verdict":"denied",)"
        R"("src":{"namespace":"shop","pod":"web","ip":"198.18.3.1"},"dst":{"ip":"198.18.3.2"},)"
        R"("protocol":"TCP","port":3306,"policies":["shop/db-deny"]})"
        "\n"
        R"({"time":5,"node":null,"verdict":["x"],"src":"web","dst":{"pod":7,"ip":1},"port":"http",)"
        R"("policies":[1,"shop/a"],"policy":{},"rule":2})"
        "\n",
        "application/json");
  });
  const int port = agent.bind_to_any_port("127.0.0.1");  // listening from here on
  std::thread serve([&] { agent.listen_after_bind(); });
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const char* argv[] = {"netpol", "flows", "--agent", url.c_str()};
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  const int code = cli::Run(4, argv, in, out, err);
  agent.stop();
  serve.join();
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_EQ(out.str(),
            "12:00:01 node-1 ingress DENIED shop/web 198.18.3.1 -> 198.18.3.2 TCP/3306 (isolated by "
            "shop/db-deny)\n"
            "   allowed ? -> / ?  (isolated by shop/a) (by  )\n");
}

}  // namespace
}  // namespace netpol
