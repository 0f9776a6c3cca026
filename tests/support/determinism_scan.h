// Scans source trees for calls that would make the simulator nondeterministic: wall-clock reads, sleeps, threads
// and unseeded randomness (DESIGN.md, "Determinism rules"). Used by tests/unit/determinism_test.cpp.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace mephisto::testing {

struct DeterminismViolation {
  std::string file;  // path relative to the scanned root, with '/' separators
  int line = 0;      // 1-based
  std::string rule;  // which forbidden construct matched, e.g. "wall clock"
  std::string text;  // the offending source line, trimmed
};

// Scans every C++ source or header (.h .hpp .cc .cpp .cxx .ipp) below root/<dir> for each dir in `dirs`.
// Comments (// and /* */) and string literals are ignored. Files whose root-relative path is in `exceptions`
// are skipped: they are the production binding's files, the only ones allowed to touch real time and threads.
// Returns the violations sorted by file and line (so the report itself is deterministic).
[[nodiscard]] std::vector<DeterminismViolation> scan_for_nondeterminism(const std::filesystem::path& root,
                                                                        const std::vector<std::string>& dirs,
                                                                        const std::set<std::string>& exceptions);

}  // namespace mephisto::testing
