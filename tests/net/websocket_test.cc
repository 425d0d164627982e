// The WebSocket framing of src/net/websocket.cc against a raw TCP client
// that writes frames byte by byte as RFC 6455 lays them out: the handshake,
// masking, lengths, fragmentation, control frames, the close handshake,
// protocol errors and the coalescing of written frames.
#include "net/websocket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/router.h"

namespace mpim::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Echoes text; "close:<code>" closes with that code; "burst:<n>" writes n
// frames at once. Binary messages are answered with "binary".
class EchoHandler final : public WsHandler {
 public:
  explicit EchoHandler(std::shared_ptr<WsConnection> conn) : conn_(std::move(conn)) {}
  void OnOpen() override {}
  void OnText(std::string_view text) override {
    auto conn = conn_.lock();
    if (!conn) return;
    if (text.starts_with("close:")) {
      conn->Close(static_cast<uint16_t>(std::stoi(std::string(text.substr(6)))), "asked");
    } else if (text.starts_with("wait:")) {
      int n = std::stoi(std::string(text.substr(5)));
      for (int i = 0; i < n; ++i) conn->Write("waited " + std::to_string(i), /*may_wait=*/true);
    } else if (text.starts_with("burst:")) {
      int n = std::stoi(std::string(text.substr(6)));
      for (int i = 0; i < n; ++i) conn->Write("frame " + std::to_string(i));
    } else {
      conn->Write(text);
    }
  }
  void OnBinary() override {
    if (auto conn = conn_.lock()) conn->Write("binary");
  }
  void OnWritable() override {}
  void OnTick(int64_t) override {}
  void OnDrain(uint16_t code, std::string_view reason) override {
    if (auto conn = conn_.lock()) conn->Close(code, reason);
  }
  void OnClosed() override {}

 private:
  std::weak_ptr<WsConnection> conn_;
};

struct Frame {
  bool fin = false;
  int opcode = -1;
  bool masked = false;
  std::string payload;
  int CloseCode() const {
    if (opcode != 8 || payload.size() < 2) return 0;
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
  }
};

// A client frame: masked (unless told not to) with a fixed key.
std::string ClientFrame(int opcode, std::string_view payload, bool fin = true, bool mask = true,
                        uint8_t rsv = 0) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | rsv | opcode));
  const unsigned char mask_bit = mask ? 0x80 : 0;
  size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) out.append(key, 4);
  for (size_t i = 0; i < n; ++i) out.push_back(mask ? payload[i] ^ key[i % 4] : payload[i]);
  return out;
}

std::string ClosePayload(int code, std::string_view reason = "") {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}

class RawClient {
 public:
  explicit RawClient(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};  // no read blocks a test for long
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // Sends an upgrade request; returns the response head.
  std::string Handshake(const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==",
                        const std::string& version = "13") {
    std::string req =
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n";
    if (!key.empty()) req += "Sec-WebSocket-Key: " + key + "\r\n";
    req += "Sec-WebSocket-Version: " + version + "\r\n\r\n";
    Send(req);
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
      char c;
      boost::system::error_code ec;
      if (asio::read(socket_, asio::buffer(&c, 1), ec) != 1) break;
      head.push_back(c);
    }
    return head;
  }

  void Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

  std::optional<Frame> Read() {
    unsigned char h[2];
    if (!ReadExactly(h, 2)) return std::nullopt;
    Frame f;
    f.fin = (h[0] & 0x80) != 0;
    f.opcode = h[0] & 0x0F;
    f.masked = (h[1] & 0x80) != 0;
    uint64_t n = h[1] & 0x7F;
    if (n >= 126) {
      unsigned char ext[8];
      int bytes = n == 126 ? 2 : 8;
      if (!ReadExactly(ext, bytes)) return std::nullopt;
      n = 0;
      for (int i = 0; i < bytes; ++i) n = (n << 8) | ext[i];
    }
    f.payload.resize(n);
    if (n > 0 && !ReadExactly(f.payload.data(), n)) return std::nullopt;
    return f;
  }

  // True when the server ended the TCP connection (nothing more to read).
  bool AtEof() {
    char c;
    boost::system::error_code ec;
    size_t n = socket_.read_some(asio::buffer(&c, 1), ec);
    return n == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
  }

 private:
  bool ReadExactly(void* p, size_t n) {
    boost::system::error_code ec;
    return asio::read(socket_, asio::buffer(p, n), ec) == n;
  }

  asio::io_context io_;
  tcp::socket socket_;
};

class WebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.port = 0;
    options.websocket.max_message_bytes = 1000;
    options.websocket.coalesce_ms = 200;
    options.on_websocket = [](std::shared_ptr<WsConnection> conn) {
      conn->SetHandler(std::make_shared<EchoHandler>(conn));
    };
    server_ = std::make_unique<HttpServer>(pool_, router_, options);
    ASSERT_TRUE(server_->Start().ok());
    pool_.Start();
  }
  void TearDown() override {
    server_->StartDrain();
    server_->WaitDrained(std::chrono::seconds(5));
    pool_.Stop();
  }

  std::unique_ptr<RawClient> Open() {
    auto c = std::make_unique<RawClient>(server_->port());
    std::string head = c->Handshake();
    EXPECT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
    return c;
  }

  // Expects a close frame with `code`, answers it, and expects the end.
  void ExpectClose(RawClient& c, int code) {
    std::optional<Frame> f = c.Read();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 8);
    EXPECT_EQ(f->CloseCode(), code);
  }

  IoPool pool_{1};
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(WebSocketTest, HandshakeAnswersWithTheRfcAcceptKey) {
  RawClient c(server_->port());
  std::string head = c.Handshake();
  EXPECT_TRUE(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n")) << head;
  // RFC 6455 section 1.3's example.
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos)
      << head;
  EXPECT_NE(head.find("Upgrade: websocket\r\n"), std::string::npos);
}

TEST_F(WebSocketTest, HandshakeRefusesOtherVersionsAndBadKeys) {
  {
    RawClient c(server_->port());
    std::string head = c.Handshake("dGhlIHNhbXBsZSBub25jZQ==", "8");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 426")) << head;
    EXPECT_NE(head.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << head;
  }
  {
    RawClient c(server_->port());
    std::string head = c.Handshake("not-a-key");
    EXPECT_TRUE(head.starts_with("HTTP/1.1 400")) << head;
  }
}

TEST_F(WebSocketTest, EchoesMessagesOfEveryLengthEncodingUnmasked) {
  auto client = Open();
  RawClient& c = *client;
  for (size_t n : {0u, 5u, 125u, 126u, 500u, 1000u}) {
    std::string text(n, 'a' + static_cast<char>(n % 26));
    c.Send(ClientFrame(1, text));
    std::optional<Frame> f = c.Read();
    ASSERT_TRUE(f) << n;
    EXPECT_TRUE(f->fin);
    EXPECT_EQ(f->opcode, 1);
    EXPECT_FALSE(f->masked);
    EXPECT_EQ(f->payload, text);
  }
}

TEST_F(WebSocketTest, FramesSplitAcrossReadsAreReassembled) {
  auto client = Open();
  RawClient& c = *client;
  std::string bytes = ClientFrame(1, std::string(300, 'x')) + ClientFrame(1, "second");
  for (char b : bytes) c.Send(std::string_view(&b, 1));
  auto f1 = c.Read();
  auto f2 = c.Read();
  ASSERT_TRUE(f1 && f2);
  EXPECT_EQ(f1->payload, std::string(300, 'x'));
  EXPECT_EQ(f2->payload, "second");
}

TEST_F(WebSocketTest, FragmentedMessageWithAPingBetweenItsFragments) {
  auto client = Open();
  RawClient& c = *client;
  c.Send(ClientFrame(1, "hel", false) + ClientFrame(9, "are you there") +
         ClientFrame(0, "lo ", false) + ClientFrame(0, "world", true));
  auto pong = c.Read();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 10);
  EXPECT_EQ(pong->payload, "are you there");
  auto text = c.Read();
  ASSERT_TRUE(text);
  EXPECT_EQ(text->opcode, 1);
  EXPECT_EQ(text->payload, "hello world");
  // Binary messages reach the handler too.
  c.Send(ClientFrame(2, std::string("\x00\xff", 2)));
  auto bin = c.Read();
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->payload, "binary");
}

TEST_F(WebSocketTest, ClientCloseIsEchoedAndTheConnectionEnds) {
  auto client = Open();
  RawClient& c = *client;
  c.Send(ClientFrame(8, ClosePayload(4000, "bye")));
  ExpectClose(c, 4000);
  EXPECT_TRUE(c.AtEof());
}

TEST_F(WebSocketTest, ServerCloseWaitsForTheClientsAnswer) {
  auto client = Open();
  RawClient& c = *client;
  c.Send(ClientFrame(1, "one") + ClientFrame(1, "close:4008"));
  auto echo = c.Read();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->payload, "one");
  ExpectClose(c, 4008);
  // Data after the close is not answered; the answering close ends it.
  c.Send(ClientFrame(1, "ignored") + ClientFrame(8, ClosePayload(4008)));
  EXPECT_TRUE(c.AtEof());
}

