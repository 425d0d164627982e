// The edge's gRPC health check (src/edge/grpc_health.h) against a real gRPC
// server with gRPC's own health service (tests/rpc/echo_server.h): SERVING
// passes; NOT_SERVING, an unknown service, a stopped server and a silent
// port fail, each saying why. And the message it sends, byte for byte.
#include "edge/grpc_health.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <future>
#include <thread>

#include "rpc/echo_server.h"

namespace mpim::edge {
namespace {

struct Result {
  bool ok = false;
  std::string why;
};

class GrpcHealthTest : public ::testing::Test {
 protected:
  ~GrpcHealthTest() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  Result Check(uint16_t port, const std::string& service = "", int64_t timeout_ms = 2000) {
    auto done = std::make_shared<std::promise<Result>>();
    auto f = done->get_future();
    CheckGrpcHealth(io_, "127.0.0.1", port, service, timeout_ms, [done](bool ok, std::string why) {
      done->set_value({ok, std::move(why)});
    });
    return f.get();
  }
  static uint16_t PortOf(const testing::EchoServer& s) {
    return static_cast<uint16_t>(std::stoi(s.address().substr(s.address().rfind(':') + 1)));
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_{[this] { io_.run(); }};
};

TEST_F(GrpcHealthTest, ServingPassesAndEveryOtherAnswerFailsSayingWhy) {
  testing::EchoServer server("s");
  EXPECT_TRUE(Check(PortOf(server)).ok) << Check(PortOf(server)).why;

  server.SetServing(false);
  Result down = Check(PortOf(server));
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.why, "not SERVING");

  Result unknown = Check(PortOf(server), "no.such.Service");
  EXPECT_FALSE(unknown.ok);
  EXPECT_NE(unknown.why.find("grpc-status 5"), std::string::npos) << unknown.why;  // NOT_FOUND

  const uint16_t port = PortOf(server);
  server.Stop();
  Result stopped = Check(port);
  EXPECT_FALSE(stopped.ok);
  EXPECT_NE(stopped.why.find("connect"), std::string::npos) << stopped.why;
}

TEST_F(GrpcHealthTest, APortThatNeverAnswersFailsAtTheTimeout) {
  // Listening, never accepting (the backlog takes the connection).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  Result r = Check(ntohs(addr.sin_port), "", 200);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.why, "no answer within 200 ms");
  ::close(fd);
}

TEST(GrpcHealthMessageTest, TheRequestAndTheServingAnswerAreGrpcFramedProtobuf) {
  EXPECT_EQ(GrpcHealthRequest(""), std::string("\0\0\0\0\0", 5));
  EXPECT_EQ(GrpcHealthRequest("ab"), std::string("\0\0\0\0\x04\x0a\x02"
                                                 "ab",
                                                 9));
  EXPECT_EQ(GrpcHealthRequest(std::string(200, 'x')).substr(0, 8),
            std::string("\0\0\0\0\xcb\x0a\xc8\x01", 8));  // a two-byte varint length
  EXPECT_TRUE(GrpcHealthServing(std::string("\0\0\0\0\x02\x08\x01", 7)));
  EXPECT_FALSE(GrpcHealthServing(std::string("\0\0\0\0\x02\x08\x02", 7)));    // NOT_SERVING
  EXPECT_FALSE(GrpcHealthServing(std::string("\0\0\0\0\0", 5)));              // UNKNOWN (0)
  EXPECT_FALSE(GrpcHealthServing(std::string("\x01\0\0\0\x02\x08\x01", 7)));  // compressed
  EXPECT_FALSE(GrpcHealthServing(std::string("\0\0\0\0\x03\x08\x01", 7)));    // short
  EXPECT_FALSE(GrpcHealthServing(""));
}

}  // namespace
}  // namespace mpim::edge
