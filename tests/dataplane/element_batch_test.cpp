// Which element edits go in a libnftnl batch (the rest go through libnftables).
// That the kernel takes them as nft would is e2e_test's (IncrementalGroupsTest:
// ranges edited by batches equal a table built by nft).
#include "dataplane/nft/element_batch.h"

#include <gtest/gtest.h>

namespace netpol::dataplane::nft {
namespace {

Field Ip(const char* text) {
  return Field::Address(*IpAddress::Parse(text));
}

TEST(ElementBatchTest, OnlyHashSetsAreBatchable) {
  std::map<std::string, NftSet> layout;
  for (NftSet& set : SetLayout({})) layout[set.name] = std::move(set);
  for (NftSet& set : RenderGroup({true, IpFamily::kV4, {}}, 1, {}, {}).maps)
    layout[set.name] = std::move(set);
  const Element exact = Element::Of({Ip("198.18.0.2"), Field::Proto(6), Field::Port(80)});
  const Element pod = Element::Of({Ip("198.18.0.2")});
  const Element range =
      Element::Of({Field::Addresses(*IpAddress::Parse("198.18.0.0"), *IpAddress::Parse("198.18.0.255")),
                   Field::Proto(6), Field::Port(80)},
                  true);
  const Element dispatch = Element(pod).Goto("in_np_g1_v4");
  const Element accept = Element(pod).To(Verdict::kAccept);
  EXPECT_TRUE(Batchable({{"in_np_g1_v4_exact", &exact, "x", true}}, layout));
  EXPECT_TRUE(Batchable({{"in_isolated_v4", &pod, "x", true}}, layout));
  // An interval set of a concatenation: one element per range, its key and its end.
  EXPECT_TRUE(Batchable({{"in_np_g1_v4_ranges", &range, "x", true}}, layout));
  EXPECT_TRUE(Batchable({{"in_np_g1_v4_ranges", &range, "", false}}, layout));
  EXPECT_FALSE(Batchable({{"in_np_g1_v4_ranges", &exact, "x", true}}, layout)) << "no key end";
  EXPECT_FALSE(Batchable({{"in_np_g1_v4_exact", &range, "x", true}}, layout)) << "a range in a hash set";
  // A single field's ranges are two elements each, as nft encodes them: not from here.
  layout["ranges_of_one_field"] = {"ranges_of_one_field", "ipv4_addr", true, false, "", {}};
  const Element block = Element::Of(
      {Field::Addresses(*IpAddress::Parse("198.18.0.0"), *IpAddress::Parse("198.18.0.255"))}, true);
  EXPECT_FALSE(Batchable({{"ranges_of_one_field", &block, "x", true}}, layout));
  EXPECT_TRUE(Batchable({{"in_np_v4", &dispatch, "x", true}}, layout)) << "dispatch";
  EXPECT_TRUE(Batchable({{"in_np_v4", &dispatch, "", false}}, layout));
  EXPECT_FALSE(Batchable({{"in_np_v4", &accept, "x", true}}, layout)) << "no goto";
  EXPECT_FALSE(Batchable({{"no_such_set", &pod, "", false}}, layout));
}

}  // namespace
}  // namespace netpol::dataplane::nft
