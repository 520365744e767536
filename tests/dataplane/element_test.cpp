// Elements as typed values: their key bytes are the kernel's, their text is
// nft's, and the kernel's bytes decode back to the same element.
#include "dataplane/nft/element.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "testutil/error.h"

namespace netpol::dataplane::nft {
namespace {

using ::testing::HasSubstr;
using testutil::IsError;

Field Ip(const char* text) {
  return Field::Address(*IpAddress::Parse(text));
}

std::vector<uint8_t> Bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

struct Case {
  Element element;
  std::vector<FieldKind> kinds;
  std::string text;
  std::vector<uint8_t> key;
  std::vector<uint8_t> key_end;  // ranged only
};

std::vector<Case> Cases() {
  const FieldKind v4 = FieldKind::kIpv4;
  const FieldKind v6 = FieldKind::kIpv6;
  const FieldKind proto = FieldKind::kProto;
  const FieldKind port = FieldKind::kPort;
  return {
      {Element::Of({Ip("198.18.0.1")}), {v4}, "198.18.0.1", {198, 18, 0, 1}, {}},
      {Element::Of({Ip("198.18.0.1"), Field::Proto(6), Field::Port(80)}),
       {v4, proto, port},
       "198.18.0.1 . tcp . 80",
       {198, 18, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0},
       {}},
      {Element::Of({Ip("198.18.0.1"), Ip("198.19.0.2"), Field::Proto(132)}),
       {v4, v4, proto},
       "198.18.0.1 . 198.19.0.2 . sctp",
       {198, 18, 0, 1, 198, 19, 0, 2, 132, 0, 0, 0},
       {}},
      {Element::Of({Ip("2001:2::1"), Field::Proto(17), Field::Port(65535)}),
       {v6, proto, port},
       "2001:2::1 . udp . 65535",
       {0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 17, 0, 0, 0, 0xff, 0xff, 0, 0},
       {}},
      {Element::Of({Field::Ifname("np0123"), Ip("198.18.0.1")}),
       {FieldKind::kIfname, v4},
       "\"np0123\" . 198.18.0.1",
       {'n', 'p', '0', '1', '2', '3', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 198, 18, 0, 1},
       {}},
      // Alone, a protocol is one byte and a port two: no padding.
      {Element::Of({Field::Proto(6)}), {proto}, "tcp", {6}, {}},
      {Element::Of({Field::Proto(17), Field::Port(53)}),
       {proto, port},
       "udp . 53",
       {17, 0, 0, 0, 0, 53, 0, 0},
       {}},
      // An interval set's element: the key end is every field's last value.
      {Element::Of({Field::Addresses(*IpAddress::Parse("198.19.0.0"), *IpAddress::Parse("198.19.0.127")),
                    Field::Proto(6), Field::Ports(80, 100)},
                   true),
       {v4, proto, port},
       "198.19.0.0-198.19.0.127 . tcp . 80-100",
       {198, 19, 0, 0, 6, 0, 0, 0, 0, 80, 0, 0},
       {198, 19, 0, 127, 6, 0, 0, 0, 0, 100, 0, 0}},
      {Element::Of({Ip("198.18.0.5"), Field::Protos(0, 255)}, true).Goto("ingress_admin_deny_v4"),
       {v4, proto},
       "198.18.0.5 . 0-255 : goto ingress_admin_deny_v4",
       {198, 18, 0, 5, 0, 0, 0, 0},
       {198, 18, 0, 5, 255, 0, 0, 0}},
      {Element::Of({Ip("198.18.0.5")}).Goto("in_np_g3_v4"),
       {v4},
       "198.18.0.5 : goto in_np_g3_v4",
       {198, 18, 0, 5},
       {}},
  };
}

TEST(ElementTest, KeysAreTheKernelsAndTextIsNfts) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(c.element.Text(), c.text);
    EXPECT_EQ(Bytes(c.element.key()), c.key);
    EXPECT_EQ(Bytes(c.element.key_end()), c.key_end);
    EXPECT_EQ(c.element.ranged(), !c.key_end.empty());
    EXPECT_EQ(c.element.size(), c.kinds.size());
    for (size_t i = 0; i < c.kinds.size(); ++i) EXPECT_EQ(c.element.field(i).kind, c.kinds[i]);
  }
}

// decode(encode(x)) == x: the kernel's bytes of an element, with its verdict,
// read back as the same element; and its fields build it again.
TEST(ElementTest, KernelBytesDecodeToTheSameElement) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.text);
    const Result<Element> decoded = Element::FromKernel(c.kinds, c.element.key(), c.element.key_end(),
                                                        c.element.verdict(), c.element.chain());
    ASSERT_TRUE(decoded.ok()) << decoded.error().message();
    EXPECT_EQ(*decoded, c.element);
    std::vector<Field> fields;
    for (size_t i = 0; i < c.element.size(); ++i) fields.push_back(c.element.field(i));
    Element rebuilt = Element::Of(fields, c.element.ranged());
    if (c.element.verdict() != Verdict::kNone)
      rebuilt = std::move(rebuilt).To(c.element.verdict(), c.element.chain());
    EXPECT_EQ(rebuilt, c.element);
  }
  // The kernel pads a key to 4 bytes: a lone protocol comes back as 4.
  const std::string padded("\x06\0\0\0", 4);
  EXPECT_EQ(Element::FromKernel(std::vector{FieldKind::kProto}, padded, {}).value(),
            Element::Of({Field::Proto(6)}));
}

