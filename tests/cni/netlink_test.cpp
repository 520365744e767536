// cni/internal/netlink.h: messages built byte for byte as the kernel expects
// them (lengths, 4-byte padding, nests), attributes read back, and exchanges
// with the kernel in the test's own network namespace (no root needed to read).
#include "cni/internal/netlink.h"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace netpol::cni::internal::netlink {
namespace {

template <typename T>
T ReadAt(std::span<const std::byte> bytes, size_t offset) {
  T out;
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return out;
}

TEST(NetlinkMessageTest, HeaderLengthAndPadding) {
  Message m(RTM_NEWLINK, NLM_F_CREATE);
  EXPECT_EQ(m.bytes().size(), 16u);
  ifinfomsg ifm{};
  ifm.ifi_index = 7;
  m.Append(ifm);
  m.PutString(IFLA_IFNAME, "eth0");  // 4 + 5 bytes, padded to 12
  m.PutU32(IFLA_MTU, 1400);
  const std::span<const std::byte> bytes = m.bytes();
  ASSERT_EQ(bytes.size(), 16u + sizeof(ifinfomsg) + 12u + 8u);
  const auto header = ReadAt<nlmsghdr>(bytes, 0);
  EXPECT_EQ(header.nlmsg_len, bytes.size());
  EXPECT_EQ(header.nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(header.nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE);
  const auto name = ReadAt<nlattr>(bytes, 16 + sizeof(ifinfomsg));
  EXPECT_EQ(name.nla_len, 9u);  // the padding is not counted
  EXPECT_EQ(name.nla_type, IFLA_IFNAME);
  EXPECT_EQ(std::to_integer<char>(bytes[16 + sizeof(ifinfomsg) + 4 + 4]), '\0');

  m.AddFlags(NLM_F_ACK);
  m.set_sequence(42);
  EXPECT_EQ(ReadAt<nlmsghdr>(m.bytes(), 0).nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK);
  EXPECT_EQ(ReadAt<nlmsghdr>(m.bytes(), 0).nlmsg_seq, 42u);
}

TEST(NetlinkMessageTest, NestsAndAttributesReadBack) {
  Message m(RTM_NEWLINK, 0);
  m.Append(ifinfomsg{});
  m.PutString(IFLA_IFNAME, "host0");
  const size_t info = m.BeginNest(IFLA_LINKINFO);
  m.PutString(IFLA_INFO_KIND, "veth");
  const size_t data = m.BeginNest(IFLA_INFO_DATA);
  m.PutU32(1, 99);
  m.EndNest(data);
  m.EndNest(info);
  m.PutU32(IFLA_MTU, 1500);

  const std::span<const std::byte> payload = m.bytes().subspan(16);
  const std::vector<Attribute> top = Attributes(payload, sizeof(ifinfomsg));
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].type, IFLA_IFNAME);
  EXPECT_EQ(top[0].AsString(), "host0");
  EXPECT_EQ(top[1].type, IFLA_LINKINFO);
  EXPECT_EQ(top[2].type, IFLA_MTU);
  EXPECT_EQ(ReadAt<uint32_t>(top[2].payload, 0), 1500u);

  const std::vector<Attribute> inner = Attributes(top[1].payload, 0);
  ASSERT_EQ(inner.size(), 2u);
  EXPECT_EQ(inner[0].AsString(), "veth");
  const std::vector<Attribute> innermost = Attributes(inner[1].payload, 0);
  ASSERT_EQ(innermost.size(), 1u);
  EXPECT_EQ(ReadAt<uint32_t>(innermost[0].payload, 0), 99u);
}

TEST(NetlinkMessageTest, MalformedAttributesEndTheList) {
  Message m(RTM_NEWLINK, 0);
  m.PutU32(1, 1);
  m.PutU32(2, 2);
  std::vector<std::byte> bytes(m.bytes().begin() + 16, m.bytes().end());
  // The second attribute claims more than there is.
  const uint16_t too_long = 64;
  std::memcpy(bytes.data() + 8, &too_long, sizeof(too_long));
  const std::vector<Attribute> attrs = Attributes(bytes, 0);
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].type, 1);
  // Shorter than a header: nothing, and no read past the end.
  EXPECT_TRUE(Attributes(std::span<const std::byte>(bytes.data(), 3), 0).empty());
}

TEST(NetlinkSocketTest, DumpsAndErrors) {
  Result<Socket> socket = Socket::Open(NETLINK_ROUTE);
  ASSERT_TRUE(socket.ok()) << socket.error().message();

  // A dump: every link of this namespace, loopback among them.
  std::vector<std::string> names;
  const std::function<void(const Reply&)> read = [&](const Reply& reply) {
    ASSERT_EQ(reply.type, RTM_NEWLINK);
    ASSERT_TRUE(FixedHeader<ifinfomsg>(reply).has_value());
    for (const Attribute& attr : Attributes(reply, sizeof(ifinfomsg))) {
      if (attr.type == IFLA_IFNAME) names.emplace_back(attr.AsString());
    }
  };
  Message dump(RTM_GETLINK, NLM_F_DUMP);
  dump.Append(ifinfomsg{});
  ASSERT_TRUE(socket->Exchange(dump, &read).ok());
  EXPECT_NE(std::find(names.begin(), names.end(), "lo"), names.end());

  // One object, acknowledged: the reply then the ack, and nothing left over for the next exchange.
  int replies = 0;
  const std::function<void(const Reply&)> count = [&](const Reply&) { ++replies; };
  Message one(RTM_GETLINK, NLM_F_ACK);
  one.Append(ifinfomsg{});
  one.PutString(IFLA_IFNAME, "lo");
  ASSERT_TRUE(socket->Exchange(one, &count).ok());
  EXPECT_EQ(replies, 1);

  // The kernel's error, as a value with its code.
  Message missing(RTM_GETLINK, NLM_F_ACK);
  missing.Append(ifinfomsg{});
  missing.PutString(IFLA_IFNAME, "np-no-such0");
  const Status status = socket->Exchange(missing, &count);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), ErrorCode::kNotFound) << status.error().message();
  EXPECT_EQ(replies, 1);

  // The socket still works after an error (sequence numbers keep exchanges apart).
  names.clear();
  Message again(RTM_GETLINK, NLM_F_DUMP);
  again.Append(ifinfomsg{});
  ASSERT_TRUE(socket->Exchange(again, &read).ok());
  EXPECT_FALSE(names.empty());
}

TEST(NetlinkErrorTest, ErrnoMapsOntoCodes) {
  EXPECT_EQ(ErrnoError("x", ENODEV).code(), ErrorCode::kNotFound);
  EXPECT_EQ(ErrnoError("x", ENOENT).code(), ErrorCode::kNotFound);
  EXPECT_EQ(ErrnoError("x", EEXIST).code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ErrnoError("x", EPERM).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError("x", EINVAL).code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoError("creating", EEXIST).message(), "creating: File exists");
}

}  // namespace
}  // namespace netpol::cni::internal::netlink
