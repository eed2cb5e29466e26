#pragma once
// berth::Error and berth::Result<T>: the error type every fallible call returns, in the core and
// across the plugin boundary. No exception ever crosses that boundary.
#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace berth {

enum class Errc : int {
  Ok = 0,
  NotFound,
  InvalidArgument,
  AlreadyExists,
  Conflict,
  NotSupported,
  PermissionDenied,
  Busy,
  Corrupt,
  Unavailable,
  Timeout,
  Cancelled,
  Internal,
};

constexpr std::string_view errc_name(Errc c) {
  switch (c) {
    case Errc::Ok: return "ok";
    case Errc::NotFound: return "not found";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::AlreadyExists: return "already exists";
    case Errc::Conflict: return "conflict";
    case Errc::NotSupported: return "not supported";
    case Errc::PermissionDenied: return "permission denied";
    case Errc::Busy: return "busy";
    case Errc::Corrupt: return "corrupt";
    case Errc::Unavailable: return "unavailable";
    case Errc::Timeout: return "timeout";
    case Errc::Cancelled: return "cancelled";
    case Errc::Internal: return "internal error";
  }
  return "unknown";
}

// Maps an errno value onto the closest error code.
constexpr Errc errc_from_errno(int err) {
  switch (err) {
    case ENOENT: case ESRCH: case ENXIO: return Errc::NotFound;
    case EINVAL: case ENAMETOOLONG: case ELOOP: case ENOTDIR: case EISDIR: return Errc::InvalidArgument;
    case EEXIST: case ENOTEMPTY: return Errc::AlreadyExists;
    case EPERM: case EACCES: case EROFS: return Errc::PermissionDenied;
    case EBUSY: case EAGAIN: return Errc::Busy;
    case ENOSYS: case EOPNOTSUPP: case ENODEV: case EXDEV: return Errc::NotSupported;
    case ETIMEDOUT: return Errc::Timeout;
    default: return Errc::Internal;
  }
}

class Error {
 public:
  Error() = default;
  Error(Errc code, std::string message, int sys_errno = 0)
      : code_(code), errno_(sys_errno), message_(std::move(message)) {}

  // "OP OBJECT: strerror(err)", e.g. "mount overlay on /x/merged: Invalid argument".
  static Error from_errno(std::string_view op, std::string_view object, int err) {
    std::string msg(op);
    if (!object.empty()) {
      msg += ' ';
      msg += object;
    }
    msg += ": ";
    msg += std::strerror(err);
    return Error(errc_from_errno(err), std::move(msg), err);
  }

  Errc code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  std::string what() const { return message_; }

  // Adds context as the error rises: "pull x: layer sha256:...: <message>".
  Error& wrap(std::string_view context) & {
    message_.insert(0, std::string(context) + ": ");
    return *this;
  }
  Error&& wrap(std::string_view context) && {
    message_.insert(0, std::string(context) + ": ");
    return std::move(*this);
  }
  // Appends advice for the user: "<message> (hint)".
  Error&& hint(std::string_view advice) && {
    message_ += " (";
    message_ += advice;
    message_ += ")";
    return std::move(*this);
  }

 private:
  Errc code_ = Errc::Internal;
  int errno_ = 0;
  std::string message_;
};

template <class T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }
// The error from errno, captured at the call: `return fail_errno("open", path);`
inline std::unexpected<Error> fail_errno(std::string_view op, std::string_view object,
                                         int err = errno) {
  return std::unexpected<Error>(Error::from_errno(op, object, err));
}

}  // namespace berth

// Propagates an error with optional context: BERTH_TRY(auto x, f()); or BERTH_TRYV(g());
#define BERTH_CONCAT_INNER(a, b) a##b
#define BERTH_CONCAT(a, b) BERTH_CONCAT_INNER(a, b)
#define BERTH_TRY_IMPL(tmp, decl, expr)                                   \
  auto tmp = (expr);                                                      \
  if (!tmp) return std::unexpected<::berth::Error>(std::move(tmp).error()); \
  decl = std::move(*tmp)
#define BERTH_TRY(decl, expr) BERTH_TRY_IMPL(BERTH_CONCAT(berth_try_, __LINE__), decl, expr)
#define BERTH_TRYV(expr)                                                                   \
  do {                                                                                     \
    auto berth_tryv_ = (expr);                                                             \
    if (!berth_tryv_) return std::unexpected<::berth::Error>(std::move(berth_tryv_).error()); \
  } while (0)
