#include "base/ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>

#include "testutil/error.h"

namespace netpol {
namespace {

using testutil::IsError;

// IPv4 text is written by hand (for speed): it must be inet_ntop's, and parse back.
TEST(IpAddressTest, PrintsIpv4AsInetNtopDoes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    // Mostly random, plus octets at the digit-count edges (0, 9, 10, 99, 100, 255).
    static constexpr uint32_t kEdges[] = {0, 9, 10, 99, 100, 255};
    uint32_t host = static_cast<uint32_t>(rng());
    if (i % 2 == 0) {
      host = 0;
      for (int k = 0; k < 4; ++k) host = host << 8 | kEdges[rng() % 6];
    }
    const IpAddress ip = IpAddress::V4(host);
    in_addr raw{};
    raw.s_addr = htonl(host);
    char expected[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &raw, expected, sizeof(expected));
    ASSERT_EQ(ip.ToString(), expected);
    ASSERT_EQ(IpAddress::Parse(ip.ToString())->v4(), host);
  }
}

TEST(IpAddressTest, ParsesAndPrintsBothFamilies) {
  struct Case {
    const char* text;
    const char* printed;
    IpFamily family;
  };
  const Case cases[] = {
      {"198.18.0.1", "198.18.0.1", IpFamily::kV4},
      {"0.0.0.0", "0.0.0.0", IpFamily::kV4},
      {"255.255.255.255", "255.255.255.255", IpFamily::kV4},
      {"2001:2::1", "2001:2::1", IpFamily::kV6},
      {"2001:0002:0000::0001", "2001:2::1", IpFamily::kV6},
      {"::", "::", IpFamily::kV6},
      {"::ffff:198.18.0.1", "::ffff:198.18.0.1", IpFamily::kV6},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const Result<IpAddress> ip = IpAddress::Parse(c.text);
    ASSERT_TRUE(ip.ok());
    EXPECT_EQ(ip->ToString(), c.printed);
    EXPECT_EQ(ip->family(), c.family);
  }
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* text : {"", "198.18.0", "198.18.0.256", "198.18.0.1/32", "2001:2::g", "x", " 198.18.0.1",
                           "198.18.0.1 ", "1:2:3:4:5:6:7:8:9", "::1::2"}) {
    SCOPED_TRACE(text);
    const Result<IpAddress> ip = IpAddress::Parse(text);
    ASSERT_FALSE(ip.ok());
    EXPECT_EQ(ip.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(IpPrefixTest, ParseMasksHostBits) {
  EXPECT_EQ(IpPrefix::Parse("198.18.7.9/16")->ToString(), "198.18.0.0/16");
  EXPECT_EQ(IpPrefix::Parse("198.18.0.0/15")->ToString(), "198.18.0.0/15");
  EXPECT_EQ(IpPrefix::Parse("0.0.0.0/0")->ToString(), "0.0.0.0/0");
  EXPECT_EQ(IpPrefix::Parse("2001:2:0:ffff::1/48")->ToString(), "2001:2::/48");
  EXPECT_EQ(IpPrefix::Parse("2001:2::1/128")->ToString(), "2001:2::1/128");
  EXPECT_EQ(IpPrefix::Parse("2001:2::1/64")->ToString(), "2001:2::/64");
  EXPECT_EQ(IpPrefix::Parse("::/0")->ToString(), "::/0");
}

TEST(IpPrefixTest, RejectsBadPrefixes) {
  for (const char* text : {"198.18.0.0", "198.18.0.0/33", "198.18.0.0/-1", "198.18.0.0/", "/8",
                           "2001:2::/129", "198.18.0.0/1a", "198.18.0.0/08x", "198.18.0.0/0008"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(IpPrefix::Parse(text), IsError(ErrorCode::kInvalidArgument));
  }
}

TEST(IpPrefixTest, Containment) {
  struct Case {
    const char* prefix;
    const char* ip;
    bool contains;
  };
  const Case cases[] = {
      {"198.18.0.0/15", "198.18.0.1", true},       {"198.18.0.0/15", "198.19.255.255", true},
      {"198.18.0.0/15", "198.20.0.0", false},      {"198.18.0.0/32", "198.18.0.0", true},
      {"198.18.0.0/32", "198.18.0.1", false},      {"0.0.0.0/0", "203.0.113.1", true},
      {"0.0.0.0/0", "2001:2::1", false},           {"::/0", "198.18.0.1", false},
      {"2001:2::/48", "2001:2::ffff", true},       {"2001:2::/48", "2001:3::1", false},
      {"2001:2::/64", "2001:2:0:0:ffff::1", true}, {"2001:2::/65", "2001:2:0:0:8000::1", false},
      {"2001:2::/65", "2001:2:0:0:7fff::1", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.prefix) + " " + c.ip);
    EXPECT_EQ(IpPrefix::Parse(c.prefix)->Contains(*IpAddress::Parse(c.ip)), c.contains);
  }
  const IpPrefix wide = *IpPrefix::Parse("198.18.0.0/15");
  const IpPrefix narrow = *IpPrefix::Parse("198.18.4.0/24");
  EXPECT_TRUE(wide.Contains(narrow));
  EXPECT_FALSE(narrow.Contains(wide));
  EXPECT_TRUE(wide.Overlaps(narrow));
  EXPECT_FALSE(narrow.Overlaps(*IpPrefix::Parse("198.18.5.0/24")));
}

}  // namespace
}  // namespace netpol
