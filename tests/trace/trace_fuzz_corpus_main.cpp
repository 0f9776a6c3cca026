// Bounded, deterministic fuzzing of the trace reader for CI, where no libFuzzer is available (g++ only):
// replays the saved corpus (tests/trace/corpus), then mutates seed traces written by TraceWriter for N
// iterations or S seconds, whichever comes first, and prints iterations/s and what the reader made of the
// inputs.
//
//   trace_fuzz_corpus [--corpus DIR] [--iterations N] [--seconds S] [--seed X]
//   trace_fuzz_corpus --write-corpus DIR     (regenerates the saved corpus)
//
// The mutations aim at each layer of the format: raw bit flips, interesting bytes, truncations, insertions
// and duplicated ranges hit the framing; a frame's length varint gets boundary values; and CRC-fixed
// mutations change a frame's payload (or reorder frames) and recompute the CRC so that the protobuf parser
// and the event checks behind it are reached, not only the CRC check. Exit 1 if the run reached too little of
// the reader to count.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/trace/frame.h"
#include "runtime/trace/trace_reader.h"
#include "runtime/trace/trace_writer.h"
#include "trace_reader_fuzz.h"
#include "trace_test_support.h"

namespace mephisto::trace::fuzz {
namespace {

// splitmix64: a fixed algorithm, so a seed names the same run on every machine and standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n > 0 (the modulo bias is irrelevant here).
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

struct Seed {
  std::string name;
  std::string bytes;
};

// Traces the reader must accept, written by the real writer.
std::vector<Seed> make_seeds() {
  testing::ScratchDir dir("fuzz-seeds");
  std::vector<Seed> seeds;
  const auto options = [&](const std::string& name) {
    TraceWriterOptions o;
    o.dir = dir.str();
    o.writer_name = name;
    o.app_name = "tablecount";
    o.settings = {{"stream_buffer_maxsize", "10"}};
    return o;
  };
  testing::FakeClock clock;
  {
    auto writer = TraceWriter::open(options("payloads"), &clock);
    testing::record_every_kind(*writer.value(), clock);
  }
  {
    auto o = options("hashes");
    o.payloads = false;
    auto writer = TraceWriter::open(o, &clock);
    testing::record_every_kind(*writer.value(), clock);
  }
  {
    auto o = options("rotated");
    o.segment_max_bytes = 400;
    auto writer = TraceWriter::open(o, &clock);
    writer.value()->on_start(testing::test_start(clock.now));
    for (int i = 0; i < 12; ++i) {
      const ConsumerRecord record = testing::consumer_record("words", i % 2, i, "k" + std::to_string(i), "v");
      writer.value()->on_polled({&record});
    }
    writer.value()->on_stop(Status{});
  }
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir.str()))
    paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    seeds.push_back({std::filesystem::path(path).filename().string(), testing::read_bytes(path)});
  }
  return seeds;
}

// Where each frame starts and how long its payload is, as far as the bytes can be walked.
struct FrameSpan {
  size_t start = 0;
  size_t payload = 0;  // offset of the payload
  size_t length = 0;
};
std::vector<FrameSpan> frames_of(const std::string& bytes) {
  std::vector<FrameSpan> frames;
  if (bytes.size() < kMagic.size()) return frames;
  size_t at = kMagic.size();
  while (at < bytes.size()) {
    FrameSpan span;
    span.start = at;
    uint64_t length = 0;
    if (internal::read_varint(bytes, &at, &length) != internal::VarintRead::kOk) break;
    if (length > bytes.size() || at + internal::kCrcBytes + length > bytes.size()) break;
    span.payload = at + internal::kCrcBytes;
    span.length = static_cast<size_t>(length);
    frames.push_back(span);
    at = span.payload + span.length;
  }
  return frames;
}

std::string framed(std::string_view payload) {
  std::string out;
  internal::append_frame(out, payload);
  return out;
}

constexpr std::array<uint8_t, 7> kInterestingBytes = {0x00, 0xFF, 0x80, 0x7F, 0x01, 0x08, 0x12};

void mutate_payload(std::string& payload, SplitMix64& rng) {
  const size_t kind = rng.below(5);
  if (payload.empty() || kind == 0) {
    payload.insert(rng.below(payload.size() + 1), 1, static_cast<char>(rng.next()));
  } else if (kind == 1) {
    payload[rng.below(payload.size())] ^= static_cast<char>(1u << rng.below(8));
  } else if (kind == 2) {
    payload[rng.below(payload.size())] =
        static_cast<char>(kInterestingBytes[rng.below(kInterestingBytes.size())]);
  } else if (kind == 3) {
    payload.erase(rng.below(payload.size()), 1 + rng.below(4));
  } else {
    const size_t from = rng.below(payload.size());
    const size_t length = 1 + rng.below(std::min<size_t>(16, payload.size() - from));
    payload.insert(rng.below(payload.size() + 1), payload.substr(from, length));
  }
}

