// The worker process of table_count_crash_test.cpp: Mephisto's command line (run_cli) over the tablecount
// example (agents/table_count.cpp) with a topic prefix of the test's own, so that each run meets only its own
// topics on the shared broker:
//
//   kafka_table_count_worker --prefix PREFIX worker tablecount --broker kafka://HOST:PORT --set ...
//
// `--prefix PREFIX` must come first; everything after it is run_cli's command line. Log lines (stderr) are
// sent to stdout, so that the driver reads them from one pipe, in order, line by line.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "agents/examples.h"
#include "runtime/cli/cli.h"

int main(int argc, char** argv) {
  if (argc < 3 || std::string(argv[1]) != "--prefix") {
    std::fprintf(stderr, "usage: kafka_table_count_worker --prefix PREFIX <run_cli arguments>...\n");
    return 2;
  }
  const std::string prefix = argv[2];
  if (::dup2(STDOUT_FILENO, STDERR_FILENO) < 0) {
    std::perror("dup2");
    return 1;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line into the pipe, as the log lines
  std::vector<char*> args = {argv[0]};
  for (int i = 3; i < argc; ++i) args.push_back(argv[i]);
  return mephisto::cli::run_cli({mephisto::examples::table_count_app(prefix)}, static_cast<int>(args.size()),
                                args.data(), {});
}
