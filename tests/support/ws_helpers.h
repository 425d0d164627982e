// WebSocket helpers for the end-to-end suites of the gateway
// (docs/protocol.md section 3): a JSON
// connection over mpim::client::WsClient that authenticates in any of the
// three ways, matches replies to their `rid`, buffers pushed events until a
// test asks for them, and waits for the close code. Every wait has a
// deadline; nothing here sleeps.
//
// Not thread-safe: one WsConn per thread.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/ws_client.h"
#include "core/status.h"
#include "support/api_client.h"
#include "support/cluster_up_process.h"
#include "support/server_process.h"

namespace mpim::testing {

using Ms = std::chrono::milliseconds;

// How long a test waits for something that should happen.
inline constexpr Ms kWsWait{5000};

enum class WsAuth {
  kHeader,  // Authorization: Bearer <token> on the upgrade request
  kQuery,   // /ws?token=<token>
  kFrame,   // {"op":"auth","rid":..,"token":..} as the first frame
};

const char* WsAuthName(WsAuth how);

class WsConn {
 public:
  explicit WsConn(uint16_t port, client::WsOptions options = {});
  ~WsConn();
  WsConn(const WsConn&) = delete;
  WsConn& operator=(const WsConn&) = delete;

  // The upgrade alone, no authentication: `target` such as "/ws" or
  // "/ws?token=...", with extra request headers.
  core::Status Connect(const std::string& target = "/ws",
                       const std::vector<std::pair<std::string, std::string>>& headers = {});

  // Connects and authenticates with `token`, then waits for the `hello`
  // (header, query) or the `auth` reply (frame), kept in hello(). Fails when
  // any step fails or the first frame is not what the protocol says.
  ::testing::AssertionResult Open(const std::string& token, WsAuth how = WsAuth::kHeader);
  // {user_id, session_id, conversations} from the hello or the auth reply.
  const boost::json::object& hello() const { return hello_; }
  // The `last_seq` hello() lists for `conv_id`; nullopt when not listed.
  std::optional<int64_t> HelloLastSeq(const std::string& conv_id) const;

  // Sends one frame without waiting. False (with last_error()) on failure.
  bool Send(const boost::json::object& frame);
  bool SendText(const std::string& text);

  // The next rid this connection would use (rids count up from 1).
  int64_t NextRid() { return ++rid_; }
  // Sends `frame` with a fresh `rid` (unless it has one) and returns the
  // reply carrying that rid; frames arriving meanwhile are buffered.
  // nullopt on timeout or close (see last_error()).
  std::optional<boost::json::object> Request(boost::json::object frame, Ms timeout = kWsWait);
  // The reply to `rid` (buffered or arriving within `timeout`).
  std::optional<boost::json::object> ReplyTo(int64_t rid, Ms timeout = kWsWait);

  // The first buffered or arriving frame whose `op` is `op` (in arrival
  // order); other frames stay buffered. nullopt on timeout or close.
  std::optional<boost::json::object> NextEvent(std::string_view op, Ms timeout = kWsWait);
  // The next msg event of `conv_id` (msg.conv_id), others stay buffered.
  std::optional<boost::json::object> NextMsg(std::string_view conv_id, Ms timeout = kWsWait);
  // The first buffered or arriving frame of any kind.
  std::optional<boost::json::object> NextFrame(Ms timeout = kWsWait);
  // Buffers everything that arrives during `window`, then returns (and
  // removes) the buffered frames whose op is `op`. For "nothing else came"
  // checks, which can only ever watch for a while.
  std::vector<boost::json::object> Drain(std::string_view op, Ms window);

  // Reads until the server closes, buffering the frames before the close.
  // The close code, or nullopt on timeout / a connection lost without a
  // close frame (see last_error()).
  std::optional<int> CloseCode(Ms timeout = kWsWait);
  const std::string& close_reason() const { return close_reason_; }
  bool closed() const { return closed_; }

  // `ack` for (conv_id, seq); no reply is expected.
  bool Ack(const std::string& conv_id, int64_t seq);

  std::deque<boost::json::object>& buffered() { return buffered_; }
  const std::string& last_error() const { return last_error_; }
  client::WsClient& client() { return *client_; }

 private:
  // Reads one frame into buffered_; false on timeout or close.
  bool ReadOne(client::WsClock::time_point deadline);
  template <typename Pred>
  std::optional<boost::json::object> Take(Pred pred, Ms timeout);

