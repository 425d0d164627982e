// WsFrameParser (src/net/ws_frame_parser.h) on bytes laid out as RFC 6455
// has them: the three length forms, masking, fragmentation with control
// frames between fragments, input cut anywhere, the size limit, protocol
// errors and their close codes, and DecodeClosePayload.
#include "net/ws_frame_parser.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mpim::net {
namespace {

using Kind = WsEvent::Kind;

// How a test frame spells its length.
enum class LengthForm { kShortest, k16, k64 };

struct FrameSpec {
  bool fin = true;
  bool mask = true;
  uint8_t rsv = 0;  // 0x40, 0x20, 0x10
  LengthForm form = LengthForm::kShortest;
  uint64_t announced = UINT64_MAX;  // a length other than the payload's
};

// A client frame: masked (unless told not to) with a fixed key.
std::string Frame(int opcode, std::string_view payload, FrameSpec spec = {}) {
  std::string out;
  out.push_back(static_cast<char>((spec.fin ? 0x80 : 0) | spec.rsv | opcode));
  const unsigned char mask_bit = spec.mask ? 0x80 : 0;
  uint64_t n = spec.announced != UINT64_MAX ? spec.announced : payload.size();
  LengthForm form = spec.form;
  if (form == LengthForm::kShortest) {
    form = n < 126 ? LengthForm::kShortest : n <= 0xFFFF ? LengthForm::k16 : LengthForm::k64;
  }
  if (form == LengthForm::kShortest) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (form == LengthForm::k16) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (spec.mask) out.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(spec.mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  }
  return out;
}

std::string Unfinished(int opcode, std::string_view payload) {
  return Frame(opcode, payload, {.fin = false});
}

std::string ClosePayload(int code, std::string_view reason = "") {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}

// An event with its views copied.
struct Ev {
  Kind kind = Kind::kNeedMore;
  std::string payload;
  uint16_t code = 0;
  std::string reason;

