#pragma once

#include <optional>
#include <string>
#include <utility>

namespace portwatch {

/// Why an operation failed, as the text a log line or a metric's reason shows
/// ("tcp/ipv4: Operation not permitted"). Returned as `return Failure{"..."};`.
struct Failure {
  std::string error;
};

/// The one convention for anything that can fail: a value, or the Failure that kept it from
/// being had. Errors are text because every consumer logs them or exposes them; an errno is
/// folded in with ErrnoText() where it happens.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}                  // NOLINT: implicit on purpose
  Result(Failure failure) : error_(std::move(failure.error)) {}  // NOLINT: implicit on purpose

  bool Ok() const { return value_.has_value(); }
  explicit operator bool() const { return Ok(); }
  /// Only when Ok().
  T& Value() & { return *value_; }
  const T& Value() const& { return *value_; }
  T&& Value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  /// Empty when Ok().
  const std::string& Error() const { return error_; }

 private:
  std::optional<T> value_;
  std::string error_;
};

/// Result<void>: success, or a Failure.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure failure) : failed_(true), error_(std::move(failure.error)) {}  // NOLINT

  bool Ok() const { return !failed_; }
  explicit operator bool() const { return Ok(); }
  const std::string& Error() const { return error_; }

 private:
  bool failed_ = false;
  std::string error_;
};

using Status = Result<void>;

/// "what: strerror(error)", for a positive errno.
std::string ErrnoText(const std::string& what, int error);

}  // namespace portwatch
