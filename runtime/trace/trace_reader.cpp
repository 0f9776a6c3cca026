// Reading trace files back. Every length read from a file is checked against kMaxFrameBytes and against the
// bytes that remain before anything is allocated or parsed, so a damaged or hostile file costs at most its
// own size.
#include "runtime/trace/trace_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "runtime/trace/frame.h"

namespace mephisto::trace {
namespace {

using internal::kCrcBytes;
using internal::read_le32;
using internal::read_varint;
using internal::VarintRead;

constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t fnv1a(uint64_t hash, std::string_view bytes) {
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= kFnvPrime;
  }
  return hash;
}

uint64_t fnv1a_length(uint64_t hash, uint64_t length) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFFu);
  return fnv1a(hash, std::string_view(bytes, sizeof(bytes)));
}

// What a reader should do about each defect: the last part of every message.
const char* advice(TraceDefect defect) {
  switch (defect) {
    case TraceDefect::kNotATrace:
      return "this is not a Mephisto trace file (no MEPHTRC magic); keep only *.mtrace files written by "
             "`mephisto worker --record` or `mephisto sim --trace` in the directory";
    case TraceDefect::kTruncated:
      return "the worker died while creating this file, before its header was written; it holds no events: "
             "delete it, the segments before it are intact";
    case TraceDefect::kCorrupted:
      return "the file was damaged after it was written; re-record, or replay the incarnations before it";
    case TraceDefect::kNewerVersion:
      return "replay it with a newer mephisto";
    case TraceDefect::kInconsistent:
      return "the directory mixes files that do not belong together (copied or renamed segments, or two "
             "recordings under one writer name); keep one recording's files per writer name";
    case TraceDefect::kNone:
      break;
  }
  return "";
}

Error defect_error(const std::string& path, int64_t offset, TraceDefect defect, const std::string& detail,
                   const char* what_to_do = nullptr) {
  std::ostringstream message;
  message << "trace " << path << ": byte " << offset << ": " << trace_defect_name(defect) << " (" << detail
          << "): " << (what_to_do != nullptr ? what_to_do : advice(defect));
  return Error::of(ErrorCode::kInvalidArg, message.str());
}

// The position-less form for defects between files.
Error inconsistent_error(const std::string& files, const std::string& detail) {
  std::ostringstream message;
  message << "trace " << files << ": " << trace_defect_name(TraceDefect::kInconsistent) << " (" << detail
          << "): " << advice(TraceDefect::kInconsistent);
  return Error::of(ErrorCode::kInvalidArg, message.str());
}

// One frame located in the bytes, its payload not yet parsed.
struct RawFrame {
  size_t start = 0;  // of the length varint
  std::string_view payload;
};

enum class FrameRead { kOk, kEnd, kTorn, kCorrupted };

// Locates the frame at *offset. kTorn: the bytes end inside it (a crash while writing). kCorrupted: `detail`
// says why.
FrameRead next_frame(std::string_view bytes, size_t* offset, RawFrame* frame, std::string* detail) {
  if (*offset == bytes.size()) return FrameRead::kEnd;
  frame->start = *offset;
  size_t at = *offset;
  uint64_t length = 0;
  switch (read_varint(bytes, &at, &length)) {
    case VarintRead::kTruncated:
      return FrameRead::kTorn;
    case VarintRead::kOverlong:
      *detail = "frame length is not a valid varint";
      return FrameRead::kCorrupted;
    case VarintRead::kOk:
      break;
  }
  if (length > kMaxFrameBytes) {
    *detail = "impossible frame length " + std::to_string(length) + " (the limit is " +
              std::to_string(kMaxFrameBytes) + ")";
    return FrameRead::kCorrupted;
  }
  const size_t remaining = bytes.size() - at;
  if (remaining < kCrcBytes || remaining - kCrcBytes < length) return FrameRead::kTorn;
  const uint32_t stored_crc = read_le32(bytes, at);
  frame->payload = bytes.substr(at + kCrcBytes, static_cast<size_t>(length));
  if (internal::crc32c(frame->payload) != stored_crc) {
    *detail = "CRC mismatch";
    return FrameRead::kCorrupted;
  }
  *offset = at + kCrcBytes + static_cast<size_t>(length);
  return FrameRead::kOk;
}

bool parse_frame(std::string_view payload, Frame* frame) {
  return frame->ParseFromArray(payload.data(), static_cast<int>(payload.size()));
}

std::string file_name_of(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// The header fields every segment of one incarnation repeats.
auto incarnation_identity(const TraceHeader& h) {
  return std::make_tuple(h.app_name(), h.app_id(), h.worker_id(), h.payloads(), h.source(),
                         h.processing_guarantee(), h.start_time_ms());
}

std::string join_names(const std::vector<TraceFile*>& files) {
  std::string out;
  for (const TraceFile* file : files) {
    if (!out.empty()) out += ", ";
    out += file->path;
  }
  return out;
}

}  // namespace

