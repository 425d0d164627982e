// Fuzz target: the bytes a WebSocket client sends, through WsFrameParser
// twice: fed at once, and cut into chunks. Both must give the same events;
// every event must respect the limits (messages within max_message_bytes,
// control payloads within 125 bytes, close codes 1002 or 1009) and the
// parser's memory stays bounded. Each piece of input lives in a buffer of
// its exact size, freed once the parser asks for more, so ASan reports a
// read past the input or a view kept of bytes that are gone.
//
// Input: byte 0 picks the chunking (low 2 bits: chunks of 1 byte, up to 8,
// up to 256 or up to 64 KiB; the rest seeds their sizes), byte 1 the
// message size limit (0 to 200 bytes as is, so that one mutated length byte
// can meet it; 201 to 255: 1 to 55 KiB), the rest is the stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/ws_frame_parser.h"

namespace {

using mpim::net::DecodeClosePayload;
using mpim::net::WsClosePayload;
using mpim::net::WsEvent;
using mpim::net::WsFrameParser;
using Kind = WsEvent::Kind;

struct Ev {
  Kind kind;
  std::string payload;
  uint16_t code;
  std::string reason;
  bool operator==(const Ev&) const = default;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckEvent(const WsEvent& e, uint64_t limit) {
  switch (e.kind) {
    case Kind::kText:
    case Kind::kBinary:
      Check(e.payload.size() <= limit);
      break;
    case Kind::kPing:
    case Kind::kPong:
      Check(e.payload.size() <= mpim::net::kWsMaxControlPayload);
      break;
    case Kind::kClose: {
      Check(e.payload.size() <= mpim::net::kWsMaxControlPayload);
      WsClosePayload close = DecodeClosePayload(e.payload);
      if (close.error != 0) {
        Check(close.error == mpim::net::kWsCloseProtocolError ||
              close.error == mpim::net::kWsCloseInvalidPayload);
        Check(!close.error_reason.empty());
      } else if (e.payload.empty()) {
        Check(close.code == 0 && close.reason.empty());
      } else {
        Check(close.code >= 1000 && close.code < 5000);
        Check(close.reason.data() == e.payload.data() + 2);
      }
      break;
    }
    case Kind::kError:
      Check(e.close_code == mpim::net::kWsCloseProtocolError ||
            e.close_code == mpim::net::kWsCloseTooBig);
      Check(!e.reason.empty() && e.reason.size() <= mpim::net::kWsMaxControlPayload - 2);
      break;
    case Kind::kNeedMore:
      Check(e.payload.empty() && e.close_code == 0);
      break;
  }
}

// Feeds `stream` in pieces of the sizes `next_size` gives; returns the events.
template <typename NextSize>
std::vector<Ev> Run(std::string_view stream, uint64_t limit, NextSize next_size) {
  WsFrameParser parser(limit);
  std::vector<Ev> events;
  size_t pos = 0;
  uint64_t payload_bytes = 0;
  do {
    size_t n = std::min(next_size(), stream.size() - pos);
    std::unique_ptr<char[]> piece(new char[n]);
    if (n > 0) std::memcpy(piece.get(), stream.data() + pos, n);
    pos += n;
    parser.Feed(piece.get(), n);
    for (;;) {
      WsEvent e = parser.Next();
      CheckEvent(e, limit);
      if (e.kind == Kind::kNeedMore) break;
      payload_bytes += e.payload.size();
      Check(payload_bytes <= pos);  // every payload byte came from the input
      events.push_back({e.kind, std::string(e.payload), e.close_code, std::string(e.reason)});
      if (e.kind == Kind::kError) {
        Check(parser.failed() && parser.buffered() == 0);
        WsEvent again = parser.Next();
        Check(again.kind == Kind::kError && again.close_code == e.close_code);
        return events;
      }
    }
    // Kept: at most a message being gathered and one incomplete frame.
    Check(parser.buffered() <= limit + std::max<uint64_t>(limit, 125) + 14);
  } while (pos < stream.size());
  parser.Clear();
  Check(parser.buffered() == 0);
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t chunking = data[0];
  const uint64_t limit = data[1] <= 200 ? data[1] : (data[1] - 200) * uint64_t{1024};
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  std::vector<Ev> whole = Run(stream, limit, [&] { return stream.size(); });

  static constexpr size_t kMaxChunk[] = {1, 8, 256, 65536};
  const size_t max_chunk = kMaxChunk[chunking & 3];
  uint32_t state = 0x9E3779B9u ^ chunking;
  std::vector<Ev> chunked = Run(stream, limit, [&] {
    state ^= state << 13;  // xorshift32
    state ^= state >> 17;
    state ^= state << 5;
    return 1 + state % max_chunk;
  });
  Check(whole == chunked);
  return 0;
}
