// The reader's fuzz target, shared by the libFuzzer entry point and the bounded driver
// (trace_fuzz_corpus_main).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/trace/trace_reader.h"

namespace mephisto::trace::fuzz {

// What parse_trace made of one input.
struct FuzzOutcome {
  bool ok = false;
  TraceDefect defect = TraceDefect::kNone;  // ok: the tail (kNone or kTruncated); else the error's defect
};

// Parses `data` and checks what any parse must satisfy; a violation aborts with a message (that is the bug
// report: the input is the reproducer).
FuzzOutcome fuzz_one(const uint8_t* data, size_t size);

}  // namespace mephisto::trace::fuzz
