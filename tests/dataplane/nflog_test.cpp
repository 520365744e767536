// Reading what nftables logs to an NFLOG group (root: a network namespace of
// the test's own, with its own table).
#include "dataplane/nflog.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/netns.h"
#include "e2e/lab.h"

namespace netpol::dataplane {
namespace {

TEST(PacketHeadersTest, ReadsIpv4AndIpv6TransportHeaders) {
  const uint8_t v4_tcp[] = {0x45, 0, 0,   40, 0, 0, 0,    0,    64,   6,    0, 0, 198, 18,
                            0,    1, 198, 18, 0, 2, 0x9c, 0x40, 0x0c, 0xea, 0, 0, 0,   0};
  const auto a = ParsePacketHeaders(v4_tcp);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->src.ToString(), "198.18.0.1");
  EXPECT_EQ(a->dst.ToString(), "198.18.0.2");
  EXPECT_EQ(a->protocol, api::Protocol::kTCP);
  EXPECT_EQ(a->src_port, 40000);
  EXPECT_EQ(a->dst_port, 3306);
  uint8_t v6_udp[48] = {0x60, 0, 0, 0, 0, 8, 17, 64};
  const uint8_t src[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const uint8_t dst[16] = {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  std::copy(src, src + 16, v6_udp + 8);
  std::copy(dst, dst + 16, v6_udp + 24);
  v6_udp[40] = 0x00;
  v6_udp[41] = 53;
  v6_udp[42] = 0x00;
  v6_udp[43] = 53;
  const auto b = ParsePacketHeaders(v6_udp);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->src.ToString(), "2001:2::1");
  EXPECT_EQ(b->dst.ToString(), "2001:2::2");
  EXPECT_EQ(b->protocol, api::Protocol::kUDP);
  EXPECT_EQ(b->dst_port, 53);
  EXPECT_FALSE(ParsePacketHeaders(std::span<const uint8_t>(v4_tcp, 10)).has_value());
  const uint8_t junk[] = {0x10, 1, 2};
  EXPECT_FALSE(ParsePacketHeaders(junk).has_value());
}

TEST(NflogReaderTest, ReadsWhatARuleLogs) {
  NETPOL_REQUIRE_E2E();
  const std::string ns = "npnflog" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("ip netns add " + ns + " && ip -n " + ns + " link set lo up && ip -n " + ns +
                         " addr add 198.18.250.2/24 dev lo")
                            .c_str()),
            0);
  struct Cleanup {
    std::string ns;
    ~Cleanup() { (void)std::system(("ip netns del " + ns).c_str()); }
  } cleanup{ns};
  ASSERT_EQ(
      std::system(
          ("ip netns exec " + ns +
           " nft 'add table inet t; add chain inet t out { type filter hook output priority 0; }; "
           "add rule inet t out ip daddr 198.18.250.9 udp dport 4242 log prefix \"netpol ingress deny \" "
           "group 77 drop'")
              .c_str()),
      0);
  Result<NflogReader> reader = NflogReader::Open(ns, 77);
  ASSERT_TRUE(reader.ok()) << reader.error().message();
  {
    Result<NetnsGuard> in = NetnsGuard::Enter(ns);
    ASSERT_TRUE(in.ok());
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(4242);
    inet_pton(AF_INET, "198.18.250.9", &to.sin_addr);
    (void)::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    ::close(fd);
  }
  Result<std::vector<LoggedPacket>> got = reader->Next(std::chrono::milliseconds(2000));
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->size(), 1u) << "nothing logged";
  EXPECT_EQ(got->front().prefix, "netpol ingress deny ");
  EXPECT_EQ(got->front().dst.ToString(), "198.18.250.9");
  EXPECT_EQ(got->front().protocol, api::Protocol::kUDP);
  EXPECT_EQ(got->front().dst_port, 4242);
}

}  // namespace
}  // namespace netpol::dataplane
