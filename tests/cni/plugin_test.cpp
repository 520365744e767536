// The CNI plugin's protocol surface without root: VERSION, configuration and
// environment errors with the spec's codes, verbs by version, registrations.
#include "cni/plugin.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cni/agent_client.h"
#include "cni/registry.h"
#include "testutil/error.h"

namespace netpol::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testutil::IsError;

const char* kConf =
    R"({"cniVersion":"1.0.0","name":"netpol","type":"netpol-cni","stateDir":"/nonexistent/netpol",
                        "ipam":{"ranges":["198.18.1.0/24"]}})";

Invocation Call(std::string command, std::string config = kConf) {
  return {std::move(command), "c1", "/run/netns/none", "eth0", "", "", std::move(config)};
}

TEST(CniPluginTest, VersionListsWhatItSpeaks) {
  const Outcome out = RunPlugin(Call("VERSION", R"({"cniVersion":"1.0.0"})"));
  EXPECT_EQ(out.exit_code, 0);
  const json v = json::parse(out.stdout_text);
  EXPECT_EQ(v["cniVersion"], "1.0.0");
  EXPECT_EQ(v["supportedVersions"], json({"0.4.0", "1.0.0", "1.1.0"}));
  EXPECT_EQ(json::parse(RunPlugin(Call("VERSION", "")).stdout_text)["cniVersion"], "1.1.0");
}

struct ErrorCase {
  const char* name;
  Invocation call;
  int code;
};

TEST(CniPluginTest, ErrorsCarryTheSpecCodes) {
  Invocation bad_id = Call("ADD");
  bad_id.container_id = "-starts-with-dash";
  Invocation bad_ifname = Call("ADD");
  bad_ifname.ifname = "this-name-is-too-long";
  Invocation no_netns = Call("ADD");
  no_netns.netns = "";
  const std::vector<ErrorCase> cases = {
      {"not json", Call("ADD", "{not json"), kDecodeFailure},
      {"no version", Call("ADD", R"({"name":"n","type":"netpol-cni"})"), kInvalidConfig},
      {"unsupported version", Call("ADD", R"({"cniVersion":"0.2.0","name":"n","type":"netpol-cni"})"),
       kIncompatibleVersion},
      {"no name", Call("ADD", R"({"cniVersion":"1.0.0","type":"netpol-cni"})"), kInvalidConfig},
      {"bad range", Call("ADD", R"({"cniVersion":"1.0.0","name":"n","ipam":{"ranges":["198.18.1.0/99"]}})"),
       kInvalidConfig},
      {"bad container id", bad_id, kInvalidEnvironment},
      {"bad ifname", bad_ifname, kInvalidEnvironment},
      {"no netns", no_netns, kInvalidEnvironment},
      {"unknown command", Call("FROB"), kInvalidEnvironment},
      {"GC before 1.1.0", Call("GC"), kIncompatibleVersion},
      {"CHECK without prevResult", Call("CHECK"), kInvalidConfig},
      {"routed ADD without ranges", Call("ADD", R"({"cniVersion":"1.0.0","name":"n","type":"netpol-cni"})"),
       kInvalidConfig},
  };
  for (const ErrorCase& c : cases) {
    const Outcome out = RunPlugin(c.call);
    EXPECT_NE(out.exit_code, 0) << c.name;
    const json error = json::parse(out.stdout_text);
    EXPECT_EQ(error["code"], c.code) << c.name << ": " << out.stdout_text;
    EXPECT_FALSE(error["msg"].get<std::string>().empty()) << c.name;
    EXPECT_TRUE(error.contains("cniVersion")) << c.name;
  }
}

TEST(CniPluginTest, ChainedAddWithoutAddressesIsRefused) {
  const Outcome out = RunPlugin(Call(
      "ADD",
      R"({"cniVersion":"1.0.0","name":"n","type":"netpol-cni","prevResult":{"cniVersion":"1.0.0","ips":[]}})"));
  EXPECT_EQ(json::parse(out.stdout_text)["code"], kInvalidConfig);
}

TEST(CniRegistryTest, EncodeDecodeRoundTrips) {
  PodRegistration pod{{"c1", "eth0"},
                      "shop",
                      "db-0",
                      "u-1",
                      {*IpAddress::Parse("198.18.1.2"), *IpAddress::Parse("2001:2::2")},
                      "np0123456789ab",
                      "/run/netns/x",
                      false};
  const Result<PodRegistration> back = DecodeRegistration(EncodeRegistration(pod));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, pod);
  EXPECT_THAT(DecodeRegistration(R"({"containerID":"c"})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("invalid pod registration: ")));
  EXPECT_THAT(DecodeRegistration(R"({"containerID":"c","ifname":"e","ips":["nope"]})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("registration ips: ")));
}

TEST(CniRegistryTest, AnAbsentAgentIsUnavailableNotSilentlyOk) {
  PodRegistration pod;
  pod.owner = {"c1", "eth0"};
  const Status s =
      ConfirmWithAgent("/nonexistent/agent.sock", AgentOp::kAdd, pod, std::chrono::milliseconds(100));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
}

// The agent opens the plugin's allocator from the same configuration the
// runtime gives the plugin: a conf or a conflist with a netpol-cni entry.
TEST(OpenNetworkIpamTest, FromAConfOrAConflistAndNotInChainedMode) {
  char dir[] = "/tmp/netpol-ipam-conf-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string state = dir;
  const nlohmann::json entry = {
      {"type", "netpol-cni"}, {"stateDir", state}, {"ipam", {{"ranges", {"198.18.1.0/24"}}}}};
  struct Case {
    const char* what;
    std::string config;
    std::optional<ErrorCode> error;  // nullopt: opens
  };
  nlohmann::json conf = entry;
  conf["name"] = "netpol";
  conf["cniVersion"] = "1.0.0";
  const nlohmann::json conflist = {
      {"cniVersion", "1.0.0"}, {"name", "netpol"}, {"plugins", {{{"type", "bridge"}}, entry}}};
  nlohmann::json chained = conflist;
  chained["plugins"][1].erase("ipam");
  const nlohmann::json other = {
      {"cniVersion", "1.0.0"}, {"name", "netpol"}, {"plugins", {{{"type", "bridge"}}}}};
  nlohmann::json bad_range = conf;
  bad_range["ipam"]["ranges"] = {"198.18.1.0/33"};
  const std::vector<Case> cases = {
      {"a conf", conf.dump(), std::nullopt},
      {"a conflist", conflist.dump(), std::nullopt},
      {"chained mode (no ranges)", chained.dump(), ErrorCode::kNotFound},
      {"a conflist without netpol-cni", other.dump(), ErrorCode::kNotFound},
      {"a bad range", bad_range.dump(), ErrorCode::kInvalidArgument},
      {"not JSON", "{", ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    Result<Ipam> ipam = OpenNetworkIpam(c.config);
    if (c.error) {
      ASSERT_FALSE(ipam.ok()) << c.what;
      EXPECT_EQ(ipam.error().code(), *c.error) << c.what << ": " << ipam.error().message();
      continue;
    }
    ASSERT_TRUE(ipam.ok()) << c.what << ": " << ipam.error().message();
    // The plugin's own directory: stateDir/ipam/<network name>.
    const auto reserved = ipam->Allocate(ReservationOwner("shop", "db-0"));
    ASSERT_TRUE(reserved.ok()) << c.what;
    EXPECT_TRUE(std::filesystem::exists(state + "/ipam/netpol/" + (*reserved)[0].ToString())) << c.what;
  }
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace netpol::cni
