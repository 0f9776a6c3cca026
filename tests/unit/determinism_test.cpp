// The determinism rule as a test (DESIGN.md): code the simulator runs must not read the wall clock, sleep, start
// threads or draw unseeded randomness. Only the production binding's files, listed here by name, may.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "determinism_scan.h"

namespace mephisto::testing {
namespace {

// The production binding: the only files under runtime/, sim/ and agents/ that may touch real time and threads.
// Each entry must exist (a stale entry fails the test), so the list cannot silently outlive its file.
const std::set<std::string> kProductionBindingFiles = {
#include "determinism_exceptions.inc"
};

const std::vector<std::string> kScannedDirs = {"runtime", "sim", "agents"};

std::string describe(const std::vector<DeterminismViolation>& violations) {
  std::ostringstream out;
  for (const auto& v : violations) out << "  " << v.file << ":" << v.line << ": " << v.rule << ": " << v.text << "\n";
  return out.str();
}

TEST(Determinism, SimulatedCodeUsesNoWallClockSleepsThreadsOrUnseededRandomness) {
  const auto violations = scan_for_nondeterminism(MEPHISTO_SOURCE_DIR, kScannedDirs, kProductionBindingFiles);
  EXPECT_TRUE(violations.empty())
      << "forbidden calls in code the simulator runs (use the Clock/Random of the environment object instead,\n"
         "or, for a production binding file, add it by name to tests/unit/determinism_exceptions.inc):\n"
      << describe(violations);
}

TEST(Determinism, EveryListedExceptionExists) {
  for (const auto& file : kProductionBindingFiles) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(MEPHISTO_SOURCE_DIR) / file))
        << file << " is listed as a production binding file but does not exist; remove it from the list";
  }
}

// The scanner itself must catch each forbidden construct, and only those: a tree made on the fly.
class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("mephisto-determinism-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sim");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::vector<DeterminismViolation> scan_one(const std::string& body, const std::set<std::string>& exceptions = {}) {
    std::ofstream(root_ / "sim" / "probe.cpp") << body;
    return scan_for_nondeterminism(root_, kScannedDirs, exceptions);
  }

  std::filesystem::path root_;
};

TEST_F(ScannerTest, FlagsEachForbiddenConstructWithFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"auto t = std::chrono::system_clock::now();", "wall clock"},
      {"auto t = std::chrono::steady_clock::now();", "wall clock"},
      {"auto t = high_resolution_clock::now();", "wall clock"},
      {"long t = time(nullptr);", "wall clock"},
      {"long t = std::time(NULL);", "wall clock"},
      {"gettimeofday(&tv, nullptr);", "wall clock"},
      {"clock_gettime(CLOCK_MONOTONIC, &ts);", "wall clock"},
      {"std::this_thread::sleep_for(std::chrono::milliseconds(5));", "sleep"},
      {"usleep(10);", "sleep"},
      {"std::thread worker([] {});", "thread"},
      {"std::jthread worker([] {});", "thread"},
      {"auto f = std::async([] { return 1; });", "thread"},
      {"std::random_device rd;", "unseeded randomness"},
      {"int r = rand() % 6;", "unseeded randomness"},
      {"int r = std::rand();", "unseeded randomness"},
  };
  for (const auto& [code, rule] : cases) {
    const auto found = scan_one("// header\n" + code + "\n");
    ASSERT_EQ(found.size(), 1u) << code;
    EXPECT_EQ(found[0].file, "sim/probe.cpp");
    EXPECT_EQ(found[0].line, 2) << code;
    EXPECT_EQ(found[0].rule, rule) << code;
  }
}

TEST_F(ScannerTest, IgnoresCommentsStringsMembersAndLookalikes) {
  const auto found = scan_one(
      "// we never call rand() or std::this_thread::sleep_for here\n"
      "/* system_clock::now() is forbidden,\n"
      "   and so is time(nullptr) */\n"
      "const char* doc = \"rand() and std::thread\";\n"
      "auto t = env.clock().now_ms();\n"
      "auto x = rng.rand();\n"
      "auto y = ptr->time();\n"
      "int operand(int x);\n"
      "auto timeout_ms = runtime(3);\n");
  EXPECT_TRUE(found.empty()) << describe(found);
}

TEST_F(ScannerTest, ListedProductionBindingFilesAreExempt) {
  EXPECT_EQ(scan_one("std::this_thread::sleep_for(x);\n").size(), 1u);
  EXPECT_TRUE(scan_one("std::this_thread::sleep_for(x);\n", {"sim/probe.cpp"}).empty());
}

}  // namespace
}  // namespace mephisto::testing
