// End-to-end: twenty `kill -9` cycles of `mpim serve` under chat and group
// load (issue 8 "Crashes and restarts"; docs/protocol.md
// section 3: an `ok` reply means durable, `send` is idempotent "even after
// ... a server restart", hello + sync catch-up, dedup by (conv_id, seq)).
//
// Load clients, one thread each, send and receive over WebSocket: six user
// pairs (one side sends, the other receives) and two groups, one of 10
// members fanned out in the send path and one of 12 above the fan-out
// threshold (the durable job path), each with three senders; every member
// receives, one per group only connects after the last cycle. Each cycle
// waits until every client is connected and acknowledged sends are flowing,
// lets the load run a little longer, SIGKILLs the server and starts a new
// one on the same data dir (on a new port, which the clients follow).
// Clients reconnect with back-off (50 ms doubling to 1 s, jittered), catch
// up through hello + sync and resend their unacknowledged sends with the
// same client_msg_id. After the last cycle sending stops, every send is let
// finish, every conversation is read back over REST, every receiver is let
// catch up, and the AckChecker (tests/support/ack_checker.h) checks it all.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/ack_checker.h"
#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::AckChecker;
using testing::ApiClient;
using testing::Int;
using testing::Ms;
using testing::ReceiptSource;
using testing::ServerProcess;
using testing::Str;
using testing::WsConn;

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kCycles = 20;
constexpr int kPairs = 6;
constexpr int kFanoutThreshold = 10;  // groups above this use the fan-out job
struct GroupPlan {
  int members;  // the owner included
  int senders;  // the owner and the next ones
};
constexpr GroupPlan kGroups[] = {{10, 3}, {12, 3}};
constexpr size_t kWindow = 4;      // sends in flight per sender
constexpr Ms kSendEvery{10};       // per sender: at most about 100 sends/s
constexpr Ms kBackoffFirst{50};    // reconnect back-off: doubling from here...
constexpr Ms kBackoffMax{1000};    // ...to here, each delay jittered to [d/2, d]
constexpr int64_t kAckEvery = 16;  // cumulative delivery acks at least this often
constexpr int64_t kMinAcksPerCycle = 50;
constexpr Ms kWait{60000};  // deadline of every wait on the clients

// What the test's thread and the load clients share.
class World {
 public:
  // The server to connect to: its start number (from 1) and port.
  void Publish(int generation, uint16_t port) {
    server_.store((static_cast<uint64_t>(generation) << 16) | port);
  }
  std::pair<int, uint16_t> Server() const {
    uint64_t v = server_.load();
    return {static_cast<int>(v >> 16), static_cast<uint16_t>(v & 0xffff)};
  }

