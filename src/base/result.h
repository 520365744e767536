// Errors as values: `Error`, `Result<T>` and `Status`.
//
// Every fallible netpol function returns a `Result<T>` (or `Status`, which is
// `Result<void>`). Errors carry one of a few canonical codes (modelled on
// absl::StatusCode) and a message; each layer adds what it was doing while the
// error travels up, so the final message reads outermost-first:
//
//   Result<IpPrefix> ParseCidr(std::string_view text);
//
//   Status LoadBlock(std::string_view text) {
//     NETPOL_ASSIGN_OR_RETURN(IpPrefix prefix, ParseCidr(text),
//                             "reading ipBlock");
//     ...
//     return Ok();
//   }
//
// Why our own type and not std::expected: g++ 12 has <expected> under -std=c++2b
// but clang 14 with libstdc++ 12 (the fuzzing toolchain) does not. The surface
// (has_value, operator*, error, value_or) follows std::expected so this can become
// an alias later. No exception crosses a module boundary; third-party throwers are
// wrapped where they are called.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace netpol {

// Canonical error codes. Return the most specific one that applies.
enum class ErrorCode {
  kInvalidArgument,     // bad input: a manifest, a flag, a CIDR
  kNotFound,            // a named object or file does not exist
  kAlreadyExists,       // creating something that is already there
  kFailedPrecondition,  // the system is not in a state to do this (missing kernel feature)
  kPermissionDenied,    // not allowed by the OS (not root, EPERM)
  kUnavailable,         // transient: retry may succeed (API server down)
  kUnimplemented,       // not supported by this build
  kInternal,            // an invariant broke: a bug in netpol
};

std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns this error with `context` prepended ("context: message").
  Error WithContext(std::string_view context) && {
    if (!context.empty()) message_ = std::string(context) + ": " + message_;
    return std::move(*this);
  }

  friend bool operator==(const Error&, const Error&) = default;

 private:
  ErrorCode code_;
  std::string message_;
};

inline Error InvalidArgument(std::string message) {
  return {ErrorCode::kInvalidArgument, std::move(message)};
}
inline Error NotFound(std::string message) {
  return {ErrorCode::kNotFound, std::move(message)};
}
inline Error FailedPrecondition(std::string message) {
  return {ErrorCode::kFailedPrecondition, std::move(message)};
}
inline Error Internal(std::string message) {
  return {ErrorCode::kInternal, std::move(message)};
}
inline Error Unavailable(std::string message) {
  return {ErrorCode::kUnavailable, std::move(message)};
}
inline Error PermissionDenied(std::string message) {
  return {ErrorCode::kPermissionDenied, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Error>, "Result<Error> is meaningless");

 public:
  using value_type = T;

  Result(const T& value) : state_(value) {}          // NOLINT: implicit by design
  Result(T&& value) : state_(std::move(value)) {}    // NOLINT
  Result(Error error) : state_(std::move(error)) {}  // NOLINT
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result<T>>)
      Result(U&& value)  // NOLINT(google-explicit-constructor, bugprone-forwarding-reference-overload)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}

  [[nodiscard]] bool has_value() const { return state_.index() == 0; }
  [[nodiscard]] bool ok() const { return has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(state_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const { return !failed_; }
  [[nodiscard]] bool ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }

  const Error& error() const& {
    assert(failed_);
    return error_;
  }
  Error&& error() && {
    assert(failed_);
    return std::move(error_);
  }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool failed_ = false;
};

using Status = Result<void>;

inline Status Ok() {
  return {};
}

}  // namespace netpol

#define NETPOL_CONCAT_INNER_(a, b) a##b
#define NETPOL_CONCAT_(a, b) NETPOL_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result or Status), with `context` prepended.
#define NETPOL_RETURN_IF_ERROR(expr, context)                        \
  do {                                                               \
    auto netpol_status_ = (expr);                                    \
    if (!netpol_status_.has_value()) {                               \
      return std::move(netpol_status_).error().WithContext(context); \
    }                                                                \
  } while (false)

// Evaluates `expr` (a Result<T>); on error returns it with `context` prepended,
// otherwise moves the value into the declaration `lhs`.
#define NETPOL_ASSIGN_OR_RETURN(lhs, expr, context) \
  NETPOL_ASSIGN_OR_RETURN_IMPL_(NETPOL_CONCAT_(netpol_result_, __LINE__), lhs, expr, context)

// `tmp` and `lhs` name and declare: they cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define NETPOL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr, context) \
  auto tmp = (expr);                                           \
  if (!tmp.has_value()) {                                      \
    return std::move(tmp).error().WithContext(context);        \
  }                                                            \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