// One mutation of `bytes`, chosen by `rng`.
void mutate(std::string& bytes, SplitMix64& rng) {
  const size_t kind = rng.below(10);
  if (bytes.empty()) {
    bytes = std::string(kMagic);
    return;
  }
  switch (kind) {
    case 0:  // bit flip
      bytes[rng.below(bytes.size())] ^= static_cast<char>(1u << rng.below(8));
      return;
    case 1:  // interesting byte
      bytes[rng.below(bytes.size())] =
          static_cast<char>(kInterestingBytes[rng.below(kInterestingBytes.size())]);
      return;
    case 2:  // truncation
      bytes.resize(rng.below(bytes.size()));
      return;
    case 3: {  // insertion of random bytes
      std::string inserted(1 + rng.below(8), '\0');
      for (char& c : inserted) c = static_cast<char>(rng.next());
      bytes.insert(rng.below(bytes.size() + 1), inserted);
      return;
    }
    case 4: {  // a duplicated range
      const size_t from = rng.below(bytes.size());
      const size_t length = 1 + rng.below(std::min<size_t>(64, bytes.size() - from));
      bytes.insert(rng.below(bytes.size() + 1), bytes.substr(from, length));
      return;
    }
    default:
      break;
  }
  const auto frames = frames_of(bytes);
  if (frames.empty()) {
    bytes[rng.below(bytes.size())] ^= 0x01;
    return;
  }
  const FrameSpan& frame = frames[rng.below(frames.size())];
  switch (kind) {
    case 5: {  // the length varint gets a boundary value
      const std::array<uint64_t, 9> lengths = {
          0,    1,          frame.length + 1, frame.length - (frame.length > 0 ? 1 : 0),
          127,  1ULL << 31, kMaxFrameBytes,   kMaxFrameBytes + 1,
          ~0ULL};
      std::string varint;
      if (rng.below(8) == 0) {
        varint = std::string(11, '\x80');  // overlong
      } else {
        internal::append_varint(varint, lengths[rng.below(lengths.size())]);
      }
      const size_t varint_end = frame.payload - internal::kCrcBytes;
      bytes.replace(frame.start, varint_end - frame.start, varint);
      return;
    }
    case 6:
    case 7: {  // CRC-fixed: the payload changes and the frame is rebuilt around it, so the parser sees it
      std::string payload = bytes.substr(frame.payload, frame.length);
      const size_t rounds = 1 + rng.below(3);
      for (size_t i = 0; i < rounds; ++i) mutate_payload(payload, rng);
      bytes.replace(frame.start, frame.payload + frame.length - frame.start, framed(payload));
      return;
    }
    case 8: {  // CRC-fixed: a whole frame duplicated, moved or dropped (event order and index checks)
      const std::string whole = bytes.substr(frame.start, frame.payload + frame.length - frame.start);
      const size_t action = rng.below(3);
      if (action == 0) {
        bytes.insert(frames[rng.below(frames.size())].start, whole);
      } else if (action == 1) {
        bytes.erase(frame.start, whole.size());
      } else {
        bytes.erase(frame.start, whole.size());
        const auto rest = frames_of(bytes);
        bytes.insert(rest.empty() ? bytes.size() : rest[rng.below(rest.size())].start, whole);
      }
      return;
    }
    default: {  // CRC-fixed: a payload replaced by a fresh serialized Frame with a random field set
      Frame replacement;
      if (rng.below(2) == 0) {
        replacement.mutable_header()->set_format_version(static_cast<uint32_t>(rng.below(4)));
      } else {
        Event* event = replacement.mutable_event();
        event->set_index(rng.below(32));
        if (rng.below(2) == 0) event->mutable_timer_fired()->set_timer("t");
      }
      bytes.replace(frame.start, frame.payload + frame.length - frame.start,
                    framed(replacement.SerializeAsString()));
      return;
    }
  }
}

struct Counts {
  uint64_t inputs = 0;
  uint64_t ok = 0;
  uint64_t ok_torn_tail = 0;
  std::map<TraceDefect, uint64_t> errors;

  void add(const FuzzOutcome& outcome) {
    ++inputs;
    if (!outcome.ok) {
      ++errors[outcome.defect];
    } else if (outcome.defect == TraceDefect::kTruncated) {
      ++ok_torn_tail;
    } else {
      ++ok;
    }
  }
  void print(const char* what) const {
    std::printf("%s: %llu inputs: parsed ok %llu, ok with a torn tail %llu", what,
                static_cast<unsigned long long>(inputs), static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(ok_torn_tail));
    for (const auto& [defect, n] : errors) {
      std::printf(", %s %llu", trace_defect_name(defect), static_cast<unsigned long long>(n));
    }
    std::printf("\n");
  }
};