  void Stop() {
    {
      std::lock_guard lock(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
  }
  bool stopped() const { return stop_.load(); }
  // Sleeps for `d` unless Stop() comes first (back-off, pacing).
  void Pause(Ms d) {
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait_for(lock, d, [this] { return stop_.load(); });
  }

  // Clients call Changed() after their state moved; the test's thread waits
  // with WaitFor for a condition over that state.
  void Changed() {
    { std::lock_guard lock(progress_mu_); }
    progress_cv_.notify_all();
  }
  bool WaitFor(const std::function<bool()>& done, Ms deadline) {
    std::unique_lock lock(progress_mu_);
    return progress_cv_.wait_for(lock, deadline, done);
  }

  AckChecker checker;
  std::atomic<bool> sending{true};  // false: no new sends, retries go on
  std::atomic<bool> late_may_connect{false};
  std::atomic<int64_t> acks{0};

 private:
  std::atomic<uint64_t> server_{0};
  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;
};

// One user's device: a thread that keeps a WebSocket to the current server,
// sends to one peer or group (if told to) and receives in its
// conversations, recording into world.checker.
class LoadClient {
 public:
  LoadClient(World& world, Account account, std::string name)
      : world_(world), account_(std::move(account)), name_(std::move(name)) {}
  ~LoadClient() { Join(); }

  // Before Start(): whom to send to (a user or a group id) and where to
  // receive.
  void SendToUser(std::string user_id) { to_ = std::move(user_id); }
  void SendToGroup(std::string group_id) {
    to_ = std::move(group_id);
    to_group_ = true;
  }
  void ReceiveIn(const std::string& conv_id) {
    convs_[conv_id];
    cursors_[conv_id] = 0;
    world_.checker.ExpectReceiver(account_.id(), conv_id);
  }
  // Stays offline until world.late_may_connect.
  void MakeLate() { late_ = true; }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  // Read from the test's thread.
  bool late() const { return late_; }
  bool sends() const { return !to_.empty(); }
  int connected_generation() const { return connected_generation_.load(); }
  int64_t unacked() const { return unacked_.load(); }
  // Every conversation of this client received up to at least `last_seq`.
  bool CaughtUp(const std::map<std::string, int64_t>& last_seq) const {
    std::lock_guard lock(mu_);
    for (const auto& [conv_id, cursor] : cursors_) {
      auto it = last_seq.find(conv_id);
      if (it != last_seq.end() && cursor < it->second) return false;
    }
    return true;
  }
  std::string Describe() const {
    std::lock_guard lock(mu_);
    std::string s = name_ + " (user " + account_.id() + "): server " +
                    std::to_string(connected_generation_.load()) + ", unacked " +
                    std::to_string(unacked_.load()) + ", connections " +
                    std::to_string(connections_.load());
    for (const auto& [conv_id, cursor] : cursors_) {
      s += ", " + conv_id + " at " + std::to_string(cursor);
    }
    return s + (last_error_.empty() ? "" : ", last error: " + last_error_);
  }
  int64_t sent() const { return sent_.load(); }
  int64_t resent() const { return resent_.load(); }
  int64_t resends_found_stored() const { return resends_found_stored_.load(); }
  int connections() const { return connections_.load(); }

 private:
  struct Pending {
    std::string client_msg_id;
    bool in_flight = false;
    Clock::time_point retry_at{};
    int64_t resent_wall_ms = 0;  // when last sent again on a new connection
  };
  struct Conv {
    int64_t cursor = 0;       // every seq up to here was received (or is our own)
    std::set<int64_t> ahead;  // received seqs above cursor + 1
    int64_t acked = 0;        // last cumulative ack sent on this connection
  };

  void Run() {
    std::mt19937 rng(std::random_device{}());
    Ms backoff = kBackoffFirst;
    while (!world_.stopped()) {
      if (!ws_) {
        if (late_ && !world_.late_may_connect.load()) {
          world_.Pause(Ms(20));
          continue;
        }
        auto [generation, port] = world_.Server();
        if (Connect(port)) {
          connected_generation_ = generation;
          world_.Changed();
          backoff = kBackoffFirst;
        } else {
          Disconnect();
          std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
          world_.Pause(Ms(jitter(rng)));
          backoff = std::min(backoff * 2, kBackoffMax);
        }
        continue;
      }
      if (!SendDue()) {
        Disconnect();
        continue;
      }
      const Ms wait =
          sends() && world_.sending.load()
              ? std::clamp(std::chrono::duration_cast<Ms>(next_send_ - Clock::now()), Ms(1), Ms(20))
              : Ms(20);
      if (auto frame = ws_->NextFrame(wait)) {
        Handle(*frame);
      } else if (ws_->closed()) {
        Disconnect();
      } else {
        AckAll(0);  // idle: ack everything received
      }
    }
  }

  // Opens a connection, catches up through hello + sync and resends every
  // unacknowledged send. False when any of it fails.
  bool Connect(uint16_t port) {
    client::WsOptions options;
    options.handshake_timeout = Ms(2000);
    ws_ = std::make_unique<WsConn>(port, options);
    if (auto ok = ws_->Open(account_.token()); !ok) {
      SetError(ok.message());
      return false;
    }
    ++connections_;
    Trace("connection " + std::to_string(connections_.load()) + ": " +
          json::serialize(ws_->hello()));
    if (!CatchUp()) return false;
    for (auto& [index, p] : pending_) {
      ++resent_;
      p.resent_wall_ms =
          std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (!Transmit(index, p)) return false;
    }
    return true;
  }

  void Disconnect() {
    if (ws_ && !ws_->last_error().empty()) SetError(ws_->last_error());
    ws_.reset();
    rids_.clear();
    for (auto& [index, p] : pending_) p.in_flight = false;
    for (auto& [conv_id, c] : convs_) c.acked = 0;
    connected_generation_ = 0;
  }

  // Syncs every conversation the hello lists above what was received; the
  // messages pushed meanwhile stay buffered in ws_ and come after.
  bool CatchUp() {
    const json::array* listed = testing::Arr(ws_->hello(), "conversations");
    for (const auto& entry : *listed) {
      if (!entry.is_object()) continue;
      const std::string conv_id = Str(entry.as_object(), "conv_id");
      auto it = convs_.find(conv_id);
      if (it == convs_.end() || Int(entry.as_object(), "last_seq") <= it->second.cursor) continue;
      int64_t after = it->second.cursor;
      for (;;) {
        auto r = ws_->Request(json::object{
            {"op", "sync"}, {"conv_id", conv_id}, {"after_seq", after}, {"limit", 200}});
        if (!r) return false;  // the server went away
        const json::array* messages = testing::Arr(*r, "messages");
        const json::value* more = r->if_contains("has_more");
        if (!testing::IsOkReply(r) || !messages || !more || !more->is_bool()) {
          ADD_FAILURE() << name_ << ": sync " << conv_id << ": " << json::serialize(*r);
          return false;
        }
        Trace("sync " + conv_id + " after " + std::to_string(after) + ": " +
              std::to_string(messages->size()) + " messages");
        for (const auto& m : *messages) {
          if (!m.is_object()) continue;
          Receive(m.as_object(), ReceiptSource::kSync);
          after = std::max(after, Int(m.as_object(), "seq"));
        }
        if (!more->as_bool() || messages->empty()) break;
      }
    }
    return true;
  }

  // Sends what is due: errored sends to retry, then a new one when the
  // window and the pace allow. False when the connection failed.
  bool SendDue() {
    const auto now = Clock::now();
    for (auto& [index, p] : pending_) {
      if (!p.in_flight && now >= p.retry_at && !Transmit(index, p)) return false;
    }
    if (!sends() || !world_.sending.load() || pending_.size() >= kWindow || now < next_send_) {
      return true;
    }
    next_send_ = now + kSendEvery;
    const int64_t index = ++sent_;
    Pending& p = pending_[index];
    p.client_msg_id = name_ + "-" + std::to_string(index);
    ++unacked_;
    return Transmit(index, p);
  }

  bool Transmit(int64_t index, Pending& p) {
    const std::string text = "load " + p.client_msg_id;
    json::object frame = to_group_ ? testing::GroupTextSend(to_, p.client_msg_id, text)
                                   : testing::TextSend(to_, p.client_msg_id, text);
    const int64_t rid = ws_->NextRid();
    frame["rid"] = rid;
    rids_[rid] = index;
    p.in_flight = true;
    return ws_->Send(frame);
  }

  void Handle(const json::object& frame) {
    const std::string op = Str(frame, "op");
    if (op == "msg") {
      Receive(testing::MsgOf(frame), ReceiptSource::kLive);
    } else if (op == "reply") {
      HandleReply(frame);
    } else if (op == "kick") {
      ADD_FAILURE() << name_ << ": kicked: " << json::serialize(frame);
    }
  }

  void HandleReply(const json::object& reply) {
    auto rid = rids_.find(Int(reply, "rid"));
    if (rid == rids_.end()) {
      ADD_FAILURE() << name_ << ": a reply to no request: " << json::serialize(reply);
      return;
    }
    auto it = pending_.find(rid->second);
    rids_.erase(rid);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    if (!testing::IsOkReply(reply)) {
      const json::object* error = testing::Obj(reply, "error");
      const std::string code = error ? Str(*error, "code") : "";
      if (code != "unavailable" && code != "rate_limited") {
        ADD_FAILURE() << name_ << ": send " << p.client_msg_id << ": " << json::serialize(reply);
      }
      SetError("send " + p.client_msg_id + ": " + json::serialize(reply));
      p.in_flight = false;
      p.retry_at = Clock::now() + Ms(100);
      return;
    }
    EXPECT_TRUE(testing::IsSendResult(reply));
    // A resend answered with a message made before it was resent: the
    // server had stored the first attempt and kept it (idempotency at work).
    if (p.resent_wall_ms > 0 && Int(reply, "ts") < p.resent_wall_ms) ++resends_found_stored_;
    testing::AckedSend ack{account_.id(), p.client_msg_id, Str(reply, "conv_id"), Int(reply, "seq"),
                           Str(reply, "msg_id")};
    if (auto c = convs_.find(ack.conv_id); c != convs_.end()) {
      Note(ack.conv_id, c->second, ack.seq, "own reply");
    }
    world_.checker.Acked(std::move(ack));
    pending_.erase(it);
    --unacked_;
    ++world_.acks;
    world_.Changed();
  }

  void Receive(const json::object& m, ReceiptSource source) {
    const std::string conv_id = Str(m, "conv_id");
    auto it = convs_.find(conv_id);
    if (it == convs_.end()) return;
    world_.checker.Received(account_.id(),
                            testing::Receipt{testing::SeenFromJson(m), source, connections_});
    Note(conv_id, it->second, Int(m, "seq"), source == ReceiptSource::kLive ? "live" : "sync");
    if (source == ReceiptSource::kLive) AckAll(kAckEvery);
  }

  // Marks `seq` of `conv_id` received (`how`: "live", "sync" or "own
  // reply") and moves the cursor.
  void Note(const std::string& conv_id, Conv& c, int64_t seq, const char* how) {
    if (seq <= c.cursor) return;
    if (seq > c.cursor + 1) {
      if (c.ahead.empty()) {
        Trace(conv_id + ": at " + std::to_string(c.cursor) + ", " + how + " " +
              std::to_string(seq));
      }
      c.ahead.insert(seq);
      return;
    }
    c.cursor = seq;
    while (!c.ahead.empty() && *c.ahead.begin() == c.cursor + 1) {
      c.cursor = *c.ahead.begin();
      c.ahead.erase(c.ahead.begin());
    }
    {
      std::lock_guard lock(mu_);
      cursors_[conv_id] = c.cursor;
    }
    world_.Changed();
  }

  // Cumulative delivery acks where the cursor moved `at_least` past the
  // last one.
  void AckAll(int64_t at_least) {
    for (auto& [conv_id, c] : convs_) {
      if (c.cursor > c.acked + at_least && ws_->Ack(conv_id, c.cursor)) c.acked = c.cursor;
    }
  }

  // With MPIM_CRASH_TRACE set, what this client did, on stderr: each
  // connection's hello, sync pages, and where its cursor met a gap.
  void Trace(const std::string& what) const {
    static const bool on = std::getenv("MPIM_CRASH_TRACE") != nullptr;
    if (!on) return;
    const auto ms =
        std::chrono::duration_cast<Ms>(Clock::now().time_since_epoch()).count() % 1000000;
    std::fprintf(stderr, "trace %06lld %s (user %s) %s\n", static_cast<long long>(ms),
                 name_.c_str(), account_.id().c_str(), what.c_str());
  }
  void SetError(std::string e) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(e);
  }

  World& world_;
  const Account account_;
  const std::string name_;
  std::string to_;  // empty: sends nothing
  bool to_group_ = false;
  bool late_ = false;
  std::thread thread_;

  // The client thread's own.
  std::unique_ptr<WsConn> ws_;
  std::map<std::string, Conv> convs_;
  std::map<int64_t, Pending> pending_;  // by send index: resent in order
  std::map<int64_t, int64_t> rids_;     // rid on this connection -> send index
  Clock::time_point next_send_{};

  // Read by the test's thread.
  std::atomic<int> connected_generation_{0};
  std::atomic<int64_t> unacked_{0};
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> resent_{0};
  std::atomic<int64_t> resends_found_stored_{0};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::map<std::string, int64_t> cursors_;  // guarded by mu_
  std::string last_error_;                  // guarded by mu_
};

class CrashCyclesE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    world_.Stop();
    clients_.clear();  // joins
    if (HasFailure() && server_) {
      std::string logs = server_->Logs();
      std::printf("server log (last 4000 bytes):\n%s\n",
                  logs.substr(logs.size() > 4000 ? logs.size() - 4000 : 0).c_str());
    }
  }

  // Starts server number ++generation_ on the kept data dir and tells the
  // clients where it is.
  bool StartServer() {
    server_ = series_.Start();
    if (!server_) {
      ADD_FAILURE() << "server " << generation_ + 1 << " did not start: " << series_.error();
      return false;
    }
    world_.Publish(++generation_, server_->port());
    return true;
  }

  LoadClient& AddClient(const Account& a, const std::string& name) {
    clients_.push_back(std::make_unique<LoadClient>(world_, a, name));
    return *clients_.back();
  }

  // Every client for which `pred` is false, described.
  std::string Laggards(const std::function<bool(const LoadClient&)>& pred) const {
    std::string out;
    for (const auto& c : clients_) {
      if (!pred(*c)) out += "\n  " + c->Describe();
    }
    return out;
  }
  bool Connected(const LoadClient& c) const {
    return c.late() && !world_.late_may_connect.load() ? true
                                                       : c.connected_generation() == generation_;
  }
  bool AllConnected() const {
    return std::all_of(clients_.begin(), clients_.end(),
                       [this](const auto& c) { return Connected(*c); });
  }

  testing::ServerSeries series_{ServerProcess::Options{
      .env = testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                             {"MPIM_LIMITS_SEND_BURST", "100000"},
                             {"MPIM_GROUPS_FANOUT_THRESHOLD", std::to_string(kFanoutThreshold)},
                             {"MPIM_GROUPS_FANOUT_BATCH", "4"}})}};
  ServerProcess* server_ = nullptr;  // the current one
  int generation_ = 0;
  World world_;
  std::vector<std::unique_ptr<LoadClient>> clients_;
};