const char* trace_defect_name(TraceDefect defect) {
  switch (defect) {
    case TraceDefect::kNone:
      return "none";
    case TraceDefect::kNotATrace:
      return "not a trace";
    case TraceDefect::kTruncated:
      return "truncated";
    case TraceDefect::kCorrupted:
      return "corrupted";
    case TraceDefect::kNewerVersion:
      return "newer version";
    case TraceDefect::kInconsistent:
      return "inconsistent";
  }
  return "unknown";
}

TraceDefect trace_defect_of(const Error& error) {
  if (error.code != ErrorCode::kInvalidArg) return TraceDefect::kNone;
  for (const TraceDefect defect : {TraceDefect::kNotATrace, TraceDefect::kTruncated, TraceDefect::kCorrupted,
                                   TraceDefect::kNewerVersion, TraceDefect::kInconsistent}) {
    // Messages read "...: <defect name> (<detail>): ...": the name sits between ": " and " (".
    const std::string marker = std::string(": ") + trace_defect_name(defect) + " (";
    if (error.message.find(marker) != std::string::npos) return defect;
  }
  return TraceDefect::kNone;
}

uint64_t payload_hash(std::string_view bytes) {
  const uint64_t hash = fnv1a(kFnvOffsetBasis, bytes);
  return hash == 0 ? 1 : hash;  // 0 means "null"
}

uint64_t table_contents_hash(const std::vector<std::pair<std::string, std::string>>& contents) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(contents.size());
  for (const auto& entry : contents) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
  uint64_t hash = kFnvOffsetBasis;
  for (const auto* entry : sorted) {
    hash = fnv1a_length(hash, entry->first.size());
    hash = fnv1a(hash, entry->first);
    hash = fnv1a_length(hash, entry->second.size());
    hash = fnv1a(hash, entry->second);
  }
  return hash;
}

Result<TraceFile> parse_trace(std::string_view bytes, const std::string& path) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    // A proper prefix of the magic (or nothing) is a file the writer was creating when it died.
    if (bytes.size() < kMagic.size() && kMagic.substr(0, bytes.size()) == bytes) {
      return defect_error(path, static_cast<int64_t>(bytes.size()), TraceDefect::kTruncated,
                          "the file ends inside its magic");
    }
    return defect_error(path, 0, TraceDefect::kNotATrace, "no trace magic");
  }
  TraceFile file;
  file.path = path;
  size_t offset = kMagic.size();
  RawFrame raw;
  std::string detail;
  Frame frame;

  switch (next_frame(bytes, &offset, &raw, &detail)) {
    case FrameRead::kEnd:
    case FrameRead::kTorn:
      return defect_error(path, static_cast<int64_t>(kMagic.size()), TraceDefect::kTruncated,
                          "the file ends inside its header");
    case FrameRead::kCorrupted:
      return defect_error(path, static_cast<int64_t>(raw.start), TraceDefect::kCorrupted, detail);
    case FrameRead::kOk:
      break;
  }
  if (!parse_frame(raw.payload, &frame)) {
    return defect_error(path, static_cast<int64_t>(raw.start), TraceDefect::kCorrupted,
                        "the header frame does not parse");
  }
  if (frame.kind_case() != Frame::kHeader) {
    return defect_error(path, static_cast<int64_t>(raw.start), TraceDefect::kCorrupted,
                        "the first frame is not a header");
  }
  file.header = std::move(*frame.mutable_header());
  const uint32_t version = file.header.format_version();
  if (version > kFormatVersion) {
    const std::string what_to_do = "written by trace format " + std::to_string(version) +
                                   ", this build reads up to " + std::to_string(kFormatVersion) +
                                   ": replay it with a newer mephisto";
    return defect_error(path, static_cast<int64_t>(raw.start), TraceDefect::kNewerVersion,
                        "format_version " + std::to_string(version), what_to_do.c_str());
  }
  if (version == 0) {
    return defect_error(path, static_cast<int64_t>(raw.start), TraceDefect::kCorrupted,
                        "the header has no format_version");
  }

  for (;;) {
    const FrameRead read = next_frame(bytes, &offset, &raw, &detail);
    if (read == FrameRead::kEnd) break;
    if (read == FrameRead::kTorn) {
      file.tail = TraceDefect::kTruncated;
      file.tail_offset = static_cast<int64_t>(raw.start);
      break;
    }
    const auto at = static_cast<int64_t>(raw.start);
    if (read == FrameRead::kCorrupted) return defect_error(path, at, TraceDefect::kCorrupted, detail);
    frame.Clear();
    if (!parse_frame(raw.payload, &frame)) {
      return defect_error(path, at, TraceDefect::kCorrupted, "the frame does not parse");
    }
    if (frame.kind_case() != Frame::kEvent) {
      return defect_error(path, at, TraceDefect::kCorrupted, "a frame after the header is not an event");
    }
    Event& event = *frame.mutable_event();
    // A new event kind comes with a new format version, so an event of no known kind is damage.
    if (event.kind_case() == Event::KIND_NOT_SET) {
      return defect_error(path, at, TraceDefect::kCorrupted, "an event of no known kind");
    }
    const uint64_t expected = file.header.first_event() + file.events.size();
    if (event.index() != expected) {
      return defect_error(path, at, TraceDefect::kCorrupted,
                          "event index " + std::to_string(event.index()) + " where " +
                              std::to_string(expected) + " was expected");
    }
    file.events.push_back(std::move(event));
  }
  return file;
}

