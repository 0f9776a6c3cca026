// TraceWriter: events become Frames in a buffer; the buffer goes to the segment file with write(2) at the
// moments trace_writer.h lists. One Frame object is reused for every event so that recording a busy worker
// does not allocate per event once the buffers have grown.
#include "runtime/trace/trace_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <utility>

#include "models/trace.pb.h"
#include "runtime/trace/frame.h"
#include "runtime/trace/trace_reader.h"

namespace mephisto::trace {
namespace {

bool legal_writer_name(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Length of the well-formed UTF-8 sequence at text[at], 0 if there is none (overlong forms, surrogates and
// code points past U+10FFFF are not well-formed, as protobuf's own check says).
size_t utf8_sequence_length(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[at + i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80;
  uint8_t high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Sets a proto3 `string` field. Protobuf refuses to parse a string field that is not UTF-8, so a name or an
// error message with other bytes would make the whole frame unreadable: such bytes are written as '?'.
void set_text(std::string* field, std::string_view text) {
  // Topic names and the like are ASCII: copied as they are.
  bool ascii = true;
  for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {
    field->assign(text);
    return;
  }
  field->clear();
  field->reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const size_t length = utf8_sequence_length(text, at);
    if (length == 0) {
      field->push_back('?');
      ++at;
    } else {
      field->append(text.substr(at, length));
      at += length;
    }
  }
}

void set_partition(Partition* out, const TopicPartition& tp) {
  set_text(out->mutable_topic(), tp.topic);
  out->set_partition(tp.partition);
}

void set_offsets(google::protobuf::RepeatedPtrField<Offset>* out,
                 const std::map<TopicPartition, int64_t>& offsets) {
  for (const auto& [tp, offset] : offsets) {
    Offset* o = out->Add();
    set_text(o->mutable_topic(), tp.topic);
    o->set_partition(tp.partition);
    o->set_offset(offset);
  }
}

void set_outcome(Outcome* out, const Status& status) {
  out->set_ok(status.ok());
  if (status.ok()) return;
  out->set_error_code(static_cast<int32_t>(status.error().code));
  set_text(out->mutable_error(), status.error().message);
}

}  // namespace

struct TraceWriter::Impl {
  struct FileOnDisk {
    std::string path;
    int64_t bytes = 0;
  };

  TraceWriterOptions options;
  const Clock* clock = nullptr;

  uint64_t next_incarnation = 0;
  bool incarnation_open = false;
  TraceHeader header;  // the open incarnation's; segment and first_event set per file
  uint64_t next_index = 0;
  uint64_t events_in_segment = 0;
  uint64_t next_send_id = 1;

  int fd = -1;
  std::string buffer;
  uint64_t buffered_events = 0;
  int64_t segment_bytes = 0;     // the open segment's, written and buffered
  std::deque<FileOnDisk> files;  // this writer's files still on disk, oldest first
  int64_t bytes_on_disk = 0;

  int64_t bytes_written = 0;
  uint64_t events_written = 0;
  std::optional<std::string> error;

  Event event_record;  // reused for every event
  std::string payload;

  [[nodiscard]] bool recording() const { return incarnation_open && !error.has_value(); }

  std::string file_path(uint64_t incarnation, uint64_t segment) const {
    return (std::filesystem::path(options.dir) / (options.writer_name + ".i" + std::to_string(incarnation) +
                                                  ".s" + std::to_string(segment) + ".mtrace"))
        .string();
  }

  // Stops recording for good: the worker must not notice a full disk beyond this one report.
  void fail(const std::string& what) {
    if (error.has_value()) return;
    error = "trace writer " + options.writer_name + ": " + what +
            "; recording stopped (the worker goes on, the trace ends here)";
    if (fd >= 0) ::close(fd);
    fd = -1;
    buffer.clear();
    buffered_events = 0;
    incarnation_open = false;
    if (options.on_error) options.on_error(*error);
  }

  void write_buffer() {
    if (fd < 0 || buffer.empty()) return;
    size_t done = 0;
    while (done < buffer.size()) {
      const ssize_t n = ::write(fd, buffer.data() + done, buffer.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // What reached the file still counts against the size cap.
        files.back().bytes += static_cast<int64_t>(done);
        bytes_on_disk += static_cast<int64_t>(done);
        fail("cannot write " + files.back().path + ": " + (n < 0 ? std::strerror(errno) : "no progress"));
        return;
      }
      done += static_cast<size_t>(n);
    }
    const auto size = static_cast<int64_t>(buffer.size());
    files.back().bytes += size;
    bytes_on_disk += size;
    bytes_written += size;
    events_written += buffered_events;
    buffered_events = 0;
    buffer.clear();
  }

  void open_segment(uint64_t segment) {
    const std::string path = file_path(header.incarnation(), segment);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      fail("cannot create " + path + ": " + std::strerror(errno));
      return;
    }
    files.push_back({path, 0});
    header.set_segment(segment);
    header.set_first_event(next_index);
    Frame header_frame;
    *header_frame.mutable_header() = header;
    header_frame.SerializeToString(&payload);
    buffer.append(kMagic);
    internal::append_frame(buffer, payload);
    segment_bytes = static_cast<int64_t>(buffer.size());
    events_in_segment = 0;
    // The header goes out at once, so that a crash leaves no file without one.
    write_buffer();
  }

  void close_segment() {
    write_buffer();
    if (fd >= 0 && ::close(fd) != 0) {
      fd = -1;
      fail("cannot close " + files.back().path + ": " + std::strerror(errno));
      return;
    }
    fd = -1;
    delete_oldest_files();
  }

  // Keeps the writer's files under total_max_bytes, oldest first, always keeping the newest file.
  void delete_oldest_files() {
    while (bytes_on_disk > options.total_max_bytes && files.size() > 1) {
      const FileOnDisk& oldest = files.front();
      if (::unlink(oldest.path.c_str()) != 0 && errno != ENOENT) {
        fail("cannot delete " + oldest.path + " (rotation): " + std::strerror(errno));
        return;
      }
      bytes_on_disk -= oldest.bytes;
      files.pop_front();
    }
  }

  // The event to fill, or null when nothing is being recorded.
  Event* begin_event() {
    if (!recording()) return nullptr;
    event_record.Clear();
    return &event_record;
  }

  void finish_event(bool flush_now) {
    Event& event = event_record;
    if (events_in_segment > 0 && segment_bytes >= options.segment_max_bytes) {
      close_segment();
      if (error.has_value()) return;
      open_segment(header.segment() + 1);
      if (error.has_value()) return;
    }
    event.set_index(next_index++);
    event.set_time_ms(clock->now_ms() - header.start_time_ms());
    // The Frame (oneof field 2: the event) is serialized straight into the buffer, with no intermediate
    // string: this is the worker's hot path (a few events per input record).
    const size_t before = buffer.size();
    internal::append_event_frame(buffer, event);
    segment_bytes += static_cast<int64_t>(buffer.size() - before);
    ++buffered_events;
    ++events_in_segment;
    if (flush_now || static_cast<int64_t>(buffer.size()) >= options.flush_bytes) write_buffer();
  }

  void set_payload(Record* out, const std::optional<std::string>& key,
                   const std::optional<std::string>& value,
                   const std::vector<mephisto::Header>& headers) const {
    if (key.has_value()) {
      out->set_has_key(true);
      out->set_key_hash(payload_hash(*key));
      if (options.payloads) out->set_key(*key);
    }
    if (value.has_value()) {
      out->set_has_value(true);
      out->set_value_hash(payload_hash(*value));
      if (options.payloads) out->set_value(*value);
    }
    // Header values are payload too: with payloads off only their keys are kept.
    for (const auto& h : headers) {
      trace::Header* header_out = out->add_headers();
      header_out->set_key(h.key);
      if (options.payloads && h.value.has_value()) header_out->set_value(*h.value);
    }
  }

  void set_record(Record* out, const ConsumerRecord& record) const {
    set_text(out->mutable_topic(), record.topic);
    out->set_partition(record.partition);
    out->set_offset(record.offset);
    out->set_timestamp_ms(record.timestamp_ms);
    set_payload(out, record.key, record.value, record.headers);
  }
};

TraceWriter::TraceWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TraceWriter::~TraceWriter() {
  // No Stopped event: the worker did not report a stop, and the trace must say so (Incarnation::complete).
  if (impl_->recording()) impl_->close_segment();
}

Result<std::unique_ptr<TraceWriter>> TraceWriter::open(TraceWriterOptions options, const Clock* clock) {
  if (options.dir.empty()) {
    return Error::of(ErrorCode::kInvalidArg, "trace writer: no directory given");
  }
  if (!legal_writer_name(options.writer_name)) {
    return Error::of(ErrorCode::kInvalidArg, "trace writer: writer name '" + options.writer_name +
                                                 "' is not [A-Za-z0-9._-]+ (it names the trace files)");
  }
  if (options.segment_max_bytes <= 0 || options.total_max_bytes <= 0 || options.flush_bytes < 0) {
    return Error::of(
        ErrorCode::kInvalidArg,
        "trace writer: segment_max_bytes and total_max_bytes must be positive, flush_bytes >= 0");
  }
  if (clock == nullptr) return Error::of(ErrorCode::kInvalidArg, "trace writer: no clock");
  std::error_code fs_error;
  std::filesystem::create_directories(options.dir, fs_error);
  if (fs_error || !std::filesystem::is_directory(options.dir, fs_error)) {
    return Error::of(ErrorCode::kFail,
                     "trace directory " + options.dir + ": cannot create it" +
                         (fs_error ? " (" + fs_error.message() + ")" : std::string(" (not a directory)")) +
                         "; pass a directory you can write to");
  }
  if (::access(options.dir.c_str(), W_OK | X_OK) != 0) {
    return Error::of(ErrorCode::kFail, "trace directory " + options.dir + ": not writable (" +
                                           std::strerror(errno) + "); pass a directory you can write to");
  }
  // The writer owns its name in the directory: files an earlier run left under it would join this run's
  // incarnations when read back (a rerun of a simulation with the same writer name).
  const std::string prefix = options.writer_name + ".i";
  for (std::filesystem::directory_iterator it(options.dir, fs_error), end; !fs_error && it != end;
       it.increment(fs_error)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".mtrace")) continue;
    const std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - 7);  // "N.sM"
    const size_t dot_s = middle.find(".s");
    const auto digits = [](std::string_view s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (dot_s == std::string::npos || !digits(std::string_view(middle).substr(0, dot_s)) ||
        !digits(std::string_view(middle).substr(dot_s + 2))) {
      continue;
    }
    std::error_code remove_error;
    std::filesystem::remove(it->path(), remove_error);
    if (remove_error) {
      return Error::of(ErrorCode::kFail, "trace directory " + options.dir + ": cannot delete the stale " +
                                             name + " (" + remove_error.message() + ")");
    }
  }
  if (fs_error) {
    return Error::of(ErrorCode::kFail,
                     "trace directory " + options.dir + ": cannot list it (" + fs_error.message() + ")");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->clock = clock;
  return std::unique_ptr<TraceWriter>(new TraceWriter(std::move(impl)));
}

void TraceWriter::on_start(const RecordedStart& start) {
  Impl& w = *impl_;
  if (w.error.has_value()) return;
  // An incarnation that never reported its stop ends here, without a Stopped event.
  if (w.incarnation_open) w.close_segment();
  if (w.error.has_value()) return;
  TraceHeader& h = w.header;
  h.Clear();
  h.set_format_version(kFormatVersion);
  set_text(h.mutable_app_name(), w.options.app_name);
  set_text(h.mutable_app_id(), start.app_id);
  set_text(h.mutable_worker_id(), start.worker_id);
  set_text(h.mutable_writer_name(), w.options.writer_name);
  h.set_incarnation(w.next_incarnation++);
  h.set_payloads(w.options.payloads);
  set_text(h.mutable_source(), w.options.source);
  set_text(h.mutable_processing_guarantee(), start.processing_guarantee);
  for (const auto& declaration : start.declarations) set_text(h.add_declarations(), declaration);
  for (const auto& [name, value] : w.options.settings) {
    std::string safe_name;
    set_text(&safe_name, name);
    set_text(&(*h.mutable_settings())[safe_name], value);
  }
  h.set_start_time_ms(start.time_ms);
  w.next_index = 0;
  w.next_send_id = 1;
  w.incarnation_open = true;
  w.open_segment(0);
}

void TraceWriter::on_assigned(const std::vector<TopicPartition>& partitions, int32_t generation) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Assigned* assigned = event->mutable_assigned();
  for (const auto& tp : partitions) set_partition(assigned->add_partitions(), tp);
  assigned->set_generation(generation);
  impl_->finish_event(/*flush_now=*/true);
}

void TraceWriter::on_revoked(const std::vector<TopicPartition>& partitions, bool lost) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Revoked* revoked = event->mutable_revoked();
  for (const auto& tp : partitions) set_partition(revoked->add_partitions(), tp);
  revoked->set_lost(lost);
  impl_->finish_event(/*flush_now=*/true);
}

