// The codec contracts of runtime/codec/codec.h: round trips, every malformed input as a kBadMessage value
// with a message that says what was wrong (never an exception or a crash), the empty-input rules, and
// properties over generated messages and arbitrary bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include "models/examples.pb.h"
#include "runtime/codec/codec.h"

namespace mephisto {
namespace {

using examples::Order;
using examples::PageView;
using examples::WithdrawalResult;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Protobuf reports invalid UTF-8 in string fields through its global log as well as by failing the parse. The
// properties feed it such bytes on purpose; keep their output readable.
class QuietProtobufLog {
 public:
  QuietProtobufLog() : previous_(google::protobuf::SetLogHandler(nullptr)) {}
  ~QuietProtobufLog() { google::protobuf::SetLogHandler(previous_); }
  QuietProtobufLog(const QuietProtobufLog&) = delete;
  QuietProtobufLog& operator=(const QuietProtobufLog&) = delete;

 private:
  google::protobuf::LogHandler* previous_;
};

bool same_message(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

PageView page_view(std::string page, std::string user, int64_t timestamp_ms) {
  PageView view;
  view.set_page(std::move(page));
  view.set_user(std::move(user));
  view.set_timestamp_ms(timestamp_ms);
  return view;
}

// Decodes and expects kBadMessage whose message contains every fragment; returns the message for further
// checks.
template <typename C>
std::string expect_bad_message(const C& codec, std::string_view bytes) {
  std::optional<Result<typename C::Value>> decoded;
  EXPECT_NO_THROW(decoded.emplace(codec.decode(bytes)));
  if (!decoded.has_value()) return {};
  EXPECT_EQ(decoded->code(), ErrorCode::kBadMessage);
  if (decoded->ok()) return {};
  std::printf("  %s\n", decoded->error().message.c_str());  // shown so a reviewer can judge the wording
  return decoded->error().message;
}

// --- raw and string ---

TEST(RawCodec, RoundTripsAnyBytesIncludingEmptyAndNul) {
  const RawCodec codec;
  for (const std::string& bytes : {std::string(), std::string("\0\xff\x80", 3), std::string("plain")}) {
    auto decoded = codec.decode(codec.encode(bytes));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(StringCodec, RoundTripsUtf8IncludingEmpty) {
  const StringCodec codec;
  for (const std::string& text : {std::string(), std::string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e"),
                                  std::string("nul\0inside", 10), std::string("\xf4\x8f\xbf\xbf")}) {
    auto decoded = codec.decode(codec.encode(text));
    ASSERT_TRUE(decoded.ok()) << decoded.error();
    EXPECT_EQ(*decoded, text);
  }
}

TEST(StringCodec, RejectsInvalidUtf8NamingTheOffset) {
  const StringCodec codec;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ab\x80", "at byte 2"},              // a stray continuation byte
      {"x\xc0\xaf", "at byte 1"},           // overlong encoding of '/'
      {"\xed\xa0\x80", "at byte 0"},        // a UTF-16 surrogate
      {"ok\xf4\x90\x80\x80", "at byte 2"},  // above U+10FFFF
      {"\xe2\x82", "at byte 0"},            // truncated sequence
      {"\xe2\x82z", "at byte 0"},           // a non-continuation byte inside a sequence
      {"\xff", "at byte 0"},                // never valid in UTF-8
  };
  for (const auto& [bytes, where] : cases) {
    const std::string message = expect_bad_message(codec, bytes);
    EXPECT_THAT(message, AllOf(HasSubstr("string codec"), HasSubstr("invalid UTF-8"), HasSubstr(where)))
        << message;
  }
}

// --- protobuf binary ---

TEST(ProtobufCodec, RoundTripsEveryExampleMessage) {
  const PageView view = page_view("/checkout", "u-17", 1'700'000'000'123);
  EXPECT_TRUE(same_message(*ProtobufCodec<PageView>{}.decode(ProtobufCodec<PageView>{}.encode(view)), view));

  examples::WordCount count;
  count.set_word("faust");
  count.set_count(-3);
  const ProtobufCodec<examples::WordCount> count_codec;
  EXPECT_TRUE(same_message(*count_codec.decode(count_codec.encode(count)), count));

  Order order;
  order.set_order_id("o-1");
  order.set_account("acct-9");
  order.set_amount_cents(INT64_MAX);
  EXPECT_TRUE(same_message(*ProtobufCodec<Order>{}.decode(ProtobufCodec<Order>{}.encode(order)), order));

  examples::Withdrawal withdrawal;
  withdrawal.set_account("acct-9");
  withdrawal.set_amount_cents(2'500);
  withdrawal.set_correlation_id("c-1");
  const ProtobufCodec<examples::Withdrawal> withdrawal_codec;
  EXPECT_TRUE(same_message(*withdrawal_codec.decode(withdrawal_codec.encode(withdrawal)), withdrawal));

  WithdrawalResult result;
  result.set_accepted(false);
  result.set_reason("insufficient funds");
  result.set_balance_cents(INT64_MIN);
  result.set_correlation_id("c-1");
  const ProtobufCodec<WithdrawalResult> result_codec;
  EXPECT_TRUE(same_message(*result_codec.decode(result_codec.encode(result)), result));
}

// Empty bytes are the encoding of the all-defaults message, so they decode; that is the format, not leniency.
TEST(ProtobufCodec, EmptyInputIsTheDefaultMessage) {
  auto decoded = ProtobufCodec<PageView>{}.decode("");
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(same_message(*decoded, PageView()));
  EXPECT_EQ(ProtobufCodec<PageView>{}.encode(PageView()), "");
}

TEST(ProtobufCodec, RejectsMalformedWireFormatSayingWhatAndWhere) {
  const ProtobufCodec<PageView> codec;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      // field 3 (varint) whose value's continuation bit promises a byte that never comes
      {std::string("\x18\xff", 2), {"field 3", "at byte 0", "truncated"}},
      // a tag that is itself a truncated varint, after one good field
      {std::string("\x18\x01\xff", 3), {"malformed tag", "at byte 2"}},
      // wire type 7 does not exist
      {std::string("\x0f", 1), {"invalid wire type 7", "field 1"}},
      // wire type 6 does not exist either
      {std::string("\x0e", 1), {"invalid wire type 6"}},
      // field 1 (length-delimited) claims 5 bytes, 2 follow
      {std::string("\x0a\x05"
                   "ab",
                   4),
       {"field 1", "truncated"}},
      // an end-group tag with no group open
      {std::string("\x0c", 1), {"end-group"}},
      // field 1 ("page", a proto3 string) holding an overlong '/': only the UTF-8 check can catch it
      {std::string("\x0a\x02\xc0\xaf", 4), {"invalid UTF-8"}},
  };
  const QuietProtobufLog quiet;
  for (const auto& [bytes, fragments] : cases) {
    const std::string message = expect_bad_message(codec, bytes);
    EXPECT_THAT(message, AllOf(HasSubstr("protobuf codec"), HasSubstr("mephisto.examples.PageView")))
        << message;
    for (const auto& fragment : fragments) EXPECT_THAT(message, HasSubstr(fragment)) << message;
  }
}

// Documented limit of the format: unknown fields are kept (and re-encoded), so newer writers do not lose data
// passing through older readers.
TEST(ProtobufCodec, KeepsUnknownFieldsForForwardCompatibility) {
  const std::string bytes =
      ProtobufCodec<PageView>{}.encode(page_view("/a", "u", 5)) + std::string("\x48\x07", 2);
  auto decoded = ProtobufCodec<PageView>{}.decode(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->page(), "/a");
  EXPECT_EQ(ProtobufCodec<PageView>{}.encode(*decoded), bytes);
}

// --- protobuf JSON ---

TEST(ProtobufJsonCodec, RoundTripsWithProtoFieldNamesAndEveryField) {
  const ProtobufJsonCodec<WithdrawalResult> codec;
  WithdrawalResult result;
  result.set_accepted(false);
  result.set_balance_cents(-12);
  const std::string text = codec.encode(result);
  // Defaults are printed (a reader without the schema sees the whole record); int64 is a string by the
  // mapping.
  EXPECT_THAT(text, AllOf(HasSubstr("\"accepted\":false"), HasSubstr("\"reason\":\"\""),
                          HasSubstr("\"balance_cents\":\"-12\"")));
  auto decoded = codec.decode(text);
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_TRUE(same_message(*decoded, result));

  const PageView view = page_view("/\"quoted\"\n", "u\xc3\xa9", INT64_MIN);
  auto view_decoded = ProtobufJsonCodec<PageView>{}.decode(ProtobufJsonCodec<PageView>{}.encode(view));
  ASSERT_TRUE(view_decoded.ok()) << view_decoded.error();
  EXPECT_TRUE(same_message(*view_decoded, view));
}

TEST(ProtobufJsonCodec, AcceptsBothFieldSpellingsAndInt64AsNumber) {
  auto decoded = ProtobufJsonCodec<PageView>{}.decode(R"({"page": "/a", "timestampMs": 42})");
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded->timestamp_ms(), 42);
  auto snake = ProtobufJsonCodec<PageView>{}.decode(R"({"timestamp_ms": "43"})");
  ASSERT_TRUE(snake.ok()) << snake.error();
  EXPECT_EQ(snake->timestamp_ms(), 43);
}

TEST(ProtobufJsonCodec, EmptyInputIsRejectedAndEmptyObjectIsTheDefaultMessage) {
  const ProtobufJsonCodec<PageView> codec;
  EXPECT_THAT(expect_bad_message(codec, ""), AllOf(HasSubstr("json codec"), HasSubstr("empty input")));
  auto decoded = codec.decode("{}");
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(same_message(*decoded, PageView()));
}

TEST(ProtobufJsonCodec, RejectsMalformedJsonWrongShapesAndUnknownFields) {
  const ProtobufJsonCodec<PageView> codec;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"page": )", ""},                    // cut off
      {"not json", ""},                        //
      {R"(["/a", "u"])", ""},                  // an array, not an object
      {R"("just a string")", ""},              // a scalar, not an object
      {R"({"page": 5})", "page"},              // a number where a string belongs
      {R"({"timestamp_ms": "soon"})", ""},     // not an int64
      {R"({"page": {"nested": 1}})", "page"},  // an object where a string belongs
      {R"({"pgae": "/a"})", "pgae"},           // unknown (misspelt) field
      {"{\"page\": \"\xc0\xaf\"}", ""},        // invalid UTF-8 inside a string
  };
  for (const auto& [text, fragment] : cases) {
    const std::string message = expect_bad_message(codec, text);
    EXPECT_THAT(message,
                AllOf(HasSubstr("json codec"), HasSubstr("mephisto.examples.PageView"), HasSubstr(fragment)))
        << "input: " << text << "\nmessage: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line, for logs: " << message;
    // Beyond our prefix, protobuf's parser must have said something.
    EXPECT_GT(message.size(),
              std::string("json codec: cannot decode mephisto.examples.PageView from 0 bytes: ").size())
        << message;
  }
}

// Pins the documented leniency of protobuf's parser, so an upgrade that changes it is noticed.
TEST(ProtobufJsonCodec, ToleratesATrailingCommaAsProtobufDoes) {
  auto decoded = ProtobufJsonCodec<PageView>{}.decode(R"({"page": "/a",})");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->page(), "/a");
}

