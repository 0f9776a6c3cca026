// The folders depend on each other only as the layering table in docs/DESIGN.md allows ("Who may include
// whom"): the framework never includes an example app (sim/ -> agents/), a benchmark never includes a test.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "layering_scan.h"

namespace mephisto::testing {
namespace {

const std::vector<std::string> kScannedDirs = {"models", "runtime", "sim", "agents", "tools", "tests"};

LayeringTable design_table() {
  std::ifstream in(std::string(MEPHISTO_SOURCE_DIR) + "/docs/DESIGN.md");
  std::stringstream text;
  text << in.rdbuf();
  return parse_layering_table(text.str());
}

TEST(Layering, TheDesignDocumentHasTheTable) {
  const LayeringTable table = design_table();
  ASSERT_GE(table.size(), 10U) << "docs/DESIGN.md lost its layering table (<!-- layering:begin --> ... end)";
  EXPECT_TRUE(table.at("sim").size() == 2U) << "sim/ may include runtime/seam and runtime/fiber only";
}

TEST(Layering, EveryIncludeIsOneTheTableAllows) {
  const LayeringTable table = design_table();
  ASSERT_FALSE(table.empty());
  std::string report;
  for (const LayeringViolation& v : scan_layering(MEPHISTO_SOURCE_DIR, kScannedDirs, table)) {
    report += v.file + (v.line > 0 ? ":" + std::to_string(v.line) : "") + ": " + v.why + "\n";
  }
  EXPECT_TRUE(report.empty()) << "layering violations (docs/DESIGN.md, \"Who may include whom\"):\n"
                              << report;
}

// The checker itself: the inversions the table exists to stop are found.
TEST(Layering, AnInversionIsFound) {
  const LayeringTable table = design_table();
  const auto scenario = check_file_layering(table, "sim/scenario/runner.cpp",
                                            "#include <map>\n#include \"sim/app/app_harness.h\"\n"
                                            "#include \"agents/examples.h\"\n");
  ASSERT_EQ(scenario.size(), 1U);
  EXPECT_EQ(scenario[0].line, 3);
  EXPECT_EQ(scenario[0].why, "sim/scenario may not include agents");
  const auto bench = check_file_layering(table, "tools/bench/bench_x.cpp", "#include \"tests/kafka/x.h\"\n");
  ASSERT_EQ(bench.size(), 1U);
  EXPECT_EQ(bench[0].why, "tools/bench may not include tests");
  const auto runtime = check_file_layering(table, "runtime/app/app.cpp", "#include \"sim/executor.h\"\n");
  ASSERT_EQ(runtime.size(), 1U);
  EXPECT_EQ(runtime[0].why, "runtime/app may not include sim");
  EXPECT_TRUE(check_file_layering(table, "runtime/cli/cli.cpp", "#include \"runtime/kafka/x.h\"\n").empty());
  EXPECT_EQ(check_file_layering(table, "elsewhere/x.cpp", "").size(), 1U);
}

}  // namespace
}  // namespace mephisto::testing