void TraceWriter::on_polled(const std::vector<const ConsumerRecord*>& records) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Polled* polled = event->mutable_polled();
  for (const ConsumerRecord* record : records) impl_->set_record(polled->add_records(), *record);
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_table_opened(const std::string& table, int32_t partition,
                                  std::optional<int64_t> applied_offset,
                                  const std::vector<std::pair<std::string, std::string>>& contents) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  TableOpened* opened = event->mutable_table_opened();
  set_text(opened->mutable_table(), table);
  opened->set_partition(partition);
  opened->set_has_applied_offset(applied_offset.has_value());
  opened->set_applied_offset(applied_offset.value_or(-1));
  opened->set_contents_hash(table_contents_hash(contents));
  opened->set_entries(contents.size());
  if (impl_->options.payloads) {
    // Sorted as the hash is, so the trace does not depend on the store's iteration order.
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(contents.size());
    for (const auto& entry : contents) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
    for (const auto* entry : sorted) {
      Record* record = opened->add_contents();
      record->set_has_key(true);
      record->set_key(entry->first);
      record->set_has_value(true);
      record->set_value(entry->second);
    }
  }
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_dropped(const std::vector<const ConsumerRecord*>& records) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Dropped* dropped = event->mutable_dropped();
  for (const ConsumerRecord* record : records) {
    Record* out = dropped->add_records();
    out->set_topic(record->topic);
    out->set_partition(record->partition);
    out->set_offset(record->offset);
  }
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_table_applied(const std::vector<ConsumerRecord>& records) {
  if (records.empty()) return;  // nothing reached the store
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  TableApplied* applied = event->mutable_table_applied();
  for (const auto& record : records) impl_->set_record(applied->add_records(), record);
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_restore_end(const TopicPartition& changelog, int64_t end_offset) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  RestoreEnd* end = event->mutable_restore_end();
  set_partition(end->mutable_changelog(), changelog);
  end->set_end_offset(end_offset);
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_table_active(const std::string& table, int32_t partition) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  TableActive* active = event->mutable_table_active();
  set_text(active->mutable_table(), table);
  active->set_partition(partition);
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_timer(const std::string& timer) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  set_text(event->mutable_timer_fired()->mutable_timer(), timer);
  impl_->finish_event(/*flush_now=*/false);
}

