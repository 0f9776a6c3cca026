// runtime/trace: TraceWriter and the reader, through files on disk. Round trips of every event kind (payloads
// and hashes), rotation and the size cap, and each defect the reader must name: torn tails, flipped bytes,
// newer versions, foreign files, segments that do not belong together.
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/trace/frame.h"
#include "runtime/trace/trace_reader.h"
#include "runtime/trace/trace_writer.h"
#include "trace_test_support.h"

namespace mephisto::trace {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::FakeClock;
using ::testing::HasSubstr;
using testing::read_bytes;
using testing::record_every_kind;
using testing::ScratchDir;
using testing::test_start;
using testing::write_bytes;

std::string test_name() {
  return ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

TraceWriterOptions options_for(const ScratchDir& dir, const std::string& writer_name = "w1") {
  TraceWriterOptions options;
  options.dir = dir.str();
  options.writer_name = writer_name;
  options.app_name = "tablecount";
  options.source = "sim";
  options.settings = {{"stream_buffer_maxsize", "10"}, {"worker_id", "w0"}};
  return options;
}

std::unique_ptr<TraceWriter> open_writer(TraceWriterOptions options, const Clock* clock) {
  auto writer = TraceWriter::open(std::move(options), clock);
  EXPECT_TRUE(writer.ok()) << writer.error().message;
  return std::move(writer).value();
}

// Where each frame starts (the first is the header's).
std::vector<size_t> frame_starts(const std::string& bytes) {
  std::vector<size_t> starts;
  size_t at = kMagic.size();
  while (at < bytes.size()) {
    starts.push_back(at);
    uint64_t length = 0;
    if (internal::read_varint(bytes, &at, &length) != internal::VarintRead::kOk) break;
    at += internal::kCrcBytes + length;
  }
  return starts;
}

// ---- round trips

TEST(TraceRoundTrip, EveryEventKindWithPayloads) {
  ScratchDir dir(test_name());
  FakeClock clock;
  auto writer = open_writer(options_for(dir), &clock);
  const int events = record_every_kind(*writer, clock);
  EXPECT_EQ(writer->events_written(), static_cast<uint64_t>(events));
  EXPECT_FALSE(writer->error().has_value());
  writer.reset();

  auto file = read_trace_file(dir.file("w1.i0.s0.mtrace"));
  ASSERT_TRUE(file.ok()) << file.error().message;
  const TraceHeader& h = file->header;
  EXPECT_EQ(h.format_version(), kFormatVersion);
  EXPECT_EQ(h.app_name(), "tablecount");
  EXPECT_EQ(h.app_id(), "tablecount");
  EXPECT_EQ(h.worker_id(), "w0");
  EXPECT_EQ(h.writer_name(), "w1");
  EXPECT_EQ(h.incarnation(), 0u);
  EXPECT_EQ(h.segment(), 0u);
  EXPECT_EQ(h.first_event(), 0u);
  EXPECT_TRUE(h.payloads());
  EXPECT_EQ(h.source(), "sim");
  EXPECT_EQ(h.processing_guarantee(), "exactly_once");
  EXPECT_THAT(h.declarations(), ElementsAre("agent count topic=words", "table counts partitions=4"));
  EXPECT_EQ(h.settings().at("stream_buffer_maxsize"), "10");
  EXPECT_EQ(h.start_time_ms(), 1'000'000);
  EXPECT_EQ(file->tail, TraceDefect::kNone);

  const auto& ev = file->events;
  ASSERT_EQ(ev.size(), static_cast<size_t>(events));
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].index(), i);
    EXPECT_EQ(ev[i].time_ms(), static_cast<int64_t>(10 * (i + 1))) << i;
  }
  ASSERT_TRUE(ev[0].has_assigned());
  EXPECT_EQ(ev[0].assigned().partitions_size(), 2);
  EXPECT_EQ(ev[0].assigned().partitions(1).topic(), "words");
  EXPECT_EQ(ev[0].assigned().partitions(1).partition(), 1);
  EXPECT_EQ(ev[0].assigned().generation(), 7);

  ASSERT_TRUE(ev[1].has_polled());
  const Record& a = ev[1].polled().records(0);
  EXPECT_EQ(a.topic(), "words");
  EXPECT_EQ(a.offset(), 41);
  EXPECT_EQ(a.timestamp_ms(), 541);
  EXPECT_TRUE(a.has_key());
  EXPECT_EQ(a.key(), "k1");
  EXPECT_EQ(a.key_hash(), payload_hash("k1"));
  EXPECT_TRUE(a.has_value());
  EXPECT_EQ(a.value(), "v1");
  EXPECT_EQ(a.value_hash(), payload_hash("v1"));
  ASSERT_EQ(a.headers_size(), 2);
  EXPECT_EQ(a.headers(0).key(), "trace-id");
  EXPECT_EQ(a.headers(0).value(), "abc");
  EXPECT_FALSE(a.headers(1).has_value());

  ASSERT_TRUE(ev[2].has_polled());
  ASSERT_EQ(ev[2].polled().records_size(), 2);
  const Record& b = ev[2].polled().records(0);
  EXPECT_FALSE(b.has_key());
  EXPECT_FALSE(b.has_value());
  EXPECT_EQ(b.key_hash(), 0u);
  EXPECT_EQ(b.value_hash(), 0u);

  ASSERT_TRUE(ev[3].has_table_opened());
  const TableOpened& opened = ev[3].table_opened();
  EXPECT_EQ(opened.table(), "counts");
  EXPECT_EQ(opened.partition(), 2);
  EXPECT_TRUE(opened.has_applied_offset());
  EXPECT_EQ(opened.applied_offset(), 99);
  EXPECT_EQ(opened.entries(), 3u);
  ASSERT_EQ(opened.contents_size(), 3);  // sorted
  EXPECT_EQ(opened.contents(0).key(), "");
  EXPECT_EQ(opened.contents(1).key(), "alpha");
  EXPECT_EQ(opened.contents(1).value(), "2");
  EXPECT_EQ(opened.contents(2).key(), "zeta");
  EXPECT_EQ(opened.contents_hash(), table_contents_hash({{"alpha", "2"}, {"", ""}, {"zeta", "1"}}));

  ASSERT_TRUE(ev[4].has_table_applied());
  EXPECT_EQ(ev[4].table_applied().records(0).offset(), 100);
  EXPECT_EQ(ev[4].table_applied().records(0).value(), "3");
  ASSERT_TRUE(ev[5].has_restore_end());
  EXPECT_EQ(ev[5].restore_end().changelog().topic(), "tablecount-counts-changelog");
  EXPECT_EQ(ev[5].restore_end().end_offset(), 101);
  ASSERT_TRUE(ev[6].has_table_active());
  EXPECT_EQ(ev[6].table_active().table(), "counts");
  ASSERT_TRUE(ev[7].has_timer_fired());
  EXPECT_EQ(ev[7].timer_fired().timer(), "every-5s");

  ASSERT_TRUE(ev[8].has_sent());
  const Sent& sent = ev[8].sent();
  EXPECT_EQ(sent.record().topic(), "out");
  EXPECT_EQ(sent.record().partition(), -1);
  EXPECT_EQ(sent.record().value(), "payload");
  EXPECT_EQ(sent.record().timestamp_ms(), 1234);
  ASSERT_EQ(sent.sources_size(), 2);
  EXPECT_EQ(sent.sources(0).offset(), 41);
  EXPECT_EQ(sent.sources(1).timer(), "every-5s");

  ASSERT_TRUE(ev[9].has_delivered());
  EXPECT_EQ(ev[9].delivered().send_id(), sent.send_id());
  EXPECT_TRUE(ev[9].delivered().outcome().ok());
  EXPECT_EQ(ev[9].delivered().partition(), 5);
  EXPECT_EQ(ev[9].delivered().offset(), 77);
  ASSERT_TRUE(ev[10].has_delivered());
  EXPECT_FALSE(ev[10].delivered().outcome().ok());
  EXPECT_EQ(ev[10].delivered().outcome().error_code(), static_cast<int32_t>(ErrorCode::kMessageTimedOut));
  EXPECT_EQ(ev[10].delivered().outcome().error(), "timed out");
  EXPECT_EQ(ev[10].delivered().offset(), -1);

  ASSERT_TRUE(ev[11].has_committed());
  EXPECT_TRUE(ev[11].committed().outcome().ok());
  EXPECT_EQ(ev[11].committed().offsets(0).offset(), 42);
  ASSERT_TRUE(ev[12].has_transaction());
  EXPECT_EQ(ev[12].transaction().step(), Transaction::COMMIT);
  EXPECT_EQ(ev[12].transaction().offsets(0).partition(), 1);
  EXPECT_EQ(ev[12].transaction().outcome().error_code(), static_cast<int32_t>(ErrorCode::kProducerFenced));
  ASSERT_TRUE(ev[13].has_revoked());
  EXPECT_TRUE(ev[13].revoked().lost());
  ASSERT_TRUE(ev[14].has_fault());
  EXPECT_EQ(ev[14].fault().description(), "partition: w0 <-> broker 1");
  ASSERT_TRUE(ev[15].has_stopped());
  EXPECT_TRUE(ev[15].stopped().outcome().ok());
}

