// fraudwatch: payments in, the state of each account in a table, one verdict per payment out, exactly once.
// A user's app built against an installed Mephisto (find_package(Mephisto)), nothing else.
#pragma once

#include <mephisto/mephisto.h>

#include "models/payments.pb.h"

namespace fraudwatch {

inline constexpr const char* kPaymentsTopic = "payments";
inline constexpr const char* kVerdictsTopic = "verdicts";
inline constexpr const char* kAccountsTable = "accounts";

// The rule, a pure function: the verdict on `payment` for an account whose state before it is `before`, and
// the state after it. A payment is flagged when it is over 5x the account's average so far (after 3
// payments), or over 1,000,000 cents.
struct Decision {
  Verdict verdict;
  AccountState after;
};
[[nodiscard]] Decision decide(const AccountState& before, const Payment& payment);

// The app. `planted_cache` plants the bug users write: the agent keeps each account's state in an
// actor-local map in front of the table, and reads the map instead of the table. Right until a partition
// moves to another worker, or a transaction aborts and its events are processed again.
[[nodiscard]] mephisto::AppDefinition app(bool planted_cache);

}  // namespace fraudwatch
