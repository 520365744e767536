#include "base/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace netpol {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  NETPOL_ASSIGN_OR_RETURN(const int half, Half(x), "first halving");
  NETPOL_ASSIGN_OR_RETURN(const int quarter, Half(half), "second halving");
  return quarter;
}

Status CheckQuarter(int x) {
  NETPOL_RETURN_IF_ERROR(Quarter(x), "quarter of " + std::to_string(x));
  return Ok();
}

TEST(ResultTest, HoldsValueOrError) {
  const Result<int> ok = Half(8);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 4);
  const Result<int> bad = Half(3);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "3 is odd");
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(ResultTest, ContextIsAddedOutermostFirst) {
  EXPECT_EQ(*Quarter(8), 2);
  const Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "second halving: 3 is odd");
  const Status s = CheckQuarter(6);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "quarter of 6: second halving: 3 is odd");
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(CheckQuarter(8).ok());
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultTest, CodeNames) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kNotFound), "NotFound");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kFailedPrecondition), "FailedPrecondition");
}

}  // namespace
}  // namespace netpol
