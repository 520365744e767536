// Rule forms (rule_forms.h): the kinds chains fall in, and the chain's own
// name replaced so that chains of one kind compare equal.
#include "dataplane/nft/rule_forms.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace netpol::dataplane::nft {
namespace {

TEST(RuleFormsTest, ChainKinds) {
  const struct {
    const char* chain;
    const char* kind;
  } cases[] = {
      {"in_np_g1_v4", "in_np_g*_v4"},
      {"eg_np_g123456_v6", "eg_np_g*_v6"},
      {"in_admin_c0123456789abcdef_v4", "in_admin_c*_v4"},
      {"eg_base_cfedcba9876543210_v6", "eg_base_c*_v6"},
      {"input", "input"},
      {"in_np_g0_v4", "in_np_g0_v4"},              // no group id: a name like any other
      {"in_admin_c0123_v4", "in_admin_c0123_v4"},  // too short for a class digest
      {"in_np_g1_v4_exact", "in_np_g1_v4_exact"},  // a set's name, not a chain kind
  };
  for (const auto& c : cases) EXPECT_EQ(ChainKind(c.chain), c.kind) << c.chain;
}

TEST(RuleFormsTest, OwnNameReplacedInClassAndGroupChainsOnly) {
  EXPECT_EQ(
      SelfNamed(
          "in_np_g5_v4",
          R"({"expr":[{"match":{"right":"@in_np_g5_v4_exact"}},{"goto":{"target":"ingress_allowed_v4"}}]})"),
      R"({"expr":[{"match":{"right":"@@self_exact"}},{"goto":{"target":"ingress_allowed_v4"}}]})");
  // Another group's name is left as it is: a group's rule pointing at the
  // sets of another group is not the rule netpol wrote.
  EXPECT_EQ(SelfNamed("in_np_g5_v4", R"({"expr":[{"match":{"right":"@in_np_g50_v4_exact"}}]})"),
            R"({"expr":[{"match":{"right":"@in_np_g50_v4_exact"}}]})");
  EXPECT_EQ(SelfNamed("input", R"({"expr":[{"jump":{"target":"input"}}]})"),
            R"({"expr":[{"jump":{"target":"input"}}]})");
  EXPECT_EQ(SelfNamed("in_admin_c0123456789abcdef_v4",
                      R"("in_admin_c0123456789abcdef_v4_port in_admin_c0123456789abcdef_v4_all")"),
            R"("@self_port @self_all")");
}

// The reference is built where the agent's table is: it must hook nothing
// and be another table.
TEST(RuleFormsTest, TheReferenceTableHooksNothing) {
  const std::string table = TableDefinition(RenderRuleset(policy::NodeProgram{}, {}));
  ASSERT_NE(table.find("hook input"), std::string::npos);
  const std::string inert = InertTable(table);
  EXPECT_TRUE(inert.starts_with("table inet netpol_reference {")) << inert.substr(0, 80);
  EXPECT_EQ(inert.find("hook"), std::string::npos);
  EXPECT_EQ(inert.find("table inet netpol {"), std::string::npos);
  // Every rule is still there: only the hook lines went.
  EXPECT_EQ(std::count(inert.begin(), inert.end(), '\n') + 2, std::count(table.begin(), table.end(), '\n'));
}

}  // namespace
}  // namespace netpol::dataplane::nft