TEST(TraceRoundTrip, HashesOnlyKeepsPresenceAndHashesButNoPayloads) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.payloads = false;
  auto writer = open_writer(options, &clock);
  record_every_kind(*writer, clock);
  writer.reset();

  auto file = read_trace_file(dir.file("w1.i0.s0.mtrace"));
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_FALSE(file->header.payloads());
  const Record& a = file->events[1].polled().records(0);
  EXPECT_TRUE(a.has_key());
  EXPECT_TRUE(a.key().empty());
  EXPECT_EQ(a.key_hash(), payload_hash("k1"));
  EXPECT_TRUE(a.has_value());
  EXPECT_TRUE(a.value().empty());
  EXPECT_EQ(a.value_hash(), payload_hash("v1"));
  ASSERT_EQ(a.headers_size(), 2);
  EXPECT_EQ(a.headers(0).key(), "trace-id");
  EXPECT_FALSE(a.headers(0).has_value());
  const Record& b = file->events[2].polled().records(0);
  EXPECT_FALSE(b.has_key());
  EXPECT_EQ(b.key_hash(), 0u);

  const TableOpened& opened = file->events[3].table_opened();
  EXPECT_EQ(opened.contents_size(), 0);
  EXPECT_EQ(opened.entries(), 3u);
  EXPECT_EQ(opened.contents_hash(), table_contents_hash({{"zeta", "1"}, {"alpha", "2"}, {"", ""}}));
  EXPECT_TRUE(file->events[8].sent().record().value().empty());
  EXPECT_EQ(file->events[8].sent().record().value_hash(), payload_hash("payload"));
}

