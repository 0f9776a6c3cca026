// Headless Chromium for the report tests: a page's DOM after its scripts ran (chromium --dump-dom).
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace mephisto::sim::scenario::testing {

// The browser binary, or "" if none is installed (tools/install-deps.sh installs Debian's chromium).
inline std::string chromium_path() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  return "";
}

struct DumpedDom {
  int status = -1;  // the command's wait status (0: rendered)
  std::string dom;  // the serialized DOM
  std::string stderr_text;
  std::string command;  // for failure messages
};

// Opens `page` in headless Chromium (at most 60 s) with a profile of its own under `work_dir`, so concurrent
// runs do not share (and lock) one.
inline DumpedDom dump_dom(const std::filesystem::path& page, const std::filesystem::path& work_dir) {
  DumpedDom out;
  const std::filesystem::path stderr_path = work_dir / "chromium-stderr.txt";
  out.command = "timeout 60 " + chromium_path() +
                " --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir='" +
                (work_dir / "chromium-profile").string() + "' --dump-dom 'file://" + page.string() + "' 2>'" +
                stderr_path.string() + "'";
  FILE* pipe = popen(out.command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.dom.append(buffer.data(), n);
  out.status = pclose(pipe);
  std::ifstream in(stderr_path);
  out.stderr_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return out;
}

}  // namespace mephisto::sim::scenario::testing
