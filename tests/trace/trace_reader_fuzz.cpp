// Fuzz target of the trace reader (runtime/trace/trace_reader.h): parse_trace must never crash, never read
// out of bounds (ASan), and what it accepts must be what the format promises.
#include "trace_reader_fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mephisto::trace::fuzz {
namespace {

constexpr const char* kPath = "fuzz.mtrace";

[[noreturn]] void violated(const std::string& what) {
  std::fprintf(stderr, "trace reader fuzz: invariant violated: %s\n", what.c_str());
  std::abort();
}

void check(bool condition, const std::string& what) {
  if (!condition) violated(what);
}

}  // namespace

FuzzOutcome fuzz_one(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto file = parse_trace(bytes, kPath);
  FuzzOutcome outcome;
  if (!file.ok()) {
    const Error& error = file.error();
    outcome.defect = trace_defect_of(error);
    check(error.code == ErrorCode::kInvalidArg, "a defect must be kInvalidArg: " + error.message);
    check(outcome.defect != TraceDefect::kNone && outcome.defect != TraceDefect::kInconsistent,
          "an error must name a file defect: " + error.message);
    check(error.message.starts_with(std::string("trace ") + kPath + ": byte "),
          "an error must name the path and the byte: " + error.message);
    return outcome;
  }
  outcome.ok = true;
  outcome.defect = file->tail;
  const TraceHeader& header = file->header;
  check(header.format_version() >= 1 && header.format_version() <= kFormatVersion, "format version accepted");
  check(file->path == kPath, "path kept");
  for (size_t i = 0; i < file->events.size(); ++i) {
    const Event& event = file->events[i];
    check(event.index() == header.first_event() + i, "event indices contiguous from first_event");
    check(event.kind_case() != Event::KIND_NOT_SET, "every event has a kind");
  }
  if (file->tail == TraceDefect::kNone) {
    check(file->tail_offset == -1, "no tail offset without a torn tail");
  } else {
    check(file->tail == TraceDefect::kTruncated, "a tail is only ever torn");
    check(file->tail_offset > static_cast<int64_t>(kMagic.size()) &&
              file->tail_offset < static_cast<int64_t>(size),
          "the torn frame starts inside the file, after the header");
  }
  return outcome;
}

}  // namespace mephisto::trace::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mephisto::trace::fuzz::fuzz_one(data, size);
  return 0;
}