TEST(TraceHashes, PayloadHashIsFnv1aAndNeverZero) {
  EXPECT_EQ(payload_hash(""), 14695981039346656037ULL);  // FNV-1a's offset basis
  EXPECT_EQ(payload_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_NE(payload_hash(""), 0u);
  EXPECT_NE(table_contents_hash({{"ab", ""}}), table_contents_hash({{"a", "b"}}));
  EXPECT_EQ(table_contents_hash({{"a", "1"}, {"b", "2"}}), table_contents_hash({{"b", "2"}, {"a", "1"}}));
}

TEST(TraceWriterTest, HooksBeforeStartAndAfterStopAreIgnored) {
  ScratchDir dir(test_name());
  FakeClock clock;
  auto writer = open_writer(options_for(dir), &clock);
  writer->on_assigned({{"t", 0}}, 1);
  writer->on_timer("x");
  EXPECT_EQ(writer->events_written(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir.str()));
  writer->on_start(test_start(clock.now));
  writer->on_timer("x");
  writer->on_stop(Status{});
  writer->on_timer("after stop");
  writer.reset();
  auto file = read_trace_file(dir.file("w1.i0.s0.mtrace"));
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->events.size(), 2u);
  EXPECT_TRUE(file->events[1].has_stopped());
}

TEST(TraceWriterTest, EachStartIsANewIncarnationAndAnUnstoppedOneIsIncomplete) {
  ScratchDir dir(test_name());
  FakeClock clock;
  auto writer = open_writer(options_for(dir), &clock);
  writer->on_start(test_start(clock.now));
  writer->on_timer("a");
  // No on_stop: the worker's run ended without one (killed); the next start closes it.
  clock.now += 5000;
  writer->on_start(test_start(clock.now));
  clock.now += 3;
  writer->on_timer("b");
  writer->on_stop(Error::of(ErrorCode::kFenced, "fenced"));
  writer.reset();

  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 2u);
  EXPECT_EQ(set->incarnations[0].header.incarnation(), 0u);
  EXPECT_FALSE(set->incarnations[0].complete);
  EXPECT_EQ(set->incarnations[1].header.incarnation(), 1u);
  EXPECT_TRUE(set->incarnations[1].complete);
  EXPECT_EQ(set->incarnations[1].events[0].time_ms(), 3);
  EXPECT_EQ(set->incarnations[1].events[1].stopped().outcome().error(), "fenced");
}

