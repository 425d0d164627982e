#include "gateway/envelope.h"

namespace mpim::gateway {
namespace {

constexpr uint8_t kVersion = 2;
constexpr uint8_t kVersionTraced = 3;  // + trace id (16 bytes), span id (8)

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

// Reads what PutVarint/PutString wrote; every read fails once the input did.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return Fail();
      auto b = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail();
  }
  uint8_t Byte() {
    if (in_.empty()) return static_cast<uint8_t>(Fail());
    auto b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  std::string String() {
    uint64_t n = Varint();
    if (!ok_ || n > in_.size()) {
      Fail();
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // A count of items of at least `min_bytes` each, bounded by what is left.
  size_t Count(size_t min_bytes) {
    uint64_t n = Varint();
    if (!ok_ || n > in_.size() / min_bytes) return static_cast<size_t>(Fail());
    return static_cast<size_t>(n);
  }
  bool done() const { return ok_ && in_.empty(); }
  bool ok() const { return ok_; }

 private:
  uint64_t Fail() {
    ok_ = false;
    in_ = {};
    return 0;
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

std::string Envelope::Encode() const {
  std::string out;
  size_t size = 16 + conns.size() * 14 + frame.size();
  for (const Msg& m : msgs) size += m.conv_id.size() + m.frame.size() + 24;
  const bool traced = trace.recording();
  out.reserve(size + (traced ? 24 : 0));
  out.push_back(static_cast<char>(traced ? kVersionTraced : kVersion));
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(priority));
  out.push_back(static_cast<char>(qos1 ? 1 : 0));
  if (traced) {
    out.append(reinterpret_cast<const char*>(trace.trace_id.data()), trace.trace_id.size());
    out.append(reinterpret_cast<const char*>(trace.span_id.data()), trace.span_id.size());
  }
  PutVarint(out, conns.size());
  for (const Target& t : conns) {
    PutVarint(out, t.conn);
    PutVarint(out, static_cast<uint64_t>(t.user));
  }
  if (kind == Kind::kMessages) {
    PutVarint(out, msgs.size());
    for (const Msg& m : msgs) {
      PutString(out, m.conv_id);
      PutVarint(out, static_cast<uint64_t>(m.seq));
      PutVarint(out, static_cast<uint64_t>(m.ts));
      PutString(out, m.frame);
    }
  } else {
    PutString(out, frame);
  }
  return out;
}

std::optional<Envelope> Envelope::Decode(std::string_view bytes) {
  Reader r(bytes);
  const uint8_t version = r.Byte();
  if (version != kVersion && version != kVersionTraced) return std::nullopt;
  Envelope e;
  uint8_t kind = r.Byte();
  uint8_t priority = r.Byte();
  uint8_t qos1 = r.Byte();
  if (!r.ok() || kind < 1 || kind > 3 || priority > 3 || qos1 > 1) return std::nullopt;
  if (version == kVersionTraced) {
    for (uint8_t& b : e.trace.trace_id) b = r.Byte();
    for (uint8_t& b : e.trace.span_id) b = r.Byte();
    e.trace.sampled = true;
    if (!r.ok() || !e.trace.valid()) return std::nullopt;
  }
  e.kind = static_cast<Kind>(kind);
  e.priority = static_cast<service::Priority>(priority);
  e.qos1 = qos1 == 1;
  size_t n = r.Count(2);
  e.conns.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) {
    Target t;
    t.conn = r.Varint();
    t.user = static_cast<int64_t>(r.Varint());
    e.conns.push_back(t);
  }
  if (e.kind == Kind::kMessages) {
    size_t m = r.Count(4);
    e.msgs.reserve(m);
    for (size_t i = 0; i < m && r.ok(); ++i) {
      Msg msg;
      msg.conv_id = r.String();
      msg.seq = static_cast<int64_t>(r.Varint());
      msg.ts = static_cast<int64_t>(r.Varint());
      msg.frame = r.String();
      e.msgs.push_back(std::move(msg));
    }
  } else {
    e.frame = r.String();
  }
  if (!r.done()) return std::nullopt;
  return e;
}

}  // namespace mpim::gateway
