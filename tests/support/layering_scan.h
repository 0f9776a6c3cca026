// Checks the folders' dependencies against the layering table of docs/DESIGN.md ("Who may include whom"):
// every
// `#include "folder/..."` of a source file must name the file's own folder or one its row allows. Used by
// tests/unit/layering_test.cpp.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mephisto::testing {

// folder -> the folders it may include ("runtime/*" allows every folder under runtime/).
using LayeringTable = std::map<std::string, std::vector<std::string>>;

// The table between `<!-- layering:begin -->` and `<!-- layering:end -->` in `markdown`: one row per line,
// `| `folder` | `dep` `dep` ... |`. Empty if the markers are missing.
[[nodiscard]] LayeringTable parse_layering_table(const std::string& markdown);

struct LayeringViolation {
  std::string file;     // root-relative, '/' separators
  int line = 0;         // 1-based; 0 for a file outside every listed folder
  std::string include;  // the included path ("" for a file outside every listed folder)
  std::string why;      // e.g. "sim/scenario may not include agents"
};

// The folder of the table a path belongs to: the longest listed folder containing it ("" : none).
[[nodiscard]] std::string layer_of(const LayeringTable& table, const std::string& path);

// Checks one file's includes (`source`: its text). Only includes whose first path component is the first
// component of a listed folder (or "tests"/"tools") are checked; system and same-folder relative includes are
// not.
[[nodiscard]] std::vector<LayeringViolation> check_file_layering(const LayeringTable& table,
                                                                 const std::string& path,
                                                                 const std::string& source);

// Checks every C++ source and header below root/<dir> for each dir in `dirs` (sorted by file and line).
[[nodiscard]] std::vector<LayeringViolation> scan_layering(const std::filesystem::path& root,
                                                           const std::vector<std::string>& dirs,
                                                           const LayeringTable& table);

}  // namespace mephisto::testing
