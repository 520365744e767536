// A gmock matcher for failed Results and Statuses: the error code, and where
// it says something the message too. A test of a failure then fails when the
// call fails for another reason than the one it exists for.
//
//   EXPECT_THAT(IpPrefix::Parse("10.0.0.0/33"), IsError(ErrorCode::kInvalidArgument));
//   EXPECT_THAT(LoadKubeconfig({.path = "nope"}), IsError(ErrorCode::kNotFound, HasSubstr("nope")));
//
// Header only (every test target has tests/ on its include path).
#pragma once

#include <gmock/gmock.h>

#include <ostream>
#include <string>

#include "base/result.h"

namespace netpol {

// How gtest prints a Result or a Status in a failure (found by ADL).
template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.ok()) {
    *os << "ok";
  } else {
    *os << ErrorCodeName(result.error().code()) << ": " << result.error().message();
  }
}

namespace testutil {

// `result` failed with `code`.
MATCHER_P(IsError, code, "fails with " + std::string(ErrorCodeName(code))) {
  return !arg.ok() && arg.error().code() == code;
}

// `result` failed with `code` and a message `message` matches (a string: equal
// to it; or a matcher: HasSubstr, StartsWith, ...).
MATCHER_P2(IsError, code, message,
           "fails with " + std::string(ErrorCodeName(code)) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message)) {
  return !arg.ok() && arg.error().code() == code &&
         ::testing::Matches(::testing::SafeMatcherCast<const std::string&>(message))(arg.error().message());
}

}  // namespace testutil
}  // namespace netpol
