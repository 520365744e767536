// The plugin and the agent speak cni/protocol.h: every request and reply comes
// back from its text as it went, the text is the one earlier versions spoke,
// and what cannot be a request is refused with a reason.
#include "cni/protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testutil/error.h"

namespace netpol::cni {
namespace {

using ::testing::HasSubstr;
using testutil::IsError;

PodRegistration Pod() {
  return {{"c1", "eth0"},
          "shop",
          "db-0",
          "uid-1",
          {*IpAddress::Parse("198.18.1.5"), *IpAddress::Parse("2001:2:0:1::5")},
          "np3f2a",
          "/proc/42/ns/net",
          false};
}

TEST(AgentProtocolTest, EveryRequestRoundTrips) {
  PodRegistration odd = Pod();
  odd.pod_name = "quote\"back\\slash\nnew line ünïcode";
  odd.chained = true;
  odd.host_interface = "";
  odd.ips.clear();
  const std::vector<AgentRequest> requests = {
      {.op = AgentOp::kPrepare, .pod_namespace = "shop", .pod_name = "db-0"},
      {.op = AgentOp::kPrepare, .pod_namespace = "", .pod_name = ""},
      {.op = AgentOp::kStage, .registration = Pod()},
      {.op = AgentOp::kAdd, .registration = Pod()},
      {.op = AgentOp::kAdd, .registration = odd},
      {.op = AgentOp::kDel, .registration = Pod()},
      {.op = AgentOp::kCheck, .registration = Pod()},
      {.op = AgentOp::kStatus},
  };
  for (const AgentRequest& request : requests) {
    const std::string line = EncodeRequest(request);
    EXPECT_EQ(line.find('\n'), std::string::npos) << "a request is one line: " << line;
    const Result<AgentRequest> back = DecodeRequest(line);
    ASSERT_TRUE(back.ok()) << line << ": " << back.error().message();
    EXPECT_EQ(*back, request) << line;
  }
}

TEST(AgentProtocolTest, EveryReplyRoundTrips) {
  for (const AgentReply& reply : {AgentReply{.ok = true}, AgentReply{.ok = false, .error = "not synced yet"},
                                  AgentReply{.ok = false, .error = ""}}) {
    const Result<AgentReply> back = DecodeReply(EncodeReply(reply));
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(*back, reply);
  }
}

TEST(AgentProtocolTest, EveryOpHasItsName) {
  for (const AgentOp op : {AgentOp::kPrepare, AgentOp::kStage, AgentOp::kAdd, AgentOp::kDel, AgentOp::kCheck,
                           AgentOp::kStatus}) {
    EXPECT_EQ(ParseOp(OpName(op)), op) << OpName(op);
  }
  EXPECT_FALSE(ParseOp("ADD").has_value());
  EXPECT_FALSE(Answered(AgentOp::kPrepare));
  EXPECT_FALSE(Answered(AgentOp::kStage));
  EXPECT_TRUE(Answered(AgentOp::kAdd));
}

// The text earlier plugins and agents sent: an upgrade meets both versions.
TEST(AgentProtocolTest, ReadsTheLinesEarlierVersionsWrote) {
  const Result<AgentRequest> prepare = DecodeRequest(R"({"name":"db-0","namespace":"shop","op":"prepare"})");
  ASSERT_TRUE(prepare.ok()) << prepare.error().message();
  EXPECT_EQ(*prepare, (AgentRequest{.op = AgentOp::kPrepare, .pod_namespace = "shop", .pod_name = "db-0"}));
  const Result<AgentRequest> add = DecodeRequest(
      R"({"op":"add","registration":{"chained":false,"containerID":"c1","hostInterface":"np3f2a",)"
      R"("ifname":"eth0","ips":["198.18.1.5","2001:2:0:1::5"],"name":"db-0","namespace":"shop",)"
      R"("netns":"/proc/42/ns/net","uid":"uid-1"}})");
  ASSERT_TRUE(add.ok()) << add.error().message();
  EXPECT_EQ(*add, (AgentRequest{.op = AgentOp::kAdd, .registration = Pod()}));
  // An earlier plugin's STATUS carried a placeholder registration.
  const Result<AgentRequest> status =
      DecodeRequest(R"({"op":"status","registration":{"containerID":"status","ifname":"none","ips":[]}})");
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(status->op, AgentOp::kStatus);
  EXPECT_EQ(EncodeReply({.ok = true}), R"({"ok":true})");
  EXPECT_EQ(EncodeReply({.ok = false, .error = "no"}), R"({"error":"no","ok":false})");
  const Result<AgentReply> refused = DecodeReply(R"({"ok":false,"error":"not synced yet"})");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, (AgentReply{.ok = false, .error = "not synced yet"}));
}

TEST(AgentProtocolTest, RefusesWhatIsNoRequest) {
  EXPECT_THAT(DecodeRequest(""), IsError(ErrorCode::kInvalidArgument, HasSubstr("not JSON")));
  EXPECT_THAT(DecodeRequest("[1]"), IsError(ErrorCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(DecodeRequest(R"({"op":"launch"})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("unknown op launch")));
  EXPECT_THAT(DecodeRequest(R"({"op":7})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("op is not a string")));
  EXPECT_THAT(DecodeRequest(R"({"op":"add"})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("without one")));
  EXPECT_THAT(
      DecodeRequest(R"({"op":"del","registration":{"containerID":"c1","ifname":"eth0","ips":["x"]}})"),
      IsError(ErrorCode::kInvalidArgument, HasSubstr("registration ips")));
  EXPECT_THAT(DecodeRequest(R"({"op":"del","registration":{"containerID":1,"ifname":"eth0","ips":[]}})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("containerID is not a string")));
  EXPECT_THAT(DecodeRequest(R"({"op":"prepare","namespace":["shop"]})"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("namespace is not a string")));
  EXPECT_THAT(DecodeReply(R"({"ok":"yes"})"), IsError(ErrorCode::kInvalidArgument, HasSubstr("ok is not")));
  EXPECT_THAT(DecodeReply("ok"), IsError(ErrorCode::kInvalidArgument, HasSubstr("not JSON")));
}

}  // namespace
}  // namespace netpol::cni