TEST(TraceWriterTest, OpenRefusesBadArguments) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.dir = "";
  EXPECT_EQ(TraceWriter::open(options, &clock).code(), ErrorCode::kInvalidArg);
  options = options_for(dir, "a/b");
  EXPECT_EQ(TraceWriter::open(options, &clock).code(), ErrorCode::kInvalidArg);
  options = options_for(dir, "");
  EXPECT_EQ(TraceWriter::open(options, &clock).code(), ErrorCode::kInvalidArg);
  write_bytes(dir.file("plain-file"), "x");
  options = options_for(dir);
  options.dir = dir.file("plain-file");
  auto opened = TraceWriter::open(options, &clock);
  EXPECT_EQ(opened.code(), ErrorCode::kFail);
  options.dir = dir.file("new/nested");
  EXPECT_TRUE(TraceWriter::open(options, &clock).ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("new/nested")));
}

TEST(TraceWriterTest, AWriteErrorIsReportedOnceAndRecordingStops) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.dir = dir.file("gone");
  std::vector<std::string> errors;
  options.on_error = [&](const std::string& message) { errors.push_back(message); };
  auto writer = open_writer(options, &clock);
  std::filesystem::remove_all(dir.file("gone"));
  writer->on_start(test_start(clock.now));
  writer->on_timer("a");
  writer->on_stop(Status{});
  writer->on_start(test_start(clock.now));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], AllOf(HasSubstr("cannot create"), HasSubstr("recording stopped")));
  ASSERT_TRUE(writer->error().has_value());
  EXPECT_EQ(*writer->error(), errors[0]);
  EXPECT_EQ(writer->events_written(), 0u);
}

TEST(TraceWriterTest, AReusedWriterNameReplacesTheEarlierRunsFiles) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.segment_max_bytes = 100;
  {
    auto writer = open_writer(options, &clock);
    for (int run = 0; run < 3; ++run) record_every_kind(*writer, clock);
  }
  write_bytes(dir.file("w1.i0.notes.mtrace.txt"), "kept: not one of the writer's files");
  {
    auto writer = open_writer(options_for(dir), &clock);
    record_every_kind(*writer, clock);
  }
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 1u);
  EXPECT_EQ(set->incarnations[0].files.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.file("w1.i0.notes.mtrace.txt")));
}

// ---- rotation

TEST(TraceRotation, SmallSegmentsJoinIntoOneIncarnation) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.segment_max_bytes = 512;
  options.flush_bytes = 100;
  auto writer = open_writer(options, &clock);
  writer->on_start(test_start(clock.now));
  constexpr int kPolls = 300;
  for (int i = 0; i < kPolls; ++i) {
    clock.now += 1;
    const ConsumerRecord record =
        testing::consumer_record("words", i % 3, i, "key-" + std::to_string(i), "v");
    writer->on_polled({&record});
  }
  writer->on_stop(Status{});
  EXPECT_EQ(writer->events_written(), static_cast<uint64_t>(kPolls + 1));
  writer.reset();

  size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.str())) {
    ++segments;
    EXPECT_LE(entry.file_size(), 512u + 200u) << entry.path();  // the cap plus at most one event
  }
  EXPECT_GT(segments, 10u);
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 1u);
  const Incarnation& inc = set->incarnations[0];
  EXPECT_EQ(inc.files.size(), segments);
  ASSERT_EQ(inc.events.size(), static_cast<size_t>(kPolls + 1));
  for (size_t i = 0; i < inc.events.size(); ++i) EXPECT_EQ(inc.events[i].index(), i);
  EXPECT_EQ(inc.events[299].polled().records(0).key(), "key-299");
  EXPECT_TRUE(inc.complete);
  EXPECT_FALSE(inc.truncated);
  // Each later segment's header repeats the incarnation's and says where it starts.
  auto second = read_trace_file(inc.files[1]);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->header.segment(), 1u);
  EXPECT_EQ(second->header.first_event(), second->events.front().index());
  EXPECT_EQ(second->header.app_id(), "tablecount");
}

