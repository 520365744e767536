// Key bytes of set elements as the kernel stores them: fields in network
// order, each padded to 4 bytes inside a concatenation.
#include "dataplane/nft/element_batch.h"

#include <gtest/gtest.h>

#include "testutil/error.h"

namespace netpol::dataplane::nft {
namespace {

using ::testing::HasSubstr;
using testutil::IsError;

struct KeyCase {
  const char* type;
  const char* element;
  std::vector<uint8_t> key;
};

TEST(ElementBatchTest, EncodesKeysAsNftDoes) {
  const std::vector<KeyCase> cases = {
      {"ipv4_addr", "198.18.0.1", {198, 18, 0, 1}},
      {"ipv4_addr . inet_proto . inet_service",
       "198.18.0.1 . tcp . 80",
       {198, 18, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0}},
      {"ipv4_addr . ipv4_addr . inet_proto",
       "198.18.0.1 . 198.19.0.2 . sctp",
       {198, 18, 0, 1, 198, 19, 0, 2, 132, 0, 0, 0}},
      {"ipv6_addr . inet_proto . inet_service",
       "2001:2::1 . udp . 65535",
       {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 17, 0, 0, 0, 0xff, 0xff, 0, 0}},
      {"ifname . ipv4_addr", "\"np0123\" . 198.18.0.1", {'n', 'p', '0', '1', '2', '3', 0,   0,  0, 0,
                                                         0,   0,   0,   0,   0,   0,   198, 18, 0, 1}},
  };
  for (const KeyCase& c : cases) {
    const Result<std::vector<uint8_t>> key = EncodeKey(c.type, c.element);
    ASSERT_TRUE(key.ok()) << c.element << ": " << key.error().message();
    EXPECT_EQ(*key, c.key) << c.element;
  }
  EXPECT_THAT(EncodeKey("ipv4_addr", "2001:2::1"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("not an ipv4_addr: 2001:2::1")));
  EXPECT_THAT(EncodeKey("ipv4_addr . inet_service", "198.18.0.1"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("does not fit")));
  EXPECT_THAT(EncodeKey("inet_service", "70000"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("not a port")));
  EXPECT_THAT(EncodeKey("inet_proto", "icmp"),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("unknown protocol icmp")));
}

TEST(ElementBatchTest, OnlyHashSetsAreBatchable) {
  std::map<std::string, NftSet> layout;
  for (NftSet& set : SetLayout({})) layout[set.name] = std::move(set);
  for (NftSet& set : RenderGroup({true, IpFamily::kV4, {}}, 1, {}, {}).maps)
    layout[set.name] = std::move(set);
  EXPECT_TRUE(Batchable({{"in_np_g1_v4_exact", "198.18.0.2 . tcp . 80", "x", true}}, layout));
  EXPECT_TRUE(Batchable({{"in_isolated_v4", "198.18.0.2", "x", true}}, layout));
  EXPECT_FALSE(Batchable({{"in_np_g1_v4_ranges", "198.18.0.0-198.18.0.255 . tcp . 80", "x", true}}, layout));
  EXPECT_TRUE(Batchable({{"in_np_v4", "198.18.0.2 : goto in_np_g1_v4", "x", true}}, layout)) << "dispatch";
  EXPECT_TRUE(Batchable({{"in_np_v4", "198.18.0.2 : goto in_np_g1_v4", "", false}}, layout));
  EXPECT_FALSE(Batchable({{"in_np_v4", "198.18.0.2 : accept", "x", true}}, layout)) << "no goto";
  EXPECT_FALSE(Batchable({{"no_such_set", "1", "", false}}, layout));
}

}  // namespace
}  // namespace netpol::dataplane::nft

namespace netpol::dataplane::nft {
namespace {

// Keys are parsed by hand for speed: what nft would reject is rejected.
TEST(ElementBatchTest, MalformedElementsAreRejected) {
  const std::string v4 = "ipv4_addr . inet_proto . inet_service";
  for (const char* bad :
       {"198.18.0.01 . tcp . 80", "198.18.0.256 . tcp . 80", "198.18.0 . tcp . 80", "198.18.0.1.5 . tcp . 80",
        "198.18.0.1x . tcp . 80", " . tcp . 80", "198.18.0.1 . tcp . 65536", "198.18.0.1 . tcp . ",
        "198.18.0.1 . tcp . 8a", "198.18.0.1 . icmp . 80", "198.18.0.1 . tcp", "198.18.0.1 . tcp . 80 . 1",
        "2001:2::1 . tcp . 80"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(EncodeKey(v4, bad), IsError(ErrorCode::kInvalidArgument));
  }
  const Result<std::vector<uint8_t>> good = EncodeKey(v4, "198.18.0.10 . udp . 53");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, (std::vector<uint8_t>{198, 18, 0, 10, 17, 0, 0, 0, 0, 53, 0, 0}));
}

}  // namespace
}  // namespace netpol::dataplane::nft
