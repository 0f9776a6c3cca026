// Result<T>: a value or an Error. Expected failures travel as values; callers must look at them ([[nodiscard]]).
#pragma once

#include <cassert>
#include <optional>
#include <utility>
#include <variant>

#include "runtime/seam/errors.h"

namespace mephisto {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {  // NOLINT
    assert(!std::get<1>(state_).ok() && "a Result error must carry a non-zero code");
  }

  [[nodiscard]] bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { assert(ok()); return std::get<0>(state_); }
  const T& value() const& { assert(ok()); return std::get<0>(state_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  [[nodiscard]] const Error& error() const { assert(!ok()); return std::get<1>(state_); }
  [[nodiscard]] ErrorCode code() const { return ok() ? ErrorCode::kNone : error().code; }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {  // NOLINT: implicit by design
    if (error_->ok()) error_.reset();
  }

  [[nodiscard]] bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const Error& error() const { assert(!ok()); return *error_; }
  [[nodiscard]] ErrorCode code() const { return ok() ? ErrorCode::kNone : error_->code; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace mephisto