TEST(TraceRotation, TheSizeCapDeletesTheOldestFilesAndSkipsTheirIncarnation) {
  ScratchDir dir(test_name());
  FakeClock clock;
  TraceWriterOptions options = options_for(dir);
  options.segment_max_bytes = 400;
  options.total_max_bytes = 3000;
  auto writer = open_writer(options, &clock);
  writer->on_start(test_start(clock.now));
  for (int i = 0; i < 200; ++i) {
    const ConsumerRecord record = testing::consumer_record("words", 0, i, "k", std::string(20, 'x'));
    writer->on_polled({&record});
  }
  writer->on_stop(Status{});
  writer->on_start(test_start(clock.now));
  writer->on_timer("t");
  writer->on_stop(Status{});
  writer.reset();

  int64_t on_disk = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.str())) {
    on_disk += static_cast<int64_t>(entry.file_size());
  }
  EXPECT_LE(on_disk, 3000);
  EXPECT_FALSE(std::filesystem::exists(dir.file("w1.i0.s0.mtrace")));
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 1u);
  EXPECT_EQ(set->incarnations[0].header.incarnation(), 1u);
  EXPECT_TRUE(set->incarnations[0].complete);
  ASSERT_EQ(set->skipped.size(), 1u);
  EXPECT_THAT(set->skipped[0], AllOf(HasSubstr("w1.i0"), HasSubstr("segment 0 was rotated away")));
}

// ---- defects

// A trace whose last frame starts at `*last_frame`.
std::string small_trace(const ScratchDir& dir, size_t* last_frame, int events = 4) {
  FakeClock clock;
  auto writer = open_writer(options_for(dir), &clock);
  writer->on_start(test_start(clock.now));
  for (int i = 0; i < events; ++i) {
    const ConsumerRecord record = testing::consumer_record("words", 0, i, "k" + std::to_string(i), "value");
    writer->on_polled({&record});
  }
  writer.reset();
  std::string bytes = read_bytes(dir.file("w1.i0.s0.mtrace"));
  const auto starts = frame_starts(bytes);
  *last_frame = starts.back();
  return bytes;
}

TEST(TraceDefects, ATornTailKeepsTheCompleteEventsAtEveryCut) {
  ScratchDir dir(test_name());
  size_t last_frame = 0;
  const std::string bytes = small_trace(dir, &last_frame);
  for (size_t cut = last_frame; cut <= bytes.size(); ++cut) {
    auto file = parse_trace(std::string_view(bytes).substr(0, cut), "t.mtrace");
    ASSERT_TRUE(file.ok()) << cut << ": " << file.error().message;
    if (cut == bytes.size()) {
      EXPECT_EQ(file->tail, TraceDefect::kNone);
      EXPECT_EQ(file->events.size(), 4u);
      continue;
    }
    EXPECT_EQ(file->events.size(), 3u) << cut;
    if (cut == last_frame) {
      EXPECT_EQ(file->tail, TraceDefect::kNone);  // a cut between frames loses nothing it can see
    } else {
      EXPECT_EQ(file->tail, TraceDefect::kTruncated) << cut;
      EXPECT_EQ(file->tail_offset, static_cast<int64_t>(last_frame)) << cut;
    }
  }
  // Torn inside the header (or the magic): an error, there is nothing to keep.
  const size_t first_event = frame_starts(bytes)[1];
  for (size_t cut = 0; cut < first_event; ++cut) {
    auto file = parse_trace(std::string_view(bytes).substr(0, cut), "t.mtrace");
    ASSERT_FALSE(file.ok()) << cut;
    EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kTruncated) << cut << ": " << file.error().message;
  }
}

TEST(TraceDefects, ATornTailShowsInTheIncarnation) {
  ScratchDir dir(test_name());
  size_t last_frame = 0;
  const std::string bytes = small_trace(dir, &last_frame);
  write_bytes(dir.file("w1.i0.s0.mtrace"), bytes.substr(0, last_frame + 3));
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 1u);
  EXPECT_TRUE(set->incarnations[0].truncated);
  EXPECT_FALSE(set->incarnations[0].complete);
  EXPECT_EQ(set->incarnations[0].events.size(), 3u);
}

TEST(TraceDefects, AFlippedPayloadByteIsCorruptionAtItsFrame) {
  ScratchDir dir(test_name());
  size_t last_frame = 0;
  std::string bytes = small_trace(dir, &last_frame);
  const size_t second_event = frame_starts(bytes)[2];
  bytes[second_event + 1 + 4 + 3] ^= 0x10;  // length varint (1 byte), CRC, then the payload
  auto file = parse_trace(bytes, "w1.i0.s0.mtrace");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().code, ErrorCode::kInvalidArg);
  EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kCorrupted);
  EXPECT_EQ(file.error().message,
            "trace w1.i0.s0.mtrace: byte " + std::to_string(second_event) +
                ": corrupted (CRC mismatch): the file was damaged after it was written; "
                "re-record, or replay the incarnations before it");
}