uint64_t TraceWriter::on_send(const ProducerRecord& record,
                              const std::vector<mephisto::SendSource>& sources) {
  // An id even when nothing is recorded: the engine pairs it with on_delivered either way.
  const uint64_t send_id = impl_->next_send_id++;
  Event* event = impl_->begin_event();
  if (event == nullptr) return send_id;
  Sent* sent = event->mutable_sent();
  sent->set_send_id(send_id);
  Record* out = sent->mutable_record();
  set_text(out->mutable_topic(), record.topic);
  out->set_partition(record.partition);
  out->set_offset(-1);
  out->set_timestamp_ms(record.timestamp_ms);
  impl_->set_payload(out, record.key, record.value, record.headers);
  for (const auto& source : sources) {
    trace::SendSource* s = sent->add_sources();
    set_text(s->mutable_topic(), source.topic);
    s->set_partition(source.partition);
    s->set_offset(source.offset);
    set_text(s->mutable_timer(), source.timer);
  }
  impl_->finish_event(/*flush_now=*/false);
  return send_id;
}

void TraceWriter::on_delivered(uint64_t send_id, const Result<RecordMetadata>& result) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Delivered* delivered = event->mutable_delivered();
  delivered->set_send_id(send_id);
  Outcome* outcome = delivered->mutable_outcome();
  outcome->set_ok(result.ok());
  if (result.ok()) {
    delivered->set_partition(result.value().tp.partition);
    delivered->set_offset(result.value().offset);
  } else {
    outcome->set_error_code(static_cast<int32_t>(result.error().code));
    set_text(outcome->mutable_error(), result.error().message);
    delivered->set_partition(-1);
    delivered->set_offset(-1);
  }
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::on_commit(const std::map<TopicPartition, int64_t>& offsets, const Status& result) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Committed* committed = event->mutable_committed();
  set_offsets(committed->mutable_offsets(), offsets);
  set_outcome(committed->mutable_outcome(), result);
  impl_->finish_event(/*flush_now=*/true);
}