  static Ev Of(const WsEvent& e) {
    return {e.kind, std::string(e.payload), e.close_code, std::string(e.reason)};
  }
  bool operator==(const Ev&) const = default;
};

Ev Text(std::string_view s) { return {Kind::kText, std::string(s)}; }
Ev Binary(std::string_view s) { return {Kind::kBinary, std::string(s)}; }
Ev Ping(std::string_view s) { return {Kind::kPing, std::string(s)}; }
Ev Pong(std::string_view s) { return {Kind::kPong, std::string(s)}; }
Ev Close(std::string_view s) { return {Kind::kClose, std::string(s)}; }
Ev Error(uint16_t code, std::string_view reason) {
  return {Kind::kError, "", code, std::string(reason)};
}

void PrintTo(const Ev& e, std::ostream* os) {
  static const char* const kNames[] = {"need-more", "text",  "binary", "ping",
                                       "pong",      "close", "error"};
  *os << kNames[static_cast<int>(e.kind)] << "(" << e.payload.size() << " bytes";
  if (e.payload.size() <= 40) *os << " \"" << e.payload << "\"";
  if (e.kind == Kind::kError) *os << ", " << e.code << " \"" << e.reason << "\"";
  *os << ")";
}

// Feeds `bytes` in chunks of `chunk` bytes (each in its own buffer, gone
// once the parser asks for more) and returns the events, up to an error.
std::vector<Ev> Parse(WsFrameParser& parser, std::string_view bytes, size_t chunk = SIZE_MAX) {
  std::vector<Ev> events;
  size_t pos = 0;
  do {
    std::string piece(bytes.substr(pos, chunk));
    pos += piece.size();
    parser.Feed(piece.data(), piece.size());
    for (;;) {
      WsEvent e = parser.Next();
      if (e.kind == Kind::kNeedMore) break;
      events.push_back(Ev::Of(e));
      if (e.kind == Kind::kError) return events;
    }
  } while (pos < bytes.size());
  return events;
}

std::vector<Ev> Parse(std::string_view bytes, size_t chunk = SIZE_MAX, uint64_t limit = 1000) {
  WsFrameParser parser(limit);
  return Parse(parser, bytes, chunk);
}

// --- lengths and masking ---

TEST(WsFrameParserTest, EveryLengthForm) {
  for (size_t n : {0u, 1u, 125u, 126u, 127u, 1000u, 65535u, 65536u, 70000u}) {
    SCOPED_TRACE(n);
    std::string text(n, static_cast<char>('a' + n % 26));
    EXPECT_EQ(Parse(Frame(1, text), SIZE_MAX, 100000), std::vector<Ev>{Text(text)});
  }
}

TEST(WsFrameParserTest, LongerLengthFormsThanNeededAreAccepted) {
  // RFC 6455 asks senders for the shortest form; receivers here take any.
  // (Not control frames: see ControlFramesAreAtMost125Bytes.)
  EXPECT_EQ(Parse(Frame(1, "hello", {.form = LengthForm::k16}) +
                  Frame(1, "world", {.form = LengthForm::k64}) + Unfinished(2, "1") +
                  Frame(0, "2", {.form = LengthForm::k16})),
            (std::vector<Ev>{Text("hello"), Text("world"), Binary("12")}));
}

TEST(WsFrameParserTest, LengthWithTheTopBitSetIsAProtocolError) {
  std::string frame = Frame(2, "", {.announced = uint64_t{1} << 63});
  // Known from the 10 header bytes, before the mask arrives.
  EXPECT_EQ(Parse(frame.substr(0, 10), SIZE_MAX, UINT64_MAX),
            std::vector<Ev>{Error(1002, "frame length out of range")});
}

TEST(WsFrameParserTest, PayloadsAreUnmaskedInPlace) {
  std::string bytes = Frame(1, "in place") + Frame(9, "ping");
  WsFrameParser parser(1000);
  parser.Feed(bytes.data(), bytes.size());
  WsEvent text = parser.Next();
  ASSERT_EQ(text.kind, Kind::kText);
  EXPECT_EQ(text.payload, "in place");
  // A view of the fed bytes: no copy.
  EXPECT_EQ(text.payload.data(), bytes.data() + 6);
  WsEvent ping = parser.Next();
  ASSERT_EQ(ping.kind, Kind::kPing);
  EXPECT_EQ(ping.payload.data(), bytes.data() + 6 + 8 + 6);
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(WsFrameParserTest, UnmasksEveryLengthAtEveryAlignment) {
  // Payloads of distinct bytes, so that a key out of step shows; frames at
  // odd offsets in the fed buffer.
  for (size_t n = 0; n <= 70; ++n) {
    std::string payload;
    for (size_t i = 0; i < n; ++i) payload.push_back(static_cast<char>(i * 7 + 1));
    for (size_t offset = 1; offset <= 3; ++offset) {
      SCOPED_TRACE(n);
      SCOPED_TRACE(offset);
      std::string bytes = std::string(offset, '\0') + Frame(2, payload);
      WsFrameParser parser(1000);
      parser.Feed(bytes.data() + offset, bytes.size() - offset);
      EXPECT_EQ(Ev::Of(parser.Next()), Binary(payload));
    }
  }
}

TEST(WsFrameParserTest, ClientFramesMustBeMasked) {
  EXPECT_EQ(Parse(Frame(1, "hi", {.mask = false})),
            std::vector<Ev>{Error(1002, "client frames must be masked")});
  EXPECT_EQ(Parse(Frame(9, "", {.mask = false})),
            std::vector<Ev>{Error(1002, "client frames must be masked")});
  // From the first two bytes alone.
  EXPECT_EQ(Parse(Frame(1, std::string(500, 'x'), {.mask = false}).substr(0, 2)),
            std::vector<Ev>{Error(1002, "client frames must be masked")});
}

// --- opcodes and reserved bits ---

TEST(WsFrameParserTest, ReservedBitsAreAProtocolError) {
  for (uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    SCOPED_TRACE(rsv);
    EXPECT_EQ(Parse(Frame(1, "hi", {.rsv = rsv})),
              std::vector<Ev>{Error(1002, "reserved bits set")});
    EXPECT_EQ(Parse(Frame(9, "hi", {.rsv = rsv})),
              std::vector<Ev>{Error(1002, "reserved bits set")});
  }
}

TEST(WsFrameParserTest, UnknownOpcodesAreAProtocolError) {
  for (int opcode : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(opcode);
    EXPECT_EQ(Parse(Frame(opcode, "")), std::vector<Ev>{Error(1002, "unknown opcode")});
  }
}

TEST(WsFrameParserTest, BinaryAndControlFrames) {
  std::string bin("\x00\xff\x80", 3);
  EXPECT_EQ(Parse(Frame(2, bin) + Frame(9, "are you there") + Frame(10, "yes") +
                  Frame(8, ClosePayload(1000, "bye"))),
            (std::vector<Ev>{Binary(bin), Ping("are you there"), Pong("yes"),
                             Close(ClosePayload(1000, "bye"))}));
}

// --- control frame rules ---

TEST(WsFrameParserTest, ControlFramesAreAtMost125Bytes) {
  std::string max(125, 'p');
  EXPECT_EQ(Parse(Frame(9, max) + Frame(10, max) + Frame(8, ClosePayload(1000, max.substr(2)))),
            (std::vector<Ev>{Ping(max), Pong(max), Close(ClosePayload(1000, max.substr(2)))}));
  for (int opcode : {8, 9, 10}) {
    SCOPED_TRACE(opcode);
    std::string frame = Frame(opcode, std::string(126, 'p'));
    EXPECT_EQ(Parse(frame), std::vector<Ev>{Error(1002, "control frame too long")});
    // From the first two bytes alone.
    EXPECT_EQ(Parse(frame.substr(0, 2)), std::vector<Ev>{Error(1002, "control frame too long")});
    // Even when a longer form announces fewer bytes.
    EXPECT_EQ(Parse(Frame(opcode, "p", {.form = LengthForm::k64})),
              std::vector<Ev>{Error(1002, "control frame too long")});
  }
}

TEST(WsFrameParserTest, ControlFramesMayNotBeFragmented) {
  for (int opcode : {8, 9, 10}) {
    SCOPED_TRACE(opcode);
    EXPECT_EQ(Parse(Unfinished(opcode, "p")),
              std::vector<Ev>{Error(1002, "fragmented control frame")});
  }
}

// --- fragmentation ---

TEST(WsFrameParserTest, FragmentedMessagesWithControlFramesBetweenFragments) {
  std::string bytes = Unfinished(1, "hel") + Frame(9, "are you there") +
                      Frame(0, "lo ", {.fin = false}) + Frame(10, "pong") + Frame(0, "world");
  EXPECT_EQ(Parse(bytes),
            (std::vector<Ev>{Ping("are you there"), Pong("pong"), Text("hello world")}));
  std::string bin("\x01\x00\x02", 3);
  EXPECT_EQ(Parse(Unfinished(2, bin.substr(0, 1)) + Frame(0, "", {.fin = false}) +
                  Frame(8, ClosePayload(1000)) + Frame(0, bin.substr(1))),
            (std::vector<Ev>{Close(ClosePayload(1000)), Binary(bin)}));
}

TEST(WsFrameParserTest, EmptyFragments) {
  EXPECT_EQ(Parse(Unfinished(1, "") + Frame(0, "", {.fin = false}) + Frame(0, "")),
            std::vector<Ev>{Text("")});
  EXPECT_EQ(Parse(Unfinished(1, "") + Frame(0, "x")), std::vector<Ev>{Text("x")});
}

TEST(WsFrameParserTest, ContinuationWithoutAMessageIsAProtocolError) {
  EXPECT_EQ(Parse(Frame(0, "hi")),
            std::vector<Ev>{Error(1002, "continuation frame without a message")});
  // Nor after a message is complete.
  EXPECT_EQ(Parse(Unfinished(1, "a") + Frame(0, "b") + Frame(0, "c")),
            (std::vector<Ev>{Text("ab"), Error(1002, "continuation frame without a message")}));
}

TEST(WsFrameParserTest, NewMessageInsideAFragmentedOneIsAProtocolError) {
  EXPECT_EQ(Parse(Unfinished(1, "a") + Frame(1, "b")),
            std::vector<Ev>{Error(1002, "new message inside a fragmented one")});
  EXPECT_EQ(Parse(Unfinished(1, "a") + Unfinished(2, "b")),
            std::vector<Ev>{Error(1002, "new message inside a fragmented one")});
}

TEST(WsFrameParserTest, GatheredMessageIsFreedOnTheNextCall) {
  std::string bytes = Unfinished(1, "hello ") + Frame(0, "world");
  WsFrameParser parser(1000);
  parser.Feed(bytes.data(), bytes.size());
  WsEvent e = parser.Next();
  ASSERT_EQ(e.kind, Kind::kText);
  EXPECT_EQ(e.payload, "hello world");
  EXPECT_EQ(parser.buffered(), 11u);
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  EXPECT_EQ(parser.buffered(), 0u);
}

// --- input cut anywhere ---

std::string AMixOfFrames() {
  return Frame(1, std::string(300, 'x')) + Frame(1, "second") + Unfinished(1, "frag") +
         Frame(9, "ping") + Frame(0, std::string(200, 'y'), {.fin = false}) + Frame(0, "end") +
         Frame(2, std::string(70000, 'z')) + Frame(10, "") +
         Frame(1, "16", {.form = LengthForm::k16}) + Frame(8, ClosePayload(4000, "bye"));
}

std::vector<Ev> AMixOfEvents() {
  return {Text(std::string(300, 'x')),
          Text("second"),
          Ping("ping"),
          Text("frag" + std::string(200, 'y') + "end"),
          Binary(std::string(70000, 'z')),
          Pong(""),
          Text("16"),
          Close(ClosePayload(4000, "bye"))};
}

TEST(WsFrameParserTest, BytesArrivingOneAtATime) {
  EXPECT_EQ(Parse(AMixOfFrames(), 1, 100000), AMixOfEvents());
}

TEST(WsFrameParserTest, BytesArrivingInChunksOfEverySize) {
  std::string bytes = AMixOfFrames();
  for (size_t chunk : {2u, 3u, 5u, 7u, 13u, 64u, 127u, 1000u, 4096u, 65536u}) {
    SCOPED_TRACE(chunk);
    EXPECT_EQ(Parse(bytes, chunk, 100000), AMixOfEvents());
  }
}

TEST(WsFrameParserTest, KeepsOnlyTheIncompleteFrame) {
  std::string bytes = Frame(1, "one") + Frame(1, std::string(200, 't'));
  WsFrameParser parser(1000);
  std::string first = bytes.substr(0, 9 + 50);
  parser.Feed(first.data(), first.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Text("one"));
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  EXPECT_EQ(parser.buffered(), 50u);  // the second frame's start, copied
  first.assign(first.size(), '\0');   // the fed bytes are the caller's again
  std::string rest = bytes.substr(9 + 50);
  parser.Feed(rest.data(), rest.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Text(std::string(200, 't')));
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(WsFrameParserTest, FeedingAgainBeforeNeedMoreKeepsTheUnparsedBytes) {
  std::string bytes = Frame(1, "a") + Frame(1, "b") + Frame(1, "c");
  WsFrameParser parser(1000);
  std::string first = bytes.substr(0, 10);  // "a" and the start of "b"
  parser.Feed(first.data(), first.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Text("a"));
  std::string rest = bytes.substr(10);
  parser.Feed(rest.data(), rest.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Text("b"));
  EXPECT_EQ(Ev::Of(parser.Next()), Text("c"));
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
}

TEST(WsFrameParserTest, NothingFedNothingParsed) {
  WsFrameParser parser(1000);
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  parser.Feed(nullptr, 0);
  EXPECT_EQ(parser.Next().kind, Kind::kNeedMore);
  EXPECT_EQ(parser.buffered(), 0u);
}

// --- the size limit ---

TEST(WsFrameParserTest, MessagesUpToTheLimitPass) {
  std::string max(1000, 'm');
  EXPECT_EQ(Parse(Frame(1, max)), std::vector<Ev>{Text(max)});
  EXPECT_EQ(Parse(Unfinished(2, max.substr(0, 600)) + Frame(9, std::string(125, 'p')) +
                  Frame(0, max.substr(600))),
            (std::vector<Ev>{Ping(std::string(125, 'p')), Binary(max)}));
}

TEST(WsFrameParserTest, MessageAboveTheLimitIsTooBig) {
  EXPECT_EQ(Parse(Frame(1, std::string(1001, 'x'))),
            std::vector<Ev>{Error(1009, "message above 1000 bytes")});
  EXPECT_EQ(Parse(Unfinished(1, std::string(600, 'x')) + Frame(0, std::string(401, 'x'))),
            std::vector<Ev>{Error(1009, "message above 1000 bytes")});
  EXPECT_EQ(
      Parse(Unfinished(1, std::string(1000, 'x')) + Frame(0, "", {.fin = false}) + Frame(0, "x")),
      std::vector<Ev>{Error(1009, "message above 1000 bytes")});
}

TEST(WsFrameParserTest, OversizeIsRefusedFromTheHeaderAlone) {
  // 1 GiB announced; only the header (no mask, no payload) has arrived.
  std::string header = Frame(1, "", {.announced = uint64_t{1} << 30}).substr(0, 10);
  WsFrameParser parser(131072);
  EXPECT_EQ(Parse(parser, header, 1), std::vector<Ev>{Error(1009, "message above 131072 bytes")});
  EXPECT_EQ(parser.buffered(), 0u);
  // A continuation that would cross the limit, likewise.
  EXPECT_EQ(
      Parse(Unfinished(1, std::string(999, 'x')) + Frame(0, "", {.announced = 2}).substr(0, 2)),
      std::vector<Ev>{Error(1009, "message above 1000 bytes")});
}

// --- failure ---

TEST(WsFrameParserTest, AnErrorIsFinalUntilClear) {
  std::string bytes = Frame(1, "ok") + Frame(3, "") + Frame(1, "after");
  WsFrameParser parser(1000);
  parser.Feed(bytes.data(), bytes.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Text("ok"));
  EXPECT_EQ(Ev::Of(parser.Next()), Error(1002, "unknown opcode"));
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.buffered(), 0u);
  EXPECT_EQ(Ev::Of(parser.Next()), Error(1002, "unknown opcode"));
  std::string more = Frame(1, "more");
  parser.Feed(more.data(), more.size());
  EXPECT_EQ(Ev::Of(parser.Next()), Error(1002, "unknown opcode"));
  parser.Clear();
  EXPECT_FALSE(parser.failed());
  EXPECT_EQ(Parse(parser, Frame(1, "fresh")), std::vector<Ev>{Text("fresh")});
}

TEST(WsFrameParserTest, ClearDropsAMessageBeingGathered) {
  WsFrameParser parser(1000);
  EXPECT_EQ(Parse(parser, Unfinished(1, "half") + Frame(0, "incomp").substr(0, 4)),
            std::vector<Ev>{});
  EXPECT_EQ(parser.buffered(), 8u);
  parser.Clear();
  EXPECT_EQ(parser.buffered(), 0u);
  EXPECT_EQ(Parse(parser, Frame(1, "new")), std::vector<Ev>{Text("new")});
}

TEST(WsFrameParserTest, FramesAfterACloseAreStillParsed) {
  // Stopping after a close is the connection's business.
  EXPECT_EQ(Parse(Frame(8, "") + Frame(1, "late")), (std::vector<Ev>{Close(""), Text("late")}));
}

// --- UTF-8 ---

TEST(WsFrameParserTest, TextIsHandedOnWithoutAUtf8Check) {
  // Invalid UTF-8 in text is the JSON parser's to report (invalid_argument,
  // not a close 1007): see websocket.h.
  std::string bad = "\xff\xfe \xc0\xaf";
  EXPECT_EQ(Parse(Frame(1, bad)), std::vector<Ev>{Text(bad)});
  // Nor are code points cut between fragments a concern of the parser.
  EXPECT_EQ(Parse(Unfinished(1, "\xc3") + Frame(0, "\xa9")), std::vector<Ev>{Text("\xc3\xa9")});
}

// --- close payloads ---

TEST(WsFrameParserTest, DecodeCloseWithoutABody) {
  WsClosePayload close = DecodeClosePayload("");
  EXPECT_EQ(close.error, 0);
  EXPECT_EQ(close.code, 0);
  EXPECT_EQ(close.reason, "");
}

TEST(WsFrameParserTest, DecodeCloseWithACodeAndAReason) {
  std::string payload = ClosePayload(4000, "bye \xc3\xa9");
  WsClosePayload close = DecodeClosePayload(payload);
  EXPECT_EQ(close.error, 0);
  EXPECT_EQ(close.code, 4000);
  EXPECT_EQ(close.reason, "bye \xc3\xa9");
  EXPECT_EQ(close.reason.data(), payload.data() + 2);
}

TEST(WsFrameParserTest, DecodeCloseOfOneByteIsAProtocolError) {
  WsClosePayload close = DecodeClosePayload("x");
  EXPECT_EQ(close.error, 1002);
  EXPECT_EQ(close.error_reason, "close frame with a one-byte payload");
}

TEST(WsFrameParserTest, DecodeCloseCodesAClientMaySend) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                   3999, 4000, 4999}) {
    SCOPED_TRACE(code);
    WsClosePayload close = DecodeClosePayload(ClosePayload(code));
    EXPECT_EQ(close.error, 0);
    EXPECT_EQ(close.code, code);
  }
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    WsClosePayload close = DecodeClosePayload(ClosePayload(code));
    EXPECT_EQ(close.error, 1002);
    EXPECT_EQ(close.error_reason, "invalid close code");
    EXPECT_EQ(close.code, 0);
  }
}

TEST(WsFrameParserTest, DecodeCloseReasonMustBeUtf8) {
  for (std::string_view bad : {"\xff\xfe", "\xc3", "\xed\xa0\x80", "ok \xc0\xaf"}) {
    WsClosePayload close = DecodeClosePayload(ClosePayload(1000, bad));
    EXPECT_EQ(close.error, 1007);
    EXPECT_EQ(close.error_reason, "close reason is not UTF-8");
  }
  // A bad code is reported before a bad reason.
  EXPECT_EQ(DecodeClosePayload(ClosePayload(1005, "\xff")).error, 1002);
}

}  // namespace
}  // namespace mpim::net
