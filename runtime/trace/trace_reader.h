// Reading traces back (models/trace.proto, written by trace_writer.h): one incarnation's segments in order,
// checked frame by frame. Never crashes on bad input: every defect is a typed error naming the file and byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/trace.pb.h"
#include "runtime/seam/result.h"

namespace mephisto::trace {

// The format version this build writes and the newest it reads.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr std::string_view kMagic = "MEPHTRC\n";
// A frame larger than this is corruption (a length varint gone bad), not a record: no event comes near it.
inline constexpr uint64_t kMaxFrameBytes = 64ULL << 20;

enum class TraceDefect {
  kNone,
  kNotATrace,      // no magic: not a trace file at all
  kTruncated,      // the file ends inside a frame (a crash while writing): the complete frames before are kept
  kCorrupted,      // a CRC mismatch, an impossible length, or a frame that does not parse
  kNewerVersion,   // written by a newer Mephisto (format_version > kFormatVersion)
  kInconsistent,   // segments that do not belong together (other writer/incarnation, a gap in event indices)
};
[[nodiscard]] const char* trace_defect_name(TraceDefect defect);
// The defect an error of this module names (its message carries trace_defect_name), kNone for any other error
// (kFail: the file could not be read).
[[nodiscard]] TraceDefect trace_defect_of(const Error& error);

// One parsed file.
struct TraceFile {
  std::string path;
  TraceHeader header;
  std::vector<Event> events;
  // kTruncated only (a torn tail); any other defect is an error from read_trace_file().
  TraceDefect tail = TraceDefect::kNone;
  int64_t tail_offset = -1;  // byte where the torn frame starts
};

// Parses bytes (as read from `path`, used in messages only). Errors (kInvalidArg, message naming the path,
// byte offset and TraceDefect): kNotATrace, kCorrupted, kNewerVersion, and a file torn inside its header. A torn
// last frame is not an error: TraceFile::tail says so.
Result<TraceFile> parse_trace(std::string_view bytes, const std::string& path);
// Reads and parses a file. Errors: kFail (cannot read), else as parse_trace.
Result<TraceFile> read_trace_file(const std::string& path);

// One incarnation: its segments joined, events in index order.
struct Incarnation {
  TraceHeader header;  // of segment 0
  std::vector<Event> events;
  std::vector<std::string> files;
  bool truncated = false;  // the last segment has a torn tail (the worker died while writing)
  // The last event is Stopped: the worker ended cleanly (else it was killed, or the tail was lost).
  bool complete = false;
};

// Every incarnation found in `dir` (files *.mtrace), ordered by writer name then incarnation. Incarnations whose
// segment 0 was rotated away are skipped and named in `skipped`. Errors: kFail (no such directory, or no trace
// files in it), or the first defective file's error (kInconsistent for segments that do not join).
struct TraceSet {
  std::vector<Incarnation> incarnations;
  std::vector<std::string> skipped;
};
Result<TraceSet> read_trace_dir(const std::string& dir);

// FNV-1a 64 over bytes: the hash of keys and values when payloads are off (0 is reserved for "null").
[[nodiscard]] uint64_t payload_hash(std::string_view bytes);
// TableOpened::contents_hash: FNV-1a 64 over the pairs sorted by (key, value), each as its key's length
// (8 bytes, little-endian), the key, the value's length and the value, so that no two different contents
// share an input.
[[nodiscard]] uint64_t table_contents_hash(const std::vector<std::pair<std::string, std::string>>& contents);

}  // namespace mephisto::trace
