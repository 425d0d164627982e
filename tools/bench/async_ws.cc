#include "bench/async_ws.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>

namespace mpim::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// The client side of RFC 6455, as much as talking to mpim needs: the
// upgrade, masked text frames out, text / close / ping frames in. Beast did
// this before; its per-message read (a composed operation, a copy into its
// 1,536-byte frame buffer and another into the message buffer, a UTF-8
// check) was a third of the generator's CPU when it received 350,000 frames
// a second, CPU the server then lacked (docs/benchmarks.md, "Session 6").
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMinRead = 4096;
constexpr uint64_t kMaxMessage = 64u << 20;
constexpr size_t kMaxWriteBatch = 256 * 1024;
constexpr size_t kMaxHandshake = 16 * 1024;

uint64_t BigEndian(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

struct AsyncWs::Impl : std::enable_shared_from_this<Impl> {
  using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

  Impl(asio::io_context& io, WsListener* l, uint32_t i)
      : socket(io.get_executor()), listener(l), id(i) {
    // Any key will do (the server unmasks whatever it is); not zero, so the
    // bytes on the wire differ from the payload as they would from a browser.
    const uint32_t key = 0x9e3779b9u * (i + 1) | 1u;
    std::memcpy(mask, &key, 4);
  }

  void Start(const WsTarget& target, const asio::ip::address& source, std::string_view token) {
    boost::system::error_code ec;
    socket.open(tcp::v4(), ec);
    if (!ec) {
      // Let connect() pick the port for the whole 4-tuple, not bind() for
      // the address alone: many more connections per source address.
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket.bind(tcp::endpoint(source, 0), ec);
    }
    if (!ec) socket.set_option(tcp::no_delay(target.no_delay), ec);
    if (ec) {
      return asio::post(socket.get_executor(), [self = shared_from_this(), ec] { self->Fail(ec); });
    }
    wbuf = "GET /ws HTTP/1.1\r\nHost: " + target.host +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Authorization: Bearer " +
           std::string(token) + "\r\n\r\n";
    socket.async_connect(target.server, [self = shared_from_this()](boost::system::error_code ec) {
      if (self->dead) return;
      if (ec) return self->Fail(ec);
      asio::async_write(self->socket, asio::buffer(self->wbuf),
                        [self](boost::system::error_code ec, size_t) {
                          if (self->dead) return;
                          if (ec) return self->Fail(ec);
                          std::string().swap(self->wbuf);
                          self->Read();
                        });
    });
  }

  // Reads what the kernel has (into the free room, at least kMinRead)
  // and handles it; the buffer is let go whenever everything was used, so
  // thousands of idle sessions hold none.
  void Read() {
    if (!buf || cap - end < kMinRead) Grow(end - begin + kReadChunk);
    socket.async_read_some(asio::buffer(buf.get() + end, cap - end),
                           [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                             if (self->dead) return;
                             if (ec) return self->Fail(ec);
                             self->end += n;
                             if (!(self->is_open ? self->Frames() : self->Upgrade())) return;
                             if (self->begin == self->end) {
                               self->buf.reset();
                               self->begin = self->end = self->cap = 0;
                             }
                             self->Read();
                           });
  }

  // Room for `need` bytes from `begin`: what is unread moves to the front.
  void Grow(size_t need) {
    if (!buf || need > cap) {
      const size_t size = std::max(need, kReadChunk);
      auto bigger = std::make_unique_for_overwrite<char[]>(size);  // not zeroed
      if (buf) std::memcpy(bigger.get(), buf.get() + begin, end - begin);
      buf = std::move(bigger);
      cap = size;
    } else if (begin > 0) {
      std::memmove(buf.get(), buf.get() + begin, end - begin);
    }
    end -= begin;
    begin = 0;
  }

  // The upgrade response; false when the connection ended.
  bool Upgrade() {
    std::string_view head(buf.get() + begin, end - begin);
    const size_t stop = head.find("\r\n\r\n");
    if (stop == std::string_view::npos) {
      if (head.size() < kMaxHandshake) return true;
      FailWith(0, "handshake: response too long");
      return false;
    }
    if (head.substr(0, 13) != "HTTP/1.1 101 ") {
      FailWith(0, "handshake: " + std::string(head.substr(0, head.find("\r\n"))));
      return false;
    }
    begin += stop + 4;
    is_open = true;
    listener->OnOpen(id);
    if (dead) return false;
    Write();
    return Frames();
  }

  // Handles every whole frame received; false when the connection ended.
  bool Frames() {
    while (end - begin >= 2) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf.get() + begin);
      const size_t avail = end - begin;
      const bool fin = (p[0] & 0x80) != 0;
      const int opcode = p[0] & 0x0f;
      if ((p[1] & 0x80) != 0) return FailWith(1002, "server frames must not be masked"), false;
      uint64_t length = p[1] & 0x7f;
      size_t header = 2;
      if (length == 126) {
        if (avail < 4) break;
        length = BigEndian(p + 2, 2);
        header = 4;
      } else if (length == 127) {
        if (avail < 10) break;
        length = BigEndian(p + 2, 8);
        header = 10;
      }
      if (length > kMaxMessage) return FailWith(1009, "frame too large"), false;
      if (avail < header + length) {
        if (header + length > cap) Grow(header + length);
        break;
      }
      std::string_view payload(buf.get() + begin + header, length);
      begin += header + length;
      if (!Frame(fin, opcode, payload)) return false;
    }
    return true;
  }

  bool Frame(bool fin, int opcode, std::string_view payload) {
    switch (opcode) {
      case 0x0:  // continuation
      case 0x1:  // text
      case 0x2:  // binary
        if (opcode != 0x0) {
          binary = opcode == 0x2;
          if (fin) {
            if (!binary) listener->OnText(id, payload);
            return !dead;
          }
          fragments.assign(payload);
          return true;
        }
        fragments.append(payload);
        if (fin && !binary) listener->OnText(id, fragments);
        if (fin) std::string().swap(fragments);
        return !dead;
      case 0x8: {  // close
        const int code = payload.size() >= 2
                             ? static_cast<int>(BigEndian(
                                   reinterpret_cast<const unsigned char*>(payload.data()), 2))
                             : 0;
        FailWith(code, std::string(payload.size() > 2 ? payload.substr(2) : ""));
        return false;
      }
      case 0x9:  // ping
        control.emplace_back(static_cast<unsigned char>(0x8a), std::string(payload));
        Write();
        return true;
      default:  // pong
        return true;
    }
  }

  // One masked frame of `payload` onto wbuf.
  void Encode(unsigned char first, std::string_view payload) {
    unsigned char head[14];
    size_t n = 0;
    head[n++] = first;
    if (payload.size() < 126) {
      head[n++] = static_cast<unsigned char>(0x80 | payload.size());
    } else if (payload.size() <= 0xffff) {
      head[n++] = 0x80 | 126;
      head[n++] = static_cast<unsigned char>(payload.size() >> 8);
      head[n++] = static_cast<unsigned char>(payload.size());
    } else {
      head[n++] = 0x80 | 127;
      for (int shift = 56; shift >= 0; shift -= 8) {
        head[n++] = static_cast<unsigned char>(static_cast<uint64_t>(payload.size()) >> shift);
      }
    }
    std::memcpy(head + n, mask, 4);
    n += 4;
    wbuf.append(reinterpret_cast<const char*>(head), n);
    const size_t at = wbuf.size();
    wbuf.append(payload);
    for (size_t i = 0; i < payload.size(); ++i) wbuf[at + i] ^= static_cast<char>(mask[i & 3]);
  }

  // Writes what is queued (control frames first), many frames per write.
  void Write() {
    if (writing || !is_open || (out.empty() && control.empty())) return;
    writing = true;
    for (auto& [first, payload] : control) Encode(first, payload);
    control.clear();
    while (!out.empty() && wbuf.size() < kMaxWriteBatch) {
      Encode(0x81, out.front());
      out.pop_front();
      ++in_write;
    }
    asio::async_write(socket, asio::buffer(wbuf),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing = false;
                        self->in_write = 0;
                        if (self->wbuf.capacity() > kMaxWriteBatch) {
                          std::string().swap(self->wbuf);
                        } else {
                          self->wbuf.clear();
                        }
                        if (self->dead) return;
                        if (ec) return self->Fail(ec);
                        self->Write();
                      });
  }

  void Fail(boost::system::error_code ec) { FailWith(0, ec.message()); }

  void FailWith(int close_code, const std::string& why) {
    if (dead) return;
    Close();
    listener->OnClosed(id, close_code, why);
  }

  void Close() {
    dead = true;
    is_open = false;
    out.clear();
    boost::system::error_code ignored;
    socket.close(ignored);
  }

  Socket socket;
  WsListener* listener;
  uint32_t id;
  unsigned char mask[4];
  std::unique_ptr<char[]> buf;  // received, [begin, end) not handled yet
  size_t begin = 0, end = 0, cap = 0;
  std::string fragments;  // a fragmented message so far
  bool binary = false;    // the message being assembled is binary (ignored)
  std::deque<std::string> out;
  std::deque<std::pair<unsigned char, std::string>> control;  // pongs
  std::string wbuf;                                           // the write in flight
  size_t in_write = 0;                                        // frames of `out` in it
  bool is_open = false;
  bool writing = false;
  bool dead = false;
};

AsyncWs::AsyncWs() = default;
AsyncWs::~AsyncWs() { Abort(); }
AsyncWs::AsyncWs(AsyncWs&&) noexcept = default;
AsyncWs& AsyncWs::operator=(AsyncWs&& other) noexcept {
  Abort();
  impl_ = std::move(other.impl_);
  return *this;
}

void AsyncWs::Connect(asio::io_context& io, WsListener* listener, uint32_t id,
                      const WsTarget& target, const asio::ip::address& source,
                      std::string_view token) {
  Abort();
  impl_ = std::make_shared<Impl>(io, listener, id);
  impl_->Start(target, source, token);
}

bool AsyncWs::Send(std::string text) {
  if (!impl_ || impl_->dead) return false;
  impl_->out.push_back(std::move(text));
  impl_->Write();
  return true;
}

void AsyncWs::Abort() {
  if (impl_) {
    impl_->Close();
    impl_.reset();
  }
}

bool AsyncWs::open() const { return impl_ && impl_->is_open; }
size_t AsyncWs::queued() const { return impl_ ? impl_->out.size() + impl_->in_write : 0; }

}  // namespace mpim::bench
