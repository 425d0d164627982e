#include "net/ws_frame_parser.h"

#include <cstring>

#include "core/text.h"

namespace mpim::net {

namespace {

uint64_t ReadBigEndian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// XORs `n` bytes at `p` in place with the 4-byte `key` (section 5.3), eight
// bytes at a time (the compiler widens that further), then the tail.
void Unmask(unsigned char* p, uint64_t n, const unsigned char* key) {
  unsigned char key8[8];
  std::memcpy(key8, key, 4);
  std::memcpy(key8 + 4, key, 4);
  uint64_t word_key;
  std::memcpy(&word_key, key8, 8);
  uint64_t i = 0;
  for (; n - i >= 8; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    word ^= word_key;
    std::memcpy(p + i, &word, 8);
  }
  for (; i < n; ++i) p[i] ^= key8[i & 3];  // i is a multiple of 8 here: key8[0] lines up
}

// A close code a peer may send (RFC 6455 section 7.4 and the IANA registry).
bool IsValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace

void WsFrameParser::Feed(char* data, size_t size) {
  if (failed_) return;
  if (next_ != nullptr) Keep();  // fed again before kNeedMore: keep the rest
  kept_ = !in_.empty();
  if (kept_) {
    in_.append(data, size);
    next_ = in_.data();
    end_ = next_ + in_.size();
  } else {
    next_ = data;
    end_ = data + size;
  }
}

WsEvent WsFrameParser::Next() {
  if (release_message_) {
    release_message_ = false;
    std::string().swap(message_);
  }
  if (failed_) return FailedEvent();
  while (next_ != nullptr) {
    WsEvent event;
    size_t used = ParseFrame(reinterpret_cast<unsigned char*>(next_),
                             static_cast<size_t>(end_ - next_), event);
    if (failed_) return event;
    if (used == 0) break;
    next_ += used;
    if (event.kind != WsEvent::Kind::kNeedMore) return event;
  }
  Keep();
  return {};
}

void WsFrameParser::Clear() {
  next_ = end_ = nullptr;
  std::string().swap(in_);
  std::string().swap(message_);
  message_opcode_ = WsOpcode::kContinuation;
  failed_code_ = 0;
  kept_ = release_message_ = failed_ = false;
}

void WsFrameParser::Keep() {
  if (next_ == end_) {
    std::string().swap(in_);
  } else if (kept_) {
    in_.erase(0, static_cast<size_t>(next_ - in_.data()));
  } else {
    in_.assign(next_, static_cast<size_t>(end_ - next_));
  }
  next_ = end_ = nullptr;
  kept_ = false;
}

size_t WsFrameParser::ParseFrame(unsigned char* p, size_t avail, WsEvent& event) {
  if (avail < 2) return 0;
  const bool fin = (p[0] & 0x80) != 0;
  const auto opcode = static_cast<WsOpcode>(p[0] & 0x0F);
  const bool control = (p[0] & 0x08) != 0;
  uint64_t length = p[1] & 0x7F;
  if ((p[0] & 0x70) != 0) return Fail(kWsCloseProtocolError, "reserved bits set", event);
  if ((p[1] & 0x80) == 0) {
    return Fail(kWsCloseProtocolError, "client frames must be masked", event);
  }
  if (control) {
    if (opcode != WsOpcode::kClose && opcode != WsOpcode::kPing && opcode != WsOpcode::kPong) {
      return Fail(kWsCloseProtocolError, "unknown opcode", event);
    }
    if (!fin) return Fail(kWsCloseProtocolError, "fragmented control frame", event);
    if (length > kWsMaxControlPayload) {
      return Fail(kWsCloseProtocolError, "control frame too long", event);
    }
  } else if (opcode > WsOpcode::kBinary) {
    return Fail(kWsCloseProtocolError, "unknown opcode", event);
  }
  size_t header = 2;
  if (length == 126) {
    if (avail < 4) return 0;
    length = ReadBigEndian(p + 2, 2);
    header = 4;
  } else if (length == 127) {
    if (avail < 10) return 0;
    length = ReadBigEndian(p + 2, 8);
    header = 10;
    if (length >> 63) return Fail(kWsCloseProtocolError, "frame length out of range", event);
  }
  if (!control) {
    const bool gathering = message_opcode_ != WsOpcode::kContinuation;
    if (opcode == WsOpcode::kContinuation && !gathering) {
      return Fail(kWsCloseProtocolError, "continuation frame without a message", event);
    }
    if (opcode != WsOpcode::kContinuation && gathering) {
      return Fail(kWsCloseProtocolError, "new message inside a fragmented one", event);
    }
    // length < 2^63 and message_ is within the limit: no overflow.
    uint64_t total = length + (opcode == WsOpcode::kContinuation ? message_.size() : 0);
    if (total > max_message_bytes_) {
      return Fail(kWsCloseTooBig, "message above " + std::to_string(max_message_bytes_) + " bytes",
                  event);
    }
  }
  header += 4;  // the mask
  if (avail < header || avail - header < length) return 0;
  unsigned char* payload = p + header;
  Unmask(payload, length, payload - 4);
  std::string_view data(reinterpret_cast<const char*>(payload), length);

  switch (opcode) {
    case WsOpcode::kText:
    case WsOpcode::kBinary:
      if (fin) {
        event.kind = opcode == WsOpcode::kText ? WsEvent::Kind::kText : WsEvent::Kind::kBinary;
        event.payload = data;
      } else {
        message_opcode_ = opcode;
        message_.assign(data);
      }
      break;
    case WsOpcode::kContinuation:
      message_.append(data);
      if (fin) {
        event.kind =
            message_opcode_ == WsOpcode::kText ? WsEvent::Kind::kText : WsEvent::Kind::kBinary;
        event.payload = message_;
        message_opcode_ = WsOpcode::kContinuation;
        release_message_ = true;
      }
      break;
    case WsOpcode::kPing:
      event.kind = WsEvent::Kind::kPing;
      event.payload = data;
      break;
    case WsOpcode::kPong:
      event.kind = WsEvent::Kind::kPong;
      event.payload = data;
      break;
    case WsOpcode::kClose:
      event.kind = WsEvent::Kind::kClose;
      event.payload = data;
      break;
  }
  return header + length;
}

size_t WsFrameParser::Fail(uint16_t code, std::string_view reason, WsEvent& event) {
  Clear();
  failed_ = true;
  failed_code_ = code;
  message_.assign(reason);  // a failed parser gathers nothing: it holds the reason
  event = FailedEvent();
  return 0;
}

WsEvent WsFrameParser::FailedEvent() const {
  WsEvent event;
  event.kind = WsEvent::Kind::kError;
  event.close_code = failed_code_;
  event.reason = message_;
  return event;
}

WsClosePayload DecodeClosePayload(std::string_view payload) {
  WsClosePayload close;
  if (payload.empty()) return close;
  if (payload.size() == 1) {
    close.error = kWsCloseProtocolError;
    close.error_reason = "close frame with a one-byte payload";
    return close;
  }
  const uint16_t code = static_cast<uint16_t>(
      ReadBigEndian(reinterpret_cast<const unsigned char*>(payload.data()), 2));
  if (!IsValidCloseCode(code)) {
    close.error = kWsCloseProtocolError;
    close.error_reason = "invalid close code";
    return close;
  }
  if (!core::IsValidUtf8(payload.substr(2))) {
    close.error = kWsCloseInvalidPayload;
    close.error_reason = "close reason is not UTF-8";
    return close;
  }
  close.code = code;
  close.reason = payload.substr(2);
  return close;
}

}  // namespace mpim::net