TEST(TraceDefects, AnImpossibleLengthIsCorruptionNotAnAllocation) {
  ScratchDir dir(test_name());
  size_t last_frame = 0;
  std::string bytes = small_trace(dir, &last_frame);
  std::string huge;
  internal::append_varint(huge, kMaxFrameBytes + 1);
  bytes = bytes.substr(0, last_frame) + huge + std::string(8, '\0');
  auto file = parse_trace(bytes, "t.mtrace");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kCorrupted);
  EXPECT_THAT(file.error().message, HasSubstr("byte " + std::to_string(last_frame)));
  EXPECT_THAT(file.error().message, HasSubstr("impossible frame length"));
}

std::string frame_of(const Frame& frame) {
  std::string out;
  internal::append_frame(out, frame.SerializeAsString());
  return out;
}

TEST(TraceDefects, ANewerFormatVersionIsRefusedWithWhatToDo) {
  Frame header;
  header.mutable_header()->set_format_version(kFormatVersion + 1);
  const std::string bytes = std::string(kMagic) + frame_of(header);
  auto file = parse_trace(bytes, "w1.i0.s0.mtrace");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kNewerVersion);
  EXPECT_THAT(file.error().message,
              HasSubstr("written by trace format " + std::to_string(kFormatVersion + 1) +
                        ", this build reads up to " + std::to_string(kFormatVersion) +
                        ": replay it with a newer mephisto"));
}

TEST(TraceDefects, AFileWithoutTheMagicIsNotATrace) {
  ScratchDir dir(test_name());
  for (const std::string& bytes :
       {std::string("hello, world\nthis is a text file\n"), std::string("MEPHTRX\n"),
        std::string("\x7f"
                    "ELF")}) {
    auto file = parse_trace(bytes, "notes.txt");
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kNotATrace) << file.error().message;
    EXPECT_THAT(file.error().message,
                AllOf(HasSubstr("notes.txt"), HasSubstr("byte 0"), HasSubstr("not a trace")));
  }
  write_bytes(dir.file("notes.mtrace"), "hello, world\n");
  auto set = read_trace_dir(dir.str());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(trace_defect_of(set.error()), TraceDefect::kNotATrace);
  EXPECT_THAT(set.error().message, HasSubstr("notes.mtrace"));
}

TEST(TraceDefects, AFirstFrameThatIsNotAHeaderOrAnEventOutOfOrderIsCorruption) {
  Frame event;
  event.mutable_event()->mutable_timer_fired()->set_timer("t");
  auto file = parse_trace(std::string(kMagic) + frame_of(event), "t.mtrace");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message, HasSubstr("the first frame is not a header"));

  Frame header;
  header.mutable_header()->set_format_version(kFormatVersion);
  event.mutable_event()->set_index(5);
  file = parse_trace(std::string(kMagic) + frame_of(header) + frame_of(event), "t.mtrace");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kCorrupted);
  EXPECT_THAT(file.error().message, HasSubstr("event index 5 where 0 was expected"));
}

TEST(TraceDefects, MissingDirectoryOrFileIsAnIoFailure) {
  ScratchDir dir(test_name());
  EXPECT_EQ(read_trace_dir(dir.file("none")).code(), ErrorCode::kFail);
  EXPECT_EQ(read_trace_dir(dir.str()).code(), ErrorCode::kFail);  // no trace files
  auto file = read_trace_file(dir.file("none.mtrace"));
  EXPECT_EQ(file.code(), ErrorCode::kFail);
  EXPECT_EQ(trace_defect_of(file.error()), TraceDefect::kNone);
}

// ---- directories

void record_two_incarnations(const ScratchDir& dir, const std::string& writer_name,
                             const std::string& worker_id) {
  FakeClock clock;
  TraceWriterOptions options = options_for(dir, writer_name);
  options.segment_max_bytes = 300;
  auto writer = open_writer(options, &clock);
  for (int incarnation = 0; incarnation < 2; ++incarnation) {
    writer->on_start(test_start(clock.now, worker_id));
    for (int i = 0; i < 20; ++i) {
      const ConsumerRecord record = testing::consumer_record(worker_id, incarnation, i, "k", "value");
      writer->on_polled({&record});
    }
    writer->on_stop(Status{});
  }
}

