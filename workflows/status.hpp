#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace wf {

// What went wrong, one to one with the CLI's exit codes (DESIGN.md, "Exit codes"), plus the
// retryable kinds an adapter reports (they map to exit 1 if they ever reach the CLI).
enum class ErrorCode {
  kOk = 0,
  kInternal = 1,       // a bug or an environment failure
  kUsage = 2,          // bad command line
  kInvalid = 3,        // invalid definition or data
  kNotFound = 4,       // no such case, task, procedure, incident
  kConflict = 5,       // duplicate, stale version, wrong state
  kNotPermitted = 6,   // the actor lacks the role or agency
  kHistoryBroken = 7,  // a history chain does not verify
  kUnavailable = 100,  // a remote system is away or overloaded: retry
  kTimeout = 101,      // a call ran past its timeout: retry
};

// The process exit code for an error code.
int ExitCodeOf(ErrorCode code);

// The outcome of an operation that can fail in an expected way. Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Status Usage(std::string m) { return {ErrorCode::kUsage, std::move(m)}; }
  static Status Invalid(std::string m) { return {ErrorCode::kInvalid, std::move(m)}; }
  static Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Status NotPermitted(std::string m) { return {ErrorCode::kNotPermitted, std::move(m)}; }
  static Status HistoryBroken(std::string m) { return {ErrorCode::kHistoryBroken, std::move(m)}; }
  static Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Status Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  // True for failures that may succeed when tried again (a department away, a timeout).
  bool IsRetryable() const {
    return code_ == ErrorCode::kUnavailable || code_ == ErrorCode::kTimeout;
  }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  int exit_code() const { return ExitCodeOf(code_); }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or the Status that says why there is none. Its members copy std::expected's
// (has_value, value, error, operator bool, *, ->) so it can become an alias under C++23.
template <typename T>
class [[nodiscard]] Result {
 public:
  // Like std::expected: default-constructs a value (Asio's co_spawn needs it).
  Result()
    requires std::is_default_constructible_v<T>
      : v_(T{}) {}
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit like std::expected
  Result(Status error) : v_(std::move(error)) {}  // NOLINT: must not be ok()

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Status& error() const { return std::get<1>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

inline int ExitCodeOf(ErrorCode code) {
  int n = static_cast<int>(code);
  return n >= 0 && n <= 7 ? n : 1;
}

}  // namespace wf
