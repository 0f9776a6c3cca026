#include "layering_scan.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace mephisto::testing {
namespace {

// The backquoted words of a table cell: "`a` `b`" -> {a, b}.
std::vector<std::string> quoted_words(const std::string& cell) {
  std::vector<std::string> out;
  static const std::regex word("`([^`]+)`");
  for (auto it = std::sregex_iterator(cell.begin(), cell.end(), word); it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

bool inside(const std::string& path, const std::string& folder) {
  return path == folder || path.rfind(folder + "/", 0) == 0;
}

bool allowed(const LayeringTable& table, const std::string& from, const std::string& to) {
  if (from == to) return true;
  const auto row = table.find(from);
  if (row == table.end()) return false;
  for (const std::string& dep : row->second) {
    if (dep == to) return true;
    // "runtime/*": every folder below runtime/.
    if (dep.size() > 2 && dep.compare(dep.size() - 2, 2, "/*") == 0 &&
        to.rfind(dep.substr(0, dep.size() - 1), 0) == 0) {
      return true;
    }
  }
  return false;
}

std::set<std::string> checked_tops(const LayeringTable& table) {
  std::set<std::string> tops = {"tests", "tools"};
  for (const auto& [folder, deps] : table) tops.insert(folder.substr(0, folder.find('/')));
  return tops;
}

}  // namespace

LayeringTable parse_layering_table(const std::string& markdown) {
  LayeringTable table;
  const auto begin = markdown.find("<!-- layering:begin -->");
  const auto end = markdown.find("<!-- layering:end -->");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return table;
  std::istringstream lines(markdown.substr(begin, end - begin));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') continue;
    const auto second_bar = line.find('|', 1);
    if (second_bar == std::string::npos) continue;
    const std::vector<std::string> folder = quoted_words(line.substr(1, second_bar - 1));
    if (folder.size() != 1) continue;  // the header and the separator row
    table[folder[0]] = quoted_words(line.substr(second_bar + 1));
  }
  return table;
}

std::string layer_of(const LayeringTable& table, const std::string& path) {
  std::string best;
  for (const auto& [folder, deps] : table) {
    if (inside(path, folder) && folder.size() > best.size()) best = folder;
  }
  return best;
}

std::vector<LayeringViolation> check_file_layering(const LayeringTable& table, const std::string& path,
                                                   const std::string& source) {
  std::vector<LayeringViolation> out;
  const std::string from = layer_of(table, path);
  if (from.empty()) {
    out.push_back(
        {path, 0, "", path + " is in no folder of the layering table (docs/DESIGN.md): add its row"});
    return out;
  }
  const std::set<std::string> tops = checked_tops(table);
  static const std::regex include(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::istringstream lines(source);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::smatch m;
    if (!std::regex_search(line, m, include)) continue;
    const std::string target = m[1].str();
    const auto slash = target.find('/');
    if (slash == std::string::npos || tops.count(target.substr(0, slash)) == 0) continue;
    const std::string to = layer_of(table, target);
    if (to.empty()) {
      out.push_back({path, number, target, target + " is in no folder of the layering table"});
    } else if (!allowed(table, from, to)) {
      out.push_back({path, number, target, from + " may not include " + to});
    }
  }
  return out;
}

std::vector<LayeringViolation> scan_layering(const std::filesystem::path& root,
                                             const std::vector<std::string>& dirs,
                                             const LayeringTable& table) {
  static const std::set<std::string> kSourceExtensions = {".h", ".hpp", ".cc", ".cpp", ".cxx", ".ipp"};
  std::vector<LayeringViolation> out;
  for (const std::string& dir : dirs) {
    const std::filesystem::path base = root / dir;
    if (!std::filesystem::exists(base)) continue;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(base)) {
      if (!entry.is_regular_file() || kSourceExtensions.count(entry.path().extension().string()) == 0)
        continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string rel = std::filesystem::relative(entry.path(), root).generic_string();
      for (LayeringViolation& v : check_file_layering(table, rel, text.str())) out.push_back(std::move(v));
    }
  }
  std::sort(out.begin(), out.end(), [](const LayeringViolation& a, const LayeringViolation& b) {
    return a.file != b.file ? a.file < b.file : a.line < b.line;
  });
  return out;
}

}  // namespace mephisto::testing