void TraceWriter::on_transaction(TransactionStep step, const std::map<TopicPartition, int64_t>& offsets,
                                 const Status& result) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  Transaction* transaction = event->mutable_transaction();
  switch (step) {
    case TransactionStep::kBegin:
      transaction->set_step(Transaction::BEGIN);
      break;
    case TransactionStep::kCommit:
      transaction->set_step(Transaction::COMMIT);
      break;
    case TransactionStep::kAbort:
      transaction->set_step(Transaction::ABORT);
      break;
  }
  set_offsets(transaction->mutable_offsets(), offsets);
  set_outcome(transaction->mutable_outcome(), result);
  impl_->finish_event(/*flush_now=*/true);
}

void TraceWriter::on_stop(const Status& result) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  set_outcome(event->mutable_stopped()->mutable_outcome(), result);
  impl_->finish_event(/*flush_now=*/false);
  if (impl_->error.has_value()) return;
  impl_->close_segment();
  impl_->incarnation_open = false;
}

void TraceWriter::on_fault(const std::string& description) {
  Event* event = impl_->begin_event();
  if (event == nullptr) return;
  set_text(event->mutable_fault()->mutable_description(), description);
  impl_->finish_event(/*flush_now=*/false);
}

void TraceWriter::flush() {
  if (impl_->recording()) impl_->write_buffer();
}

int64_t TraceWriter::bytes_written() const {
  return impl_->bytes_written;
}

uint64_t TraceWriter::events_written() const {
  return impl_->events_written;
}

const std::optional<std::string>& TraceWriter::error() const {
  return impl_->error;
}

}  // namespace mephisto::trace