Result<TraceFile> read_trace_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error::of(ErrorCode::kFail, "trace " + path + ": cannot open: " + std::strerror(errno) +
                                           "; check the path and its permissions");
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Error::of(ErrorCode::kFail, "trace " + path + ": cannot read: " + std::strerror(errno) +
                                           "; check the disk and retry");
  }
  return parse_trace(bytes, path);
}

Result<TraceSet> read_trace_dir(const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return Error::of(ErrorCode::kFail, "trace directory " + dir + ": not a directory" +
                                           (error ? " (" + error.message() + ")" : std::string()) +
                                           "; pass the directory given to --record or --trace");
  }
  std::vector<std::string> paths;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() == ".mtrace" && it->is_regular_file(error))
      paths.push_back(it->path().string());
  }
  if (error)
    return Error::of(ErrorCode::kFail, "trace directory " + dir + ": cannot list: " + error.message());
  if (paths.empty()) {
    return Error::of(ErrorCode::kFail, "trace directory " + dir +
                                           ": no trace files (*.mtrace) in it; was the worker recording?");
  }
  std::sort(paths.begin(), paths.end());

  TraceSet set;
  std::vector<TraceFile> files;
  files.reserve(paths.size());
  for (const auto& path : paths) {
    auto file = read_trace_file(path);
    if (!file.ok()) {
      // A file torn inside its header is a segment the worker died creating: it never held an event, so it is
      // left out rather than making the whole directory unreadable.
      if (trace_defect_of(file.error()) == TraceDefect::kTruncated) {
        set.skipped.push_back(file_name_of(path) +
                              ": torn inside its header (the worker died creating it); "
                              "ignored");
        continue;
      }
      return file.error();
    }
    files.push_back(std::move(file).value());
  }

  // Grouped by what the headers say, not by file names, which a user may have changed.
  std::map<std::pair<std::string, uint64_t>, std::vector<TraceFile*>> groups;
  for (auto& file : files) {
    groups[{file.header.writer_name(), file.header.incarnation()}].push_back(&file);
  }
  for (auto& [key, segments] : groups) {
    std::sort(segments.begin(), segments.end(), [](const TraceFile* a, const TraceFile* b) {
      return a->header.segment() < b->header.segment();
    });
    const std::string name = key.first + ".i" + std::to_string(key.second);
    if (segments.front()->header.segment() != 0) {
      set.skipped.push_back(name + " (" + join_names(segments) +
                            "): its segment 0 was rotated away (the writer's size cap); replay starts at a "
                            "later incarnation");
      continue;
    }
    Incarnation incarnation;
    incarnation.header = segments.front()->header;
    uint64_t expected = 0;  // the index the next segment's first event must have
    for (size_t i = 0; i < segments.size(); ++i) {
      TraceFile& file = *segments[i];
      if (i > 0) {
        const TraceFile& previous = *segments[i - 1];
        const std::string pair = previous.path + ", " + file.path;
        if (file.header.segment() == previous.header.segment()) {
          return inconsistent_error(pair,
                                    name + " has two segments " + std::to_string(file.header.segment()));
        }
        if (file.header.segment() != previous.header.segment() + 1) {
          return inconsistent_error(
              pair, name + " misses segment " + std::to_string(previous.header.segment() + 1));
        }
        if (incarnation_identity(file.header) != incarnation_identity(incarnation.header)) {
          return inconsistent_error(pair, "the headers of " + name +
                                              "'s segments disagree (app, worker, "
                                              "payloads, source, guarantee or start time)");
        }
        if (previous.tail != TraceDefect::kNone) {
          return inconsistent_error(
              pair, previous.path + " has a torn tail but is not " + name + "'s last segment");
        }
        if (file.header.first_event() != expected) {
          return inconsistent_error(pair, file.path + " starts at event " +
                                              std::to_string(file.header.first_event()) + ", " +
                                              std::to_string(expected) + " was expected");
        }
      } else if (file.header.first_event() != 0) {
        return inconsistent_error(file.path, name + "'s segment 0 starts at event " +
                                                 std::to_string(file.header.first_event()) + ", not 0");
      }
      incarnation.files.push_back(file.path);
      expected = file.header.first_event() + file.events.size();
      for (auto& event : file.events) incarnation.events.push_back(std::move(event));
    }
    incarnation.truncated = segments.back()->tail != TraceDefect::kNone;
    incarnation.complete = !incarnation.events.empty() && incarnation.events.back().has_stopped();
    set.incarnations.push_back(std::move(incarnation));
  }
  return set;
}

}  // namespace mephisto::trace