TEST(ElementTest, BytesThatDoNotFitAreRejected) {
  const std::vector<FieldKind> v4{FieldKind::kIpv4, FieldKind::kProto, FieldKind::kPort};
  EXPECT_THAT(Element::FromKernel(v4, std::string(8, '\0'), {}),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("8 bytes")));
  EXPECT_THAT(Element::FromKernel(v4, std::string(16, '\0'), {}), IsError(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Element::FromKernel(std::vector{FieldKind::kPort}, std::string("\0\x50\x01\0", 4), {}),
              IsError(ErrorCode::kInvalidArgument));
  EXPECT_THAT(Element::FromKernel({}, "", {}), IsError(ErrorCode::kInvalidArgument));
  // An interface name of 16 bytes has no room for its NUL; bytes after the NUL are not a name's.
  const std::vector<FieldKind> ifname{FieldKind::kIfname};
  EXPECT_THAT(Element::FromKernel(ifname, std::string(16, 'a'), {}),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("interface name")));
  EXPECT_THAT(Element::FromKernel(ifname, std::string("eth0\0x", 6) + std::string(10, '\0'), {}),
              IsError(ErrorCode::kInvalidArgument));
  // Padding inside a concatenation is zero, as is a chain name's lack of NUL.
  const std::vector<FieldKind> v4_proto{FieldKind::kIpv4, FieldKind::kProto};
  EXPECT_THAT(Element::FromKernel(v4_proto, std::string("\xc6\x12\0\x01\x06\0\0\x23", 8), {}),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("padding")));
  EXPECT_TRUE(Element::FromKernel(v4_proto, std::string("\xc6\x12\0\x01\x06\0\0\0", 8), {}).ok());
  EXPECT_THAT(Element::FromKernel(v4_proto, std::string("\xc6\x12\0\x01\x06\0\0\0", 8), {}, Verdict::kGoto,
                                  std::string("in_np\0g1", 8)),
              IsError(ErrorCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_EQ(Element::FromKernel(ifname, std::string("eth0") + std::string(12, '\0'), {}).value(),
            Element::Of({Field::Ifname("eth0")}));
  EXPECT_THAT(Element::FromKernel(v4, std::string(12, '\0'), std::string(4, '\0')),
              IsError(ErrorCode::kInvalidArgument));
}

// Elements of a set sort by key, numerically (text would put .10 before .9).
TEST(ElementTest, ElementsSortNumerically) {
  const std::vector<Element> sorted = {
      Element::Of({Ip("198.18.0.9"), Field::Proto(6), Field::Port(443)}),
      Element::Of({Ip("198.18.0.10"), Field::Proto(6), Field::Port(80)}),
      Element::Of({Ip("198.18.0.10"), Field::Proto(17), Field::Port(53)}),
  };
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
  EXPECT_LT(Element::Of({Field::Port(9)}), Element::Of({Field::Port(10)}));
}

TEST(ElementTest, KeyOnlyDropsTheVerdict) {
  const Element pod = Element::Of({Ip("198.18.0.5")});
  const Element dispatch = Element(pod).Goto("in_np_g3_v4");
  EXPECT_NE(dispatch, pod);
  EXPECT_EQ(dispatch.KeyOnly(), pod);
  EXPECT_EQ(dispatch.chain(), "in_np_g3_v4");
  EXPECT_EQ(dispatch.KeyText(), "198.18.0.5");
  EXPECT_EQ(Element(pod).To(Verdict::kAccept).Text(), "198.18.0.5 : accept");
  EXPECT_EQ(Element(pod).To(Verdict::kAccept).chain(), "");
  // Replacing the verdict replaces the chain.
  EXPECT_EQ(Element(dispatch).Goto("in_np_g4_v4").Text(), "198.18.0.5 : goto in_np_g4_v4");
}

TEST(ElementTest, SetTypesGiveTheFieldKinds) {
  EXPECT_EQ(KindsOf("ipv4_addr . inet_proto . inet_service").value(),
            (std::vector{FieldKind::kIpv4, FieldKind::kProto, FieldKind::kPort}));
  EXPECT_EQ(KindsOf("ipv6_addr : verdict").value(), std::vector{FieldKind::kIpv6});
  EXPECT_EQ(KindsOf("ifname . ipv4_addr").value(), (std::vector{FieldKind::kIfname, FieldKind::kIpv4}));
  EXPECT_THAT(KindsOf("ether_addr"), IsError(ErrorCode::kInvalidArgument, HasSubstr("ether_addr")));
  EXPECT_THAT(KindsOf(""), IsError(ErrorCode::kInvalidArgument));
}

// An interface name is at most 15 bytes (the kernel's IFNAMSIZ with its NUL).
TEST(ElementTest, InterfaceNamesAreClamped) {
  const Element e = Element::Of({Field::Ifname("a-very-long-interface-name")});
  EXPECT_EQ(e.key().size(), 16u);
  EXPECT_EQ(e.field(0).name, "a-very-long-int");
}

}  // namespace
}  // namespace netpol::dataplane::nft