// --- selection by name ---

TEST(CodecKind, ParsesEveryNameAndRoundTripsIt) {
  for (CodecKind kind : {CodecKind::kRaw, CodecKind::kString, CodecKind::kProtobuf, CodecKind::kJson}) {
    auto parsed = parse_codec_kind(codec_kind_name(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
}

TEST(CodecKind, UnknownNameIsInvalidArgNamingTheChoices) {
  for (std::string_view name : {"", "JSON", "avro", "pickle"}) {
    auto parsed = parse_codec_kind(name);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.code(), ErrorCode::kInvalidArg);
    EXPECT_THAT(parsed.error().message,
                AllOf(HasSubstr("raw"), HasSubstr("string"), HasSubstr("protobuf"), HasSubstr("json")));
  }
}

TEST(SelectedCodec, DispatchesToTheNamedCodec) {
  const PageView view = page_view("/a", "u", 7);
  auto json = SelectedCodec<PageView>::make(CodecKind::kJson);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->encode(view), ProtobufJsonCodec<PageView>{}.encode(view));
  EXPECT_TRUE(same_message(*json->decode(json->encode(view)), view));
  auto binary = SelectedCodec<PageView>::make(CodecKind::kProtobuf);
  ASSERT_TRUE(binary.ok());
  EXPECT_EQ(binary->encode(view), ProtobufCodec<PageView>{}.encode(view));

  auto string_codec = SelectedCodec<std::string>::make(CodecKind::kString);
  ASSERT_TRUE(string_codec.ok());
  EXPECT_EQ(string_codec->decode("\xff").code(), ErrorCode::kBadMessage);
  auto raw = SelectedCodec<std::string>::make(CodecKind::kRaw);
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(raw->decode("\xff").ok());
}

TEST(SelectedCodec, RefusesKindsThatCannotCarryTheType) {
  auto raw_for_message = SelectedCodec<PageView>::make(CodecKind::kRaw);
  ASSERT_FALSE(raw_for_message.ok());
  EXPECT_EQ(raw_for_message.code(), ErrorCode::kInvalidArg);
  EXPECT_THAT(
      raw_for_message.error().message,
      AllOf(HasSubstr("'raw'"), HasSubstr("mephisto.examples.PageView"), HasSubstr("'protobuf' or 'json'")));
  auto json_for_string = SelectedCodec<std::string>::make(CodecKind::kJson);
  ASSERT_FALSE(json_for_string.ok());
  EXPECT_THAT(json_for_string.error().message, HasSubstr("'raw' or 'string'"));
}

// --- properties ---

// UTF-8 text over the whole code-point range (NUL, controls, quotes, astral planes), surrogates excluded:
// what a proto3 string field may legally hold.
std::string utf8_of(const std::vector<uint32_t>& code_points) {
  std::string out;
  for (uint32_t cp : code_points) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

rc::Gen<std::string> gen_utf8() {
  return rc::gen::map(rc::gen::container<std::vector<uint32_t>>(rc::gen::oneOf(
                          rc::gen::inRange<uint32_t>(0, 0x80), rc::gen::inRange<uint32_t>(0, 0xD800),
                          rc::gen::inRange<uint32_t>(0xE000, 0x110000))),
                      utf8_of);
}

rc::Gen<PageView> gen_page_view() {
  return rc::gen::apply(page_view, gen_utf8(), gen_utf8(), rc::gen::arbitrary<int64_t>());
}

rc::Gen<WithdrawalResult> gen_withdrawal_result() {
  return rc::gen::apply(
      [](bool accepted, std::string reason, int64_t balance_cents, std::string correlation_id) {
        WithdrawalResult result;
        result.set_accepted(accepted);
        result.set_reason(std::move(reason));
        result.set_balance_cents(balance_cents);
        result.set_correlation_id(std::move(correlation_id));
        return result;
      },
      rc::gen::arbitrary<bool>(), gen_utf8(), rc::gen::arbitrary<int64_t>(), gen_utf8());
}

template <typename C>
void check_round_trip(const C& codec, const typename C::Value& value) {
  auto decoded = codec.decode(codec.encode(value));
  RC_ASSERT(decoded.ok());
  RC_ASSERT(same_message(*decoded, value));
}

RC_GTEST_PROP(CodecProperty, DecodeOfEncodeIsIdentityForGeneratedMessages, ()) {
  const PageView view = *gen_page_view();
  check_round_trip(ProtobufCodec<PageView>{}, view);
  check_round_trip(ProtobufJsonCodec<PageView>{}, view);
  const WithdrawalResult result = *gen_withdrawal_result();
  check_round_trip(ProtobufCodec<WithdrawalResult>{}, result);
  check_round_trip(ProtobufJsonCodec<WithdrawalResult>{}, result);
  const std::string text = *gen_utf8();
  RC_ASSERT(*StringCodec{}.decode(StringCodec{}.encode(text)) == text);
}

// Whatever a decoder gets, it answers with a value: ok, or kBadMessage with a message. Never a throw or a
// crash.
template <typename C>
void check_total(const C& codec, std::string_view bytes) {
  std::optional<Result<typename C::Value>> decoded;
  try {
    decoded.emplace(codec.decode(bytes));
  } catch (...) {
    RC_FAIL("decode threw");
  }
  if (!decoded->ok()) {
    RC_ASSERT(decoded->code() == ErrorCode::kBadMessage);
    RC_ASSERT(!decoded->error().message.empty());
  }
}

void check_every_decoder(std::string_view bytes) {
  check_total(RawCodec{}, bytes);
  check_total(StringCodec{}, bytes);
  check_total(ProtobufCodec<PageView>{}, bytes);
  check_total(ProtobufCodec<WithdrawalResult>{}, bytes);
  check_total(ProtobufJsonCodec<PageView>{}, bytes);
  check_total(ProtobufJsonCodec<WithdrawalResult>{}, bytes);
}

RC_GTEST_PROP(CodecProperty, ArbitraryBytesNeverCrashAnyDecoder, (const std::string& bytes)) {
  const QuietProtobufLog quiet;
  check_every_decoder(bytes);
  // The string codec accepts exactly the valid UTF-8.
  RC_ASSERT(StringCodec{}.decode(bytes).ok() == (first_invalid_utf8_offset(bytes) == bytes.size()));
  // Whatever protobuf accepts, it re-encodes to something that decodes to the same message.
  auto decoded = ProtobufCodec<PageView>{}.decode(bytes);
  if (decoded.ok()) check_round_trip(ProtobufCodec<PageView>{}, *decoded);
}

// Arbitrary bytes are mostly rejected at the first byte; damaged valid encodings reach deeper into each
// parser.
RC_GTEST_PROP(CodecProperty, DamagedEncodingsNeverCrashAnyDecoder, ()) {
  const QuietProtobufLog quiet;
  const PageView view = *gen_page_view();
  for (std::string encoded :
       {ProtobufCodec<PageView>{}.encode(view), ProtobufJsonCodec<PageView>{}.encode(view)}) {
    const size_t cut = *rc::gen::inRange<size_t>(0, encoded.size() + 1);
    check_every_decoder(std::string_view(encoded).substr(0, cut));
    if (encoded.empty()) continue;
    const size_t at = *rc::gen::inRange<size_t>(0, encoded.size());
    encoded[at] = static_cast<char>(*rc::gen::arbitrary<uint8_t>());
    check_every_decoder(encoded);
  }
}

}  // namespace
}  // namespace mephisto