TEST(TraceDirectory, TwoWritersSegmentsAreGroupedByTheirHeaders) {
  ScratchDir dir(test_name());
  record_two_incarnations(dir, "wa", "worker-a");
  record_two_incarnations(dir, "wb", "worker-b");
  // Names say nothing: the reader goes by the headers.
  std::filesystem::rename(dir.file("wb.i1.s0.mtrace"), dir.file("aaa.mtrace"));
  std::filesystem::rename(dir.file("wa.i0.s1.mtrace"), dir.file("zzz.mtrace"));
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->incarnations.size(), 4u);
  const std::vector<std::pair<std::string, uint64_t>> expected = {{"wa", 0}, {"wa", 1}, {"wb", 0}, {"wb", 1}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const Incarnation& inc = set->incarnations[i];
    EXPECT_EQ(inc.header.writer_name(), expected[i].first);
    EXPECT_EQ(inc.header.incarnation(), expected[i].second);
    EXPECT_EQ(inc.header.worker_id(), expected[i].first == "wa" ? "worker-a" : "worker-b");
    EXPECT_GT(inc.files.size(), 1u);
    ASSERT_EQ(inc.events.size(), 21u);
    for (size_t e = 0; e + 1 < inc.events.size(); ++e) {
      EXPECT_EQ(inc.events[e].polled().records(0).topic(), inc.header.worker_id());
      EXPECT_EQ(inc.events[e].polled().records(0).partition(), static_cast<int32_t>(expected[i].second));
      EXPECT_EQ(inc.events[e].polled().records(0).offset(), static_cast<int64_t>(e));
    }
    EXPECT_TRUE(inc.complete);
  }
  EXPECT_EQ(set->incarnations[0].files[1], dir.file("zzz.mtrace"));
  EXPECT_TRUE(set->skipped.empty());
}

TEST(TraceDirectory, SegmentsOfTwoRecordingsUnderOneNameAreInconsistent) {
  ScratchDir first(test_name() + "-1");
  ScratchDir second(test_name() + "-2");
  record_two_incarnations(first, "w", "worker-a");
  record_two_incarnations(second, "w", "worker-b");
  std::filesystem::copy_file(second.file("w.i0.s2.mtrace"), first.file("w.i0.s2.mtrace"),
                             std::filesystem::copy_options::overwrite_existing);
  auto set = read_trace_dir(first.str());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(trace_defect_of(set.error()), TraceDefect::kInconsistent);
  EXPECT_THAT(set.error().message,
              AllOf(HasSubstr("w.i0.s1.mtrace"), HasSubstr("w.i0.s2.mtrace"), HasSubstr("disagree")));
}

TEST(TraceDirectory, ADuplicatedOrMissingSegmentIsInconsistent) {
  ScratchDir dir(test_name());
  record_two_incarnations(dir, "w", "worker-a");
  std::filesystem::copy_file(dir.file("w.i0.s1.mtrace"), dir.file("copy-of-s1.mtrace"));
  auto set = read_trace_dir(dir.str());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(trace_defect_of(set.error()), TraceDefect::kInconsistent);
  EXPECT_THAT(set.error().message, AllOf(HasSubstr("copy-of-s1.mtrace"), HasSubstr("two segments 1")));

  std::filesystem::remove(dir.file("copy-of-s1.mtrace"));
  std::filesystem::remove(dir.file("w.i0.s1.mtrace"));
  set = read_trace_dir(dir.str());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(trace_defect_of(set.error()), TraceDefect::kInconsistent);
  EXPECT_THAT(set.error().message, AllOf(HasSubstr("w.i0.s2.mtrace"), HasSubstr("misses segment 1")));
}

TEST(TraceDirectory, ASegmentTornInsideItsHeaderIsLeftOutWithANote) {
  ScratchDir dir(test_name());
  record_two_incarnations(dir, "w", "worker-a");
  write_bytes(dir.file("w.i1.s99.mtrace"), "MEPH");
  auto set = read_trace_dir(dir.str());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->incarnations.size(), 2u);
  ASSERT_EQ(set->skipped.size(), 1u);
  EXPECT_THAT(set->skipped[0], HasSubstr("w.i1.s99.mtrace"));
}

}  // namespace
}  // namespace mephisto::trace
