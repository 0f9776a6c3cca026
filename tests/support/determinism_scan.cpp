#include "determinism_scan.h"

#include <algorithm>
#include <fstream>
#include <regex>

namespace mephisto::testing {
namespace {

struct Rule {
  const char* name;
  std::regex pattern;
};

// Identifier boundary before a call: not part of a longer name, and not a member call (`x.time(`, `x->rand(`),
// which belongs to some object of ours rather than to libc.
constexpr const char* kBefore = R"((^|[^A-Za-z0-9_.>]))";

const std::vector<Rule>& rules() {
  static const std::vector<Rule> kRules = [] {
    std::vector<Rule> r;
    auto add = [&](const char* name, const std::string& re) { r.push_back({name, std::regex(re)}); };
    add("wall clock", R"((system_clock|steady_clock|high_resolution_clock|utc_clock|file_clock)\s*::\s*now)");
    add("wall clock", std::string(kBefore) + R"((std\s*::\s*|::)?(time|gettimeofday|clock_gettime|timespec_get)\s*\()");
    add("wall clock", R"((std\s*::\s*|::)clock\s*\()");
    add("sleep", R"(this_thread\s*::\s*(sleep_for|sleep_until|yield))");
    add("sleep", std::string(kBefore) + R"((::)?(sleep|usleep|nanosleep)\s*\()");
    add("thread", R"(std\s*::\s*(thread|jthread|async)\b)");
    add("thread", R"(\bpthread_create\b)");
    add("unseeded randomness", R"(\brandom_device\b)");
    add("unseeded randomness", std::string(kBefore) + R"((std\s*::\s*|::)?(rand|srand|drand48|lrand48|rand_r)\s*\()");
    return r;
  }();
  return kRules;
}

bool is_source(const std::filesystem::path& p) {
  static const std::set<std::string> kExt = {".h", ".hpp", ".cc", ".cpp", ".cxx", ".ipp"};
  return kExt.count(p.extension().string()) > 0;
}

// Blanks out comments and string/char literals, keeping line structure. `in_block` carries a /* */ comment
// across lines.
std::string strip_comments_and_strings(const std::string& line, bool& in_block) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    if (in_block) {
      if (line.compare(i, 2, "*/") == 0) {
        in_block = false;
        ++i;
      }
      continue;
    }
    if (line.compare(i, 2, "//") == 0) break;
    if (line.compare(i, 2, "/*") == 0) {
      in_block = true;
      ++i;
      continue;
    }
    const char c = line[i];
    if (c == '"' || c == '\'') {
      // Skip to the closing quote, honouring escapes. Raw strings spanning lines are rare in our code; a raw
      // string on one line is still handled because its body ends at the matching quote or at end of line.
      size_t j = i + 1;
      while (j < line.size() && line[j] != c) j += (line[j] == '\\') ? 2 : 1;
      out += ' ';
      i = j;
      continue;
    }
    out += c;
  }
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<DeterminismViolation> scan_for_nondeterminism(const std::filesystem::path& root,
                                                          const std::vector<std::string>& dirs,
                                                          const std::set<std::string>& exceptions) {
  std::vector<DeterminismViolation> found;
  for (const auto& dir : dirs) {
    const auto base = root / dir;
    if (!std::filesystem::exists(base)) continue;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(base)) {
      if (!entry.is_regular_file() || !is_source(entry.path())) continue;
      const std::string rel = std::filesystem::relative(entry.path(), root).generic_string();
      if (exceptions.count(rel) > 0) continue;
      std::ifstream in(entry.path());
      std::string line;
      bool in_block = false;
      for (int number = 1; std::getline(in, line); ++number) {
        const std::string code = strip_comments_and_strings(line, in_block);
        for (const auto& rule : rules()) {
          if (std::regex_search(code, rule.pattern)) {
            found.push_back({rel, number, rule.name, trim(line)});
            break;
          }
        }
      }
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.file != b.file ? a.file < b.file : a.line < b.line;
  });
  return found;
}

}  // namespace mephisto::testing