FuzzOutcome run(const std::string& bytes) {
  return fuzz_one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// The saved corpus: the seeds plus one file per defect the reader names, a few KB in all.
int write_corpus(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto seeds = make_seeds();
  std::map<std::string, std::string> files;
  for (const auto& seed : seeds) {
    // Keep the corpus small: the first segments of the rotated run are enough.
    if (seed.name.starts_with("rotated") && !seed.name.ends_with(".s0.mtrace") &&
        !seed.name.ends_with(".s1.mtrace")) {
      continue;
    }
    files["valid-" + seed.name] = seed.bytes;
  }
  const std::string& base = seeds.front().bytes;  // "hashes...": the smaller full trace
  const auto frames = frames_of(base);
  files["torn-tail.mtrace"] = base.substr(0, frames.back().start + 3);
  files["torn-header.mtrace"] = base.substr(0, frames.front().start + 5);
  std::string flipped = base;
  flipped[frames[2].payload + 1] ^= 0x04;
  files["crc-mismatch.mtrace"] = flipped;
  std::string huge = base.substr(0, frames[1].start);
  internal::append_varint(huge, kMaxFrameBytes + 1);
  files["impossible-length.mtrace"] = huge + base.substr(frames[1].payload - internal::kCrcBytes);
  Frame newer;
  newer.mutable_header()->set_format_version(kFormatVersion + 1);
  files["newer-version.mtrace"] = std::string(kMagic) + framed(newer.SerializeAsString());
  files["not-a-trace.mtrace"] = "this is not a trace\n";
  Frame bad_event;
  bad_event.mutable_event()->set_index(0);  // no kind
  files["event-without-kind.mtrace"] =
      base.substr(0, frames[1].start) + framed(bad_event.SerializeAsString());
  for (const auto& [name, bytes] : files) {
    testing::write_bytes((std::filesystem::path(dir) / name).string(), bytes);
    const FuzzOutcome outcome = run(bytes);
    std::printf("%-40s %6zu bytes  %s%s\n", name.c_str(), bytes.size(), outcome.ok ? "ok, tail " : "error ",
                trace_defect_name(outcome.defect));
  }
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: trace_fuzz_corpus [--corpus DIR] [--iterations N] [--seconds S] [--seed X]\n"
               "       trace_fuzz_corpus --write-corpus DIR\n");
  return 2;
}

int fuzz_main(int argc, char** argv) {
  std::string corpus_dir;
  uint64_t iterations = 200000;
  double seconds = 60;
  uint64_t seed = 0x5EED;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[++i];
    if (arg == "--write-corpus") return write_corpus(value);
    if (arg == "--corpus") {
      corpus_dir = value;
    } else if (arg == "--iterations") {
      iterations = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--seconds") {
      seconds = std::strtod(value.c_str(), nullptr);
    } else if (arg == "--seed") {
      seed = std::strtoull(value.c_str(), nullptr, 0);
    } else {
      return usage();
    }
  }

  std::vector<Seed> pool = make_seeds();
  Counts corpus;
  if (!corpus_dir.empty()) {
    std::vector<std::string> paths;
    for (const auto& entry : std::filesystem::directory_iterator(corpus_dir))
      paths.push_back(entry.path().string());
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
      Seed entry{std::filesystem::path(path).filename().string(), testing::read_bytes(path)};
      corpus.add(run(entry.bytes));
      pool.push_back(std::move(entry));
    }
    corpus.print("corpus");
  }
  SplitMix64 rng(seed);
  Counts mutated;
  using SteadyClock = std::chrono::steady_clock;
  const auto started = SteadyClock::now();
  const auto deadline =
      started + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  std::string input;
  uint64_t done = 0;
  for (; done < iterations; ++done) {
    // The clock is read every 256 inputs: cheap, and a 20 s bound overshoots by microseconds.
    if ((done & 0xFF) == 0 && SteadyClock::now() >= deadline) break;
    // Tiny entries (the defect files of the corpus) reach little of the reader: mostly picked again.
    const Seed* picked = &pool[rng.below(pool.size())];
    if (picked->bytes.size() < 64 && rng.below(4) != 0) picked = &pool[rng.below(pool.size())];
    input = picked->bytes;
    // Mostly one mutation, sometimes up to four: each extra one mostly ends the parse earlier.
    size_t rounds = 1;
    while (rounds < 4 && rng.below(2) == 0) ++rounds;
    for (size_t r = 0; r < rounds; ++r) mutate(input, rng);
    mutated.add(run(input));
  }
  const double elapsed_s = std::chrono::duration<double>(SteadyClock::now() - started).count();
  std::printf("mutations: seed 0x%llx, %llu iterations in %.2f s (%.0f iterations/s)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(done), elapsed_s,
              elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0);
  mutated.print("mutations");

  // A run that never got past the CRC, or never produced a torn tail, tested less than it claims.
  const bool reached_parser = mutated.ok > 0 && mutated.errors[TraceDefect::kCorrupted] > 0 &&
                              mutated.ok_torn_tail + mutated.errors[TraceDefect::kTruncated] > 0;
  if (done >= 1000 && !reached_parser) {
    std::fprintf(stderr, "the mutations reached too little of the reader (see the counts above)\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace mephisto::trace::fuzz

int main(int argc, char** argv) {
  // Mutated frames with a valid CRC reach protobuf, which logs every string field that is not UTF-8; those
  // are expected here (the reader reports them as corrupted).
  google::protobuf::LogSilencer silence_protobuf;
  return mephisto::trace::fuzz::fuzz_main(argc, argv);
}
