// The server side of RFC 6455 framing: turns the bytes a client sends into
// whole messages and control frames, or into the protocol error that fails
// the connection, with the close code section 7.4.1 prescribes. Pure code (no
// Asio, no Beast, no I/O), so that the fuzz build links it alone; the
// connection in websocket.cc feeds it what each read returns.
//
// What it checks: reserved bits (no extension is negotiated), known opcodes,
// masking (every client frame must be masked), control frames (final, at
// most 125 bytes), fragmentation (continuations only inside a message, no
// new message inside one), 64-bit lengths with the top bit clear, and the
// message size limit, which applies from the header alone (a frame that
// would take the message above it fails before its payload arrives).
// What it does not check: the UTF-8 of text messages, which are handed on
// as they came (protocol.md makes bad text the JSON parser's
// invalid_argument, not a close), nor the body of close frames, which
// DecodeClosePayload reads (a close answering ours is not checked at all).
// Frames after a close are still parsed: stopping is the caller's business.
//
// Usage: Feed() the bytes of one read, then call Next() until it returns
// kNeedMore (bytes of an incomplete frame are kept for the next Feed) or
// kError (the parser is failed; Next() returns the same error from then on
// and Feed() ignores its bytes, until Clear()).
//
// Copies: none on the common path. A frame complete within the fed bytes
// is unmasked in place and its payload handed out as a view of them; only
// the bytes of a frame cut off at the end of a read are kept (copied), and
// the fragments of a fragmented message are gathered into one string.
// Memory: when nothing is pending the parser holds no heap memory.
//
// Threading: none. A parser belongs to one connection and is used by one
// thread at a time (the connection's io thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mpim::net {

// Frame opcodes (RFC 6455 section 5.2).
enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Longest payload of a control frame (section 5.5).
inline constexpr size_t kWsMaxControlPayload = 125;

// The close codes the parser and DecodeClosePayload fail with (section 7.4.1).
inline constexpr uint16_t kWsCloseProtocolError = 1002;
inline constexpr uint16_t kWsCloseInvalidPayload = 1007;  // close reason not UTF-8
inline constexpr uint16_t kWsCloseTooBig = 1009;

// One result of WsFrameParser::Next().
struct WsEvent {
  enum class Kind : uint8_t {
    kNeedMore,  // every complete frame is consumed: Feed() the next bytes
    kText,      // payload: one whole text message (UTF-8 not checked)
    kBinary,    // payload: one whole binary message
    kPing,      // payload: the ping's data (<= 125 bytes), for the pong
    kPong,      // payload: the pong's data (<= 125 bytes)
    kClose,     // payload: the close frame's body, for DecodeClosePayload
    kError,     // the client broke the protocol: fail with close_code, reason
  };

  Kind kind = Kind::kNeedMore;
  // Unmasked. A view of the fed bytes or of the parser's own buffers: valid
  // until the next call of Feed(), Next() or Clear(), or the parser's end.
  std::string_view payload;
  // kError only: kWsCloseProtocolError or kWsCloseTooBig, and the reason to
  // send in the close frame (valid as long as payload would be).
  uint16_t close_code = 0;
  std::string_view reason;
};

class WsFrameParser {
 public:
  // Messages (the sum of their fragments) above `max_message_bytes` fail
  // with kWsCloseTooBig.
  explicit WsFrameParser(uint64_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  WsFrameParser(const WsFrameParser&) = delete;
  WsFrameParser& operator=(const WsFrameParser&) = delete;

  // Hands the parser the next `size` bytes of the stream. They are parsed
  // (and unmasked in place) by the Next() calls that follow, and must stay
  // valid and unchanged until Next() returns kNeedMore or kError, or until
  // Clear(); the parser copies what it must keep before it returns
  // kNeedMore. Bytes fed before the last kNeedMore are not to be fed again.
  void Feed(char* data, size_t size);

  // The next message or control frame, kNeedMore, or kError. Fragments of
  // a message are gathered silently; control frames between them come out
  // in their place.
  WsEvent Next();

  // Back to a new parser's state: drops the bytes kept, the message being
  // gathered and a failure, and frees their memory.
  void Clear();

  // Heap bytes held for an incomplete frame and an incomplete message.
  size_t buffered() const { return in_.size() + (failed_ ? 0 : message_.size()); }
  bool failed() const { return failed_; }
  uint64_t max_message_bytes() const { return max_message_bytes_; }

 private:
  // Parses one frame at `p`: the bytes it took (with `event` set, or left
  // kNeedMore for a fragment gathered silently), or 0 when the frame is
  // incomplete or the parser failed (`event` is then kError).
  size_t ParseFrame(unsigned char* p, size_t avail, WsEvent& event);
  // Fails the parser: frees its buffers, keeps `reason`, sets `event`.
  size_t Fail(uint16_t code, std::string_view reason, WsEvent& event);
  WsEvent FailedEvent() const;
  // Keeps the unparsed fed bytes (those of an incomplete frame) in in_.
  void Keep();

  const uint64_t max_message_bytes_;
  char* next_ = nullptr;  // the fed bytes not yet parsed: [next_, end_)
  char* end_ = nullptr;   // (in the caller's buffer, or in in_ if kept_)
  std::string in_;        // an incomplete frame, kept across Feed() calls
  // The fragments of a message so far; a message handed out until the next
  // call (release_message_); once failed, the reason of the failure.
  std::string message_;
  WsOpcode message_opcode_ = WsOpcode::kContinuation;  // text/binary while gathering
  uint16_t failed_code_ = 0;
  bool kept_ = false;             // next_ points into in_
  bool release_message_ = false;  // message_ was handed out: free it on the next call
  bool failed_ = false;
};

// A close frame's body, decoded (section 5.5.1): no body, or a two-byte
// code the client may send (section 7.4, IANA registry) and a UTF-8 reason.
struct WsClosePayload {
  uint16_t code = 0;        // 0: the frame had no body
  std::string_view reason;  // a view of the payload
  // Non-zero when the body is malformed: fail the connection with this
  // code (kWsCloseProtocolError: 1 byte, or a code no client may send;
  // kWsCloseInvalidPayload: the reason is not UTF-8) and error_reason.
  uint16_t error = 0;
  std::string_view error_reason;
};

WsClosePayload DecodeClosePayload(std::string_view payload);

}  // namespace mpim::net