struct BadFrame {
  const char* name;
  std::string bytes;
  int code;
};

TEST_F(WebSocketTest, ProtocolErrorsFailTheConnectionWithTheirCode) {
  std::vector<BadFrame> cases = {
      {"unmasked", ClientFrame(1, "hi", true, false), 1002},
      {"reserved bit", ClientFrame(1, "hi", true, true, 0x40), 1002},
      {"unknown data opcode", ClientFrame(3, "hi"), 1002},
      {"unknown control opcode", ClientFrame(11, ""), 1002},
      {"continuation first", ClientFrame(0, "hi"), 1002},
      {"text inside a fragmented message", ClientFrame(1, "a", false) + ClientFrame(1, "b"), 1002},
      {"fragmented ping", ClientFrame(9, "p", false), 1002},
      {"long ping", ClientFrame(9, std::string(126, 'p')), 1002},
      {"one-byte close", ClientFrame(8, "x"), 1002},
      {"reserved close code", ClientFrame(8, ClosePayload(1005)), 1002},
      {"close reason not UTF-8", ClientFrame(8, ClosePayload(1000, "\xff\xfe")), 1007},
      {"message above the limit", ClientFrame(1, std::string(1001, 'x')), 1009},
      {"fragments above the limit",
       ClientFrame(1, std::string(600, 'x'), false) + ClientFrame(0, std::string(600, 'x')), 1009},
  };
  for (const BadFrame& bad : cases) {
    SCOPED_TRACE(bad.name);
    auto client = Open();
    RawClient& c = *client;
    c.Send(bad.bytes);
    ExpectClose(c, bad.code);
    c.Send(ClientFrame(8, ClosePayload(bad.code)));
    EXPECT_TRUE(c.AtEof());
  }
}

TEST_F(WebSocketTest, OversizedFrameIsRefusedFromItsHeaderAlone) {
  auto client = Open();
  RawClient& c = *client;
  // A header announcing 1 GiB and no payload: the close comes at once.
  std::string header = {static_cast<char>(0x81),
                        static_cast<char>(0x80 | 127),
                        0,
                        0,
                        0,
                        0x40,
                        0,
                        0,
                        0,
                        0,
                        1,
                        2,
                        3,
                        4};
  c.Send(header);
  ExpectClose(c, 1009);
}

TEST_F(WebSocketTest, FramesWrittenTogetherShareFewWrites) {
  core::Counter& writes = core::DefaultRegistry()
                              .Counter("mpim_ws_socket_writes_total",
                                       "Write system calls on WebSocket sockets (frames are "
                                       "coalesced into them).")
                              .With({});
  auto client = Open();
  RawClient& c = *client;
  // One event writing 200 frames.
  double before = writes.Value();
  c.Send(ClientFrame(1, "burst:200"));
  for (int i = 0; i < 200; ++i) {
    auto f = c.Read();
    ASSERT_TRUE(f) << i;
    ASSERT_EQ(f->payload, "frame " + std::to_string(i));
  }
  EXPECT_LE(writes.Value() - before, 3);
  // 100 requests in one segment: their 100 replies are coalesced as well.
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += ClientFrame(1, "m" + std::to_string(i));
  before = writes.Value();
  c.Send(batch);
  for (int i = 0; i < 100; ++i) {
    auto f = c.Read();
    ASSERT_TRUE(f) << i;
    ASSERT_EQ(f->payload, "m" + std::to_string(i));
  }
  EXPECT_LE(writes.Value() - before, 10);
}

TEST_F(WebSocketTest, FramesThatMayWaitGoOutWithTheNextWriteOrOnTheTimer) {
  auto client = Open();
  RawClient& c = *client;
  // Waiting frames are taken along by the next frame that does not wait,
  // in order.
  c.Send(ClientFrame(1, "wait:3") + ClientFrame(1, "now"));
  for (std::string want : {"waited 0", "waited 1", "waited 2", "now"}) {
    auto f = c.Read();
    ASSERT_TRUE(f) << want;
    EXPECT_EQ(f->payload, want);
  }
  // Alone, they go out when the io thread's coalescing timer fires.
  c.Send(ClientFrame(1, "wait:2"));
  for (std::string want : {"waited 0", "waited 1"}) {
    auto f = c.Read();
    ASSERT_TRUE(f) << want;
    EXPECT_EQ(f->payload, want);
  }
}

}  // namespace
}  // namespace mpim::net