  uint16_t port_;
  std::unique_ptr<client::WsClient> client_;
  boost::json::object hello_;
  std::deque<boost::json::object> buffered_;
  int64_t rid_ = 0;
  bool closed_ = false;
  std::optional<int> close_code_;
  std::string close_reason_;
  std::string last_error_;
};

// Field access that never throws: "" / -1 / nullptr when absent or of
// another type.
std::string Str(const boost::json::object& o, std::string_view key);
int64_t Int(const boost::json::object& o, std::string_view key);
const boost::json::object* Obj(const boost::json::object& o, std::string_view key);
const boost::json::array* Arr(const boost::json::object& o, std::string_view key);

// "p:<min>:<max>" of two user ids (numeric order).
std::string PrivateConvId(const std::string& a, const std::string& b);

// A ping request answered with an integer ts: the connection still works.
::testing::AssertionResult Pings(WsConn& ws);

// A `send` frame (no rid) of a text message to a user.
boost::json::object TextSend(const std::string& to_user, const std::string& client_msg_id,
                             const std::string& text);

// Success when `reply` is {"op":"reply","ok":true,...}.
::testing::AssertionResult IsOkReply(const std::optional<boost::json::object>& reply);
// Success when `reply` is an ok:false reply with error.code == `code` and a
// string error.message.
::testing::AssertionResult IsErrorReply(const std::optional<boost::json::object>& reply,
                                        std::string_view code);
// Success when `v` is a Message object of protocol.md section 3:
// msg_id (decimal string), conv_id, seq (>= 1), from, to {"user"|"group"},
// type, body (object), ts, client_msg_id.
::testing::AssertionResult IsMessage(const boost::json::value& v);
// Success when the `send` reply carries {msg_id, conv_id, seq, ts}.
::testing::AssertionResult IsSendResult(const std::optional<boost::json::object>& reply);

// The `msg` field of a msg event (empty object if missing).
boost::json::object MsgOf(const boost::json::object& event);

// `sync` pages of `limit` from `after_seq` until has_more is false (at most
// `max_pages`): every message, in the order received. Records gtest
// failures for bad replies.
std::vector<boost::json::object> SyncAll(WsConn& conn, const std::string& conv_id,
                                         int64_t after_seq, int64_t limit, int max_pages = 100);

// Environment variables for a test server: FastAuthEnv() plus `extra`
// (later entries win).
std::vector<std::pair<std::string, std::string>> WsEnv(
    std::vector<std::pair<std::string, std::string>> extra);

// The target of the suites built on WsServerTest: ClusterTarget()
// (support/cluster_up_process.h).

// A fixture whose tests share one server started with `Config::Env()` (a
// static function returning environment pairs; see WsEnv) and get a fresh
// ApiClient. One server (or cluster, ClusterTarget()) per fixture type. On
// a cluster, REST goes to the first gateway and OpenWs takes the gateways in
// turn, so the users of a conversation sit on different gateways.
template <typename Config>
class WsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    start_error_.clear();
    if (ClusterTarget()) {
      cluster_ = std::make_unique<ClusterUpProcess>(
          ClusterUpProcess::Options{.args = ClusterTargetArgs(), .env = Config::Env()});
      if (!cluster_->Start()) {
        start_error_ = "mpim cluster up did not start: " + cluster_->error();
        return;
      }
      gateways_ = cluster_->client_ports();
      port_ = gateways_.empty() ? 0 : gateways_.front();
      if (port_ == 0) start_error_ = "mpim cluster up listed no gateway";
      return;
    }
    server_ = std::make_unique<ServerProcess>(ServerProcess::Options{.env = Config::Env()});
    if (!server_->Start()) start_error_ = "server did not start: " + server_->error();
    port_ = server_->port();
    gateways_ = {port_};
  }
  static void TearDownTestSuite() {
    server_.reset();
    cluster_.reset();
  }
  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    api_ = std::make_unique<ApiClient>(port());
  }

  uint16_t port() const { return port_; }
  // A series of the server's /metrics, summed over the gateways of a
  // cluster (an edge's /metrics is its own).
  double ServerMetric(std::string_view series) const {
    if (!cluster_) return api_->Metric(series);
    double sum = 0;
    for (uint16_t p : cluster_->gateway_ports()) sum += ApiClient(p).Metric(series);
    return sum;
  }
  Account NewAccount(std::string_view prefix) { return api_->NewAccount(UniqueName(prefix)); }
  // Two fresh accounts and their private conversation.
  struct Pair {
    Account a, b;
    std::string conv;
  };
  Pair NewPair(std::string_view prefix) {
    Pair p{NewAccount(std::string(prefix) + "_a"), NewAccount(std::string(prefix) + "_b"), ""};
    p.conv = PrivateConvId(p.a.id(), p.b.id());
    return p;
  }
  // One more login (session) of `account`.
  Session Login(const Account& account) { return api_->Login(account.username, account.password); }
  // An authenticated connection, or nullptr (with a recorded failure).
  std::unique_ptr<WsConn> OpenWs(const std::string& token, WsAuth how = WsAuth::kHeader,
                                 client::WsOptions options = {}) {
    auto conn = std::make_unique<WsConn>(NextGateway(), options);
    if (auto ok = conn->Open(token, how); !ok) {
      ADD_FAILURE() << "open ws (" << WsAuthName(how) << "): " << ok.message();
      return nullptr;
    }
    return conn;
  }

  // The client-facing ports in turn (one on `mpim serve`).
  uint16_t NextGateway() { return gateways_.at(next_gateway_++ % gateways_.size()); }

  static inline std::unique_ptr<ServerProcess> server_;  // null on a cluster
  static inline std::unique_ptr<ClusterUpProcess> cluster_;
  static inline uint16_t port_ = 0;
  static inline std::vector<uint16_t> gateways_;
  size_t next_gateway_ = 0;
  static inline std::string start_error_;
  std::unique_ptr<ApiClient> api_;
};

}  // namespace mpim::testing