TEST_F(CrashCyclesE2eTest, TwentyKillNineCyclesUnderChatAndGroupLoadLoseAndDuplicateNothing) {
  const auto started = Clock::now();
  ASSERT_TRUE(StartServer());
  int accounts_needed = 2 * kPairs;
  for (const auto& g : kGroups) accounts_needed += g.members;
  std::vector<Account> accounts =
      testing::RegisterMany(server_->port(), "cc", accounts_needed, 4, true);
  ASSERT_FALSE(HasFailure()) << "accounts not created";

  // conv_id -> the token of a member, to read it back.
  std::map<std::string, std::string> reader;
  size_t next = 0;
  for (int i = 0; i < kPairs; ++i) {
    const Account& a = accounts[next++];
    const Account& b = accounts[next++];
    const std::string conv = testing::PrivateConvId(a.id(), b.id());
    AddClient(a, "p" + std::to_string(i) + "a").SendToUser(b.id());
    AddClient(b, "p" + std::to_string(i) + "b").ReceiveIn(conv);
    reader[conv] = b.token();
  }
  ApiClient api(server_->port());
  for (size_t gi = 0; gi < std::size(kGroups); ++gi) {
    const GroupPlan& plan = kGroups[gi];
    std::vector<Account> members(
        accounts.begin() + static_cast<std::ptrdiff_t>(next),
        accounts.begin() + static_cast<std::ptrdiff_t>(next) + plan.members);
    next += static_cast<size_t>(plan.members);
    std::vector<std::string> ids;
    for (size_t m = 1; m < members.size(); ++m) ids.push_back(members[m].id());
    testing::GroupRef group =
        testing::CreateGroup(api, members[0].token(), "crash " + std::to_string(gi), ids);
    ASSERT_FALSE(group.group_id.empty());
    reader[group.conv_id] = members[0].token();
    for (int m = 0; m < plan.members; ++m) {
      LoadClient& c = AddClient(members[static_cast<size_t>(m)],
                                "g" + std::to_string(gi) + "m" + std::to_string(m));
      c.ReceiveIn(group.conv_id);
      if (m < plan.senders) c.SendToGroup(group.group_id);
      if (m == plan.members - 1) c.MakeLate();
    }
  }
  for (auto& c : clients_) c->Start();

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> extra_load_ms(200, 900);
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    ASSERT_TRUE(world_.WaitFor([this] { return AllConnected(); }, kWait))
        << "cycle " << cycle << ": clients not connected to server " << generation_
        << Laggards([this](const LoadClient& c) { return Connected(c); });
    const int64_t acks = world_.acks.load();
    ASSERT_TRUE(
        world_.WaitFor([&] { return world_.acks.load() >= acks + kMinAcksPerCycle; }, kWait))
        << "cycle " << cycle << ": sends are not acknowledged"
        << Laggards([](const LoadClient& c) { return c.unacked() == 0; });
    // Load runs on for a moment (pacing, not a wait for an event), then the
    // server dies wherever it is.
    world_.Pause(Ms(extra_load_ms(rng)));
    server_->Signal(SIGKILL);
    ASSERT_EQ(server_->Wait(Ms(20000)), -SIGKILL) << "cycle " << cycle;
    ASSERT_TRUE(StartServer()) << "cycle " << cycle;
  }

  // No new sends; every send finishes; the late members come online.
  world_.sending = false;
  world_.late_may_connect = true;
  ASSERT_TRUE(world_.WaitFor(
      [this] {
        return AllConnected() && std::all_of(clients_.begin(), clients_.end(),
                                             [](const auto& c) { return c->unacked() == 0; });
      },
      kWait))
      << "sends not finished after the last restart"
      << Laggards([this](const LoadClient& c) { return Connected(c) && c.unacked() == 0; });

  // Read every conversation back, then let every receiver catch up to it.
  ApiClient final_api(server_->port());
  std::map<std::string, int64_t> last_seq;
  for (const auto& [conv_id, token] : reader) {
    std::vector<testing::SeenMessage> stored;
    for (const auto& m : testing::History(final_api, token, conv_id)) {
      stored.push_back(testing::SeenFromJson(m));
      last_seq[conv_id] = std::max(last_seq[conv_id], stored.back().seq);
    }
    EXPECT_FALSE(stored.empty()) << conv_id;
    world_.checker.Stored(conv_id, std::move(stored));
  }
  EXPECT_TRUE(world_.WaitFor(
      [&] {
        return std::all_of(clients_.begin(), clients_.end(),
                           [&](const auto& c) { return c->CaughtUp(last_seq); });
      },
      kWait))
      << "receivers did not catch up with the store"
      << Laggards([&](const LoadClient& c) { return c.CaughtUp(last_seq); });
  world_.Stop();
  int64_t sent = 0, resent = 0, found_stored = 0, connections = 0;
  for (auto& c : clients_) {
    c->Join();
    sent += c->sent();
    resent += c->resent();
    found_stored += c->resends_found_stored();
    connections += c->connections();
  }

  std::vector<std::string> problems = world_.checker.Check();
  std::string report;
  for (const auto& p : problems) report += "\n  " + p;
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << report;
  testing::AckCheckTotals t = world_.checker.Totals();
  EXPECT_EQ(t.acked_messages, sent) << "every send acknowledged";
  EXPECT_EQ(t.stored_unacked, 0);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::duration<double>>(Clock::now() - started).count();
  std::printf(
      "crash cycles: %d kill -9 cycles in %.1f s; %lld sends acknowledged (%lld ok replies; %lld "
      "resent after a reconnect, %lld of them already stored); %lld messages stored in %zu "
      "conversations; %lld receipts (%lld duplicates) for %lld receivers over %lld connections\n",
      kCycles, seconds, static_cast<long long>(t.acked_messages), static_cast<long long>(t.acks),
      static_cast<long long>(resent), static_cast<long long>(found_stored),
      static_cast<long long>(t.stored_messages), reader.size(), static_cast<long long>(t.receipts),
      static_cast<long long>(t.duplicate_receipts), static_cast<long long>(t.receivers),
      static_cast<long long>(connections));
  RecordProperty("acked_messages", std::to_string(t.acked_messages));
  RecordProperty("resent", std::to_string(resent));
  RecordProperty("resends_found_stored", std::to_string(found_stored));
}

}  // namespace
}  // namespace mpim
