// Table, GlobalTable and SetTable: Faust's tables — dicts kept in a store and backed by a compacted changelog
// topic `{id}-{name}-changelog`, partitioned like the stream that writes them. Declared on an App before
// run() (app.h: App::table, App::global_table, App::set_table); read and written by agents while they process
// events:
//
//   auto counts = app.table<std::string, int64_t>("page-counts", views);   // partitioned like `views`
//   app.agent("count", views, [=](Stream<std::string, PageView>& stream) {
//     for (auto& event : stream) counts.add(event.key(), 1);
//   });
//
// A write changes the table partition of the event being processed (its partition number), so an agent must
// write tables partitioned like the stream it reads (co-partitioning; group_by first otherwise). A write
// outside stream processing (a timer, a task, another thread) is an error: the call throws TableError, whose
// message says so. Under exactly_once a table never holds the effect of an aborted transaction, and after a
// crash it returns to the last committed state (tables.h explains how).
//
// Values: integral types (stored as decimal text), std::string (raw bytes) and protobuf messages (binary).
// Keys likewise. Cheap to copy; valid as long as the App.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "runtime/app/engine.h"
#include "runtime/app/tables.h"
#include "runtime/codec/codec.h"

namespace mephisto {

// A table operation that cannot be done: a write outside stream processing, a partition not held here, a
// store that failed. The message names the table and the reason.
class TableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename V>
struct TableOptions {
  V default_value{};  // what get() returns for an absent key (Faust's Table(default=...))
  // GlobalTable only: its partition count (default AppSettings::topic_partitions). A Table takes its
  // source's.
  std::optional<int32_t> partitions;
  std::string help;
};

namespace app_internal {

// How a table stores a key or value as bytes. Integral types as decimal text: readable with any Kafka tool.
template <typename T>
struct TableCodec {
  static std::string encode(const T& value) {
    if constexpr (std::is_integral_v<T>) {
      return std::to_string(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      return value;
    } else {
      static_assert(ProtobufMessage<T>,
                    "table keys and values are integers, std::string or protobuf messages");
      return codec_internal::encode_protobuf_binary(value);
    }
  }
  static T decode(const std::string& bytes, const std::string& table) {
    if constexpr (std::is_integral_v<T>) {
      T value{};
      auto [end, error] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), value);
      if (error != std::errc() || end != bytes.data() + bytes.size()) {
        throw TableError("table '" + table + "': stored value '" + bytes + "' is not an integer");
      }
      return value;
    } else if constexpr (std::is_same_v<T, std::string>) {
      return bytes;
    } else {
      T message;
      if (Status status = codec_internal::decode_protobuf_binary(bytes, &message); !status.ok()) {
        throw TableError("table '" + table + "': stored value does not decode: " + status.error().message);
      }
      return message;
    }
  }
};

// A SetTable value: members' encodings, each prefixed by its length (4 bytes, big-endian), in sorted order.
std::string encode_member_set(const std::set<std::string>& members);
std::set<std::string> decode_member_set(const std::string& bytes, const std::string& table);

}  // namespace app_internal

template <typename K, typename V>
class Table {
 public:
  Table() = default;
  Table(Engine* engine, app_internal::TableDecl* decl, V default_value)
      : engine_(engine), decl_(decl), default_(std::move(default_value)) {}

  [[nodiscard]] const std::string& name() const { return decl_->name; }
  [[nodiscard]] const std::string& changelog_topic() const { return decl_->changelog; }

  // The value under `key`, or the table's default. Throws TableError if the store cannot be read.
  [[nodiscard]] V get(const K& key) const { return find(key).value_or(default_); }
  [[nodiscard]] V operator[](const K& key) const { return get(key); }
  [[nodiscard]] bool contains(const K& key) const { return find(key).has_value(); }
  [[nodiscard]] std::optional<V> find(const K& key) const {
    auto bytes = engine_->tables().get(*decl_, app_internal::TableCodec<K>::encode(key));
    if (!bytes.ok()) throw TableError(bytes.error().message);
    if (!bytes->has_value()) return std::nullopt;
    return app_internal::TableCodec<V>::decode(**bytes, decl_->name);
  }
  // Sets `key` in the partition of the event being processed. Throws TableError (see the file comment).
  void set(const K& key, const V& value) const {
    write(app_internal::TableCodec<K>::encode(key), app_internal::TableCodec<V>::encode(value));
  }
  void erase(const K& key) const { write(app_internal::TableCodec<K>::encode(key), std::nullopt); }
  // Faust's `table[key] += delta`: returns the new value.
  V add(const K& key, V delta) const requires std::is_arithmetic_v<V> {
    const V value = static_cast<V>(get(key) + delta);
    set(key, value);
    return value;
  }

 protected:
  void write(std::string key, std::optional<std::string> value) const {
    if (Status written = engine_->tables().put(*decl_, std::move(key), std::move(value)); !written.ok()) {
      throw TableError(written.error().message);
    }
  }

  Engine* engine_ = nullptr;
  app_internal::TableDecl* decl_ = nullptr;
  V default_{};
};

// Faust's GlobalTable: every worker holds every partition (App::global_table). Writes reach this worker's
// copy when read back from the changelog (committed, under exactly_once).
template <typename K, typename V>
using GlobalTable = Table<K, V>;

// Faust's SetTable: a table whose values are sets of members (App::set_table).
template <typename K, typename M>
class SetTable {
 public:
  SetTable() = default;
  explicit SetTable(Table<K, std::string> table) : table_(std::move(table)) {}

  [[nodiscard]] const std::string& name() const { return table_.name(); }
  // The members under `key` (empty if none).
  [[nodiscard]] std::set<M> members(const K& key) const {
    std::set<M> out;
    for (const std::string& bytes : raw(key)) out.insert(app_internal::TableCodec<M>::decode(bytes, name()));
    return out;
  }
  [[nodiscard]] bool contains(const K& key, const M& member) const {
    return raw(key).count(app_internal::TableCodec<M>::encode(member)) > 0;
  }
  void add(const K& key, const M& member) const {
    std::set<std::string> set = raw(key);
    if (set.insert(app_internal::TableCodec<M>::encode(member)).second) {
      table_.set(key, app_internal::encode_member_set(set));
    }
  }
  void discard(const K& key, const M& member) const {
    std::set<std::string> set = raw(key);
    if (set.erase(app_internal::TableCodec<M>::encode(member)) == 0) return;
    if (set.empty()) {
      table_.erase(key);
    } else {
      table_.set(key, app_internal::encode_member_set(set));
    }
  }

 private:
  [[nodiscard]] std::set<std::string> raw(const K& key) const {
    auto bytes = table_.find(key);
    return bytes.has_value() ? app_internal::decode_member_set(*bytes, name()) : std::set<std::string>{};
  }
  Table<K, std::string> table_;
};

}  // namespace mephisto
