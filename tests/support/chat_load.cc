#include "support/chat_load.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "support/group_helpers.h"

namespace mpim::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kWindow = 4;      // sends in flight per sender
constexpr Ms kSendEvery{10};       // per sender: at most about 100 sends/s
constexpr Ms kBackoffFirst{50};    // reconnect back-off: doubling from here...
constexpr Ms kBackoffMax{1000};    // ...to here, each delay jittered to [d/2, d]
constexpr Ms kRetryAfter{100};     // a send answered unavailable goes again after this
constexpr int64_t kAckEvery = 16;  // cumulative delivery acks at least this often
constexpr int64_t kMisdeliveriesDescribed = 10;

// A refused reply's error code ("" when it has none).
std::string ErrorCodeOf(const json::object& reply) {
  const json::object* error = Obj(reply, "error");
  return error ? Str(*error, "code") : "";
}

}  // namespace

int ChatLoad::Set(std::vector<uint16_t> ports, bool nodes) {
  int generation;
  {
    std::lock_guard lock(servers_mu_);
    generation = ++servers_.generation;
    servers_.ports = std::move(ports);
    servers_.nodes = nodes;
    generation_ = generation;
  }
  Changed();
  return generation;
}

void ChatLoad::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
}

void ChatLoad::Pause(Ms d) {
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

void ChatLoad::Changed() {
  { std::lock_guard lock(progress_mu_); }
  progress_cv_.notify_all();
}

bool ChatLoad::WaitFor(const std::function<bool()>& done, Ms deadline) {
  std::unique_lock lock(progress_mu_);
  return progress_cv_.wait_for(lock, deadline, done);
}

void ChatLoadClient::ReceiveIn(const std::string& conv_id) {
  convs_[conv_id];
  cursors_[conv_id] = 0;
  load_.checker.ExpectReceiver(account_.id(), conv_id);
}

bool ChatLoadClient::CaughtUp(const std::map<std::string, int64_t>& last_seq) const {
  std::lock_guard lock(mu_);
  for (const auto& [conv_id, cursor] : cursors_) {
    auto it = last_seq.find(conv_id);
    if (it != last_seq.end() && cursor < it->second) return false;
  }
  return true;
}

std::string ChatLoadClient::Describe() const {
  std::lock_guard lock(mu_);
  std::string s = name_ + " (user " + account_.id() + "): server " +
                  std::to_string(connected_generation_.load()) + " on port " +
                  std::to_string(connected_port_.load()) + ", unacked " +
                  std::to_string(unacked_.load()) + ", connections " +
                  std::to_string(connections_.load());
  for (const auto& [conv_id, cursor] : cursors_) {
    s += ", " + conv_id + " at " + std::to_string(cursor);
  }
  return s + (last_error_.empty() ? "" : ", last error: " + last_error_);
}

void ChatLoadClient::Run() {
  std::mt19937 rng(std::random_device{}());
  Ms backoff = kBackoffFirst;
  while (!load_.stopped()) {
    if (ws_ && load_.generation() != connected_generation_.load()) {
      // Published anew: connect to it and catch up; under PublishNodes a
      // client already at home stays.
      ChatLoad::Servers s = load_.Published();
      if (s.nodes && !s.ports.empty() &&
          connected_port_.load() == s.ports[home_ % s.ports.size()]) {
        connected_generation_ = s.generation;
        load_.Changed();
      } else {
        Disconnect();
      }
    }
    if (!ws_) {
      if (late_ && !load_.late_may_connect.load()) {
        load_.Pause(Ms(20));
        continue;
      }
      ChatLoad::Servers s = load_.Published();
      if (s.ports.empty()) {
        load_.Pause(Ms(20));
        continue;
      }
      if (s.generation != tried_generation_) {
        tried_generation_ = s.generation;
        attempt_ = 0;
      }
      // One server: always its port. Nodes: home first, then the next ones.
      const size_t home = s.nodes ? home_ % s.ports.size() : 0;
      const uint16_t port = s.ports[(home + static_cast<size_t>(attempt_)) % s.ports.size()];
      if (Connect(port)) {
        if (port != s.ports[home]) ++failovers_;
        connected_port_ = port;
        connected_generation_ = s.generation;
        load_.Changed();
        attempt_ = 0;
        backoff = kBackoffFirst;
      } else {
        Disconnect();
        ++attempt_;
        std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
        load_.Pause(Ms(jitter(rng)));
        backoff = std::min(backoff * 2, kBackoffMax);
      }
      continue;
    }
    if (!SendDue()) {
      Disconnect();
      continue;
    }
    const Ms wait =
        sends() && load_.sending.load()
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
bool ChatLoadClient::Connect(uint16_t port) {
  client::WsOptions options;
  options.handshake_timeout = Ms(2000);
  ws_ = std::make_unique<WsConn>(port, options);
  if (auto ok = ws_->Open(account_.token()); !ok) {
    SetError(ok.message());
    return false;
  }
  ++connections_;
  Trace("connection " + std::to_string(connections_.load()) + ": " + json::serialize(ws_->hello()));
  if (!CatchUp()) return false;
  for (auto& [index, p] : pending_) {
    ++resent_;
    p.resent_wall_ms =
        std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (!Transmit(index, p)) return false;
  }
  return true;
}

void ChatLoadClient::Disconnect() {
  if (ws_ && !ws_->last_error().empty()) SetError(ws_->last_error());
  ws_.reset();
  rids_.clear();
  for (auto& [index, p] : pending_) p.in_flight = false;
  for (auto& [conv_id, c] : convs_) c.acked = 0;
  connected_generation_ = 0;
  connected_port_ = 0;
}

// Syncs every conversation the hello lists above what was received; the
// messages pushed meanwhile stay buffered in ws_ and come after.
bool ChatLoadClient::CatchUp() {
  const json::array* listed = Arr(ws_->hello(), "conversations");
  if (!listed) return false;
  for (const auto& entry : *listed) {
    if (!entry.is_object()) continue;
    const std::string conv_id = Str(entry.as_object(), "conv_id");
    auto it = convs_.find(conv_id);
    if (it == convs_.end() || Int(entry.as_object(), "last_seq") <= it->second.cursor) continue;
    int64_t after = it->second.cursor;
    for (;;) {
      auto r = ws_->Request(
          json::object{{"op", "sync"}, {"conv_id", conv_id}, {"after_seq", after}, {"limit", 200}});
      if (!r) return false;  // the server went away
      const json::array* messages = Arr(*r, "messages");
      const json::value* more = r->if_contains("has_more");
      if (!IsOkReply(r) || !messages || !more || !more->is_bool()) {
        // Refused while the store is away (a fault cycle): the server is
        // right to say so; catch up again after the reconnect's back-off.
        if (ErrorCodeOf(*r) != "unavailable") {
          ADD_FAILURE() << name_ << ": sync " << conv_id << ": " << json::serialize(*r);
        }
        SetError("sync " + conv_id + ": " + json::serialize(*r));
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
bool ChatLoadClient::SendDue() {
  const auto now = Clock::now();
  for (auto& [index, p] : pending_) {
    if (!p.in_flight && now >= p.retry_at && !Transmit(index, p)) return false;
  }
  if (!sends() || !load_.sending.load() || pending_.size() >= kWindow || now < next_send_) {
    return true;
  }
  next_send_ = now + kSendEvery;
  const int64_t index = ++sent_;
  Pending& p = pending_[index];
  p.client_msg_id = name_ + "-" + std::to_string(index);
  ++unacked_;
  return Transmit(index, p);
}

bool ChatLoadClient::Transmit(int64_t index, Pending& p) {
  const std::string text = "load " + p.client_msg_id;
  json::object frame =
      to_group_ ? GroupTextSend(to_, p.client_msg_id, text) : TextSend(to_, p.client_msg_id, text);
  const int64_t rid = ws_->NextRid();
  frame["rid"] = rid;
  rids_[rid] = index;
  p.in_flight = true;
  p.outage = load_.outage();
  return ws_->Send(frame);
}

void ChatLoadClient::Handle(const json::object& frame) {
  const std::string op = Str(frame, "op");
  if (op == "msg") {
    Receive(MsgOf(frame), ReceiptSource::kLive);
  } else if (op == "reply") {
    HandleReply(frame);
  } else if (op == "kick") {
    ADD_FAILURE() << name_ << ": kicked: " << json::serialize(frame);
  }
}

void ChatLoadClient::HandleReply(const json::object& reply) {
  auto rid = rids_.find(Int(reply, "rid"));
  if (rid == rids_.end()) {
    ADD_FAILURE() << name_ << ": a reply to no request: " << json::serialize(reply);
    return;
  }
  auto it = pending_.find(rid->second);
  rids_.erase(rid);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (!IsOkReply(reply)) {
    const std::string code = ErrorCodeOf(reply);
    if (code == "unavailable") {
      ++load_.unavailable;
      load_.Changed();
    } else if (code != "rate_limited") {
      ADD_FAILURE() << name_ << ": send " << p.client_msg_id << ": " << json::serialize(reply);
    }
    SetError("send " + p.client_msg_id + ": " + json::serialize(reply));
    p.in_flight = false;
    p.retry_at = Clock::now() + kRetryAfter;
    return;
  }
  EXPECT_TRUE(IsSendResult(reply));
  if (p.outage != 0 && p.outage == load_.outage()) {
    ADD_FAILURE() << name_ << ": send " << p.client_msg_id
                  << " transmitted while the store was unreachable was answered ok before it "
                     "came back: "
                  << json::serialize(reply);
  }
  // A resend answered with a message made before it was resent: the
  // server had stored the first attempt and kept it (idempotency at work).
  if (p.resent_wall_ms > 0 && Int(reply, "ts") < p.resent_wall_ms) ++resends_found_stored_;
  AckedSend ack{account_.id(), p.client_msg_id, Str(reply, "conv_id"), Int(reply, "seq"),
                Str(reply, "msg_id")};
  if (auto c = convs_.find(ack.conv_id); c != convs_.end()) {
    Note(ack.conv_id, c->second, ack.seq, "own reply");
  }
  load_.checker.Acked(std::move(ack));
  pending_.erase(it);
  --unacked_;
  ++acked_;
  ++load_.acks;
  load_.Changed();
}

void ChatLoadClient::Receive(const json::object& m, ReceiptSource source) {
  const std::string conv_id = Str(m, "conv_id");
  auto it = convs_.find(conv_id);
  if (it == convs_.end()) {
    // Its own sends pushed back to it are allowed (and not checked); a
    // message of anyone else's conversation reached the wrong session
    // (Finish() fails on the count; the first few are described here).
    if (conv_id != own_conv_ && ++load_.misdelivered <= kMisdeliveriesDescribed) {
      ADD_FAILURE() << name_ << " (user " << account_.id() << ", connection " << connections_.load()
                    << " on port " << connected_port_.load()
                    << "): a message of a conversation it is not in: " << json::serialize(m);
    }
    return;
  }
  load_.checker.Received(account_.id(), Receipt{SeenFromJson(m), source, connections_});
  Note(conv_id, it->second, Int(m, "seq"), source == ReceiptSource::kLive ? "live" : "sync");
  if (source == ReceiptSource::kLive) AckAll(kAckEvery);
}

// Marks `seq` of `conv_id` received (`how`: "live", "sync" or "own
// reply") and moves the cursor.
void ChatLoadClient::Note(const std::string& conv_id, Conv& c, int64_t seq, const char* how) {
  if (seq <= c.cursor) return;
  if (seq > c.cursor + 1) {
    if (c.ahead.empty()) {
      Trace(conv_id + ": at " + std::to_string(c.cursor) + ", " + how + " " + std::to_string(seq));
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
  load_.Changed();
}

// Cumulative delivery acks where the cursor moved `at_least` past the
// last one.
void ChatLoadClient::AckAll(int64_t at_least) {
  for (auto& [conv_id, c] : convs_) {
    if (c.cursor > c.acked + at_least && ws_->Ack(conv_id, c.cursor)) c.acked = c.cursor;
  }
}

// With MPIM_CRASH_TRACE set, what this client did, on stderr: each
// connection's hello, sync pages, and where its cursor met a gap.
void ChatLoadClient::Trace(const std::string& what) const {
  static const bool on = std::getenv("MPIM_CRASH_TRACE") != nullptr;
  if (!on) return;
  const auto ms = std::chrono::duration_cast<Ms>(Clock::now().time_since_epoch()).count() % 1000000;
  std::fprintf(stderr, "trace %06lld %s (user %s) %s\n", static_cast<long long>(ms), name_.c_str(),
               account_.id().c_str(), what.c_str());
}

void ChatLoadClient::SetError(std::string e) {
  std::lock_guard lock(mu_);
  last_error_ = std::move(e);
}

bool ChatLoadRun::Start(uint16_t port, const std::string& prefix, const ChatLoadPlan& plan) {
  load.Publish(port);
  return StartClients(port, prefix, plan);
}

bool ChatLoadRun::Start(const std::vector<uint16_t>& ports, const std::string& prefix,
                        const ChatLoadPlan& plan) {
  if (ports.empty()) {
    ADD_FAILURE() << "no nodes";
    return false;
  }
  load.PublishNodes(ports);
  return StartClients(ports.front(), prefix, plan);
}

bool ChatLoadRun::StartClients(uint16_t port, const std::string& prefix, const ChatLoadPlan& plan) {
  int accounts_needed = 2 * plan.pairs;
  for (const auto& g : plan.groups) accounts_needed += g.members;
  std::vector<Account> accounts = RegisterMany(port, prefix, accounts_needed, 4, true);
  if (static_cast<int>(accounts.size()) != accounts_needed) {
    ADD_FAILURE() << "accounts not created";
    return false;
  }
  size_t next = 0;
  for (int i = 0; i < plan.pairs; ++i) {
    const Account& a = accounts[next++];
    const Account& b = accounts[next++];
    const std::string conv = PrivateConvId(a.id(), b.id());
    AddClient(a, "p" + std::to_string(i) + "a").SendToUser(b.id());
    AddClient(b, "p" + std::to_string(i) + "b").ReceiveIn(conv);
    reader_[conv] = b.token();
  }
  ApiClient api(port);
  for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const ChatLoadPlan::Group& g = plan.groups[gi];
    std::vector<Account> members(accounts.begin() + static_cast<std::ptrdiff_t>(next),
                                 accounts.begin() + static_cast<std::ptrdiff_t>(next) + g.members);
    next += static_cast<size_t>(g.members);
    std::vector<std::string> ids;
    for (size_t m = 1; m < members.size(); ++m) ids.push_back(members[m].id());
    GroupRef group = CreateGroup(api, members[0].token(), prefix + " " + std::to_string(gi), ids);
    if (group.group_id.empty()) return false;
    reader_[group.conv_id] = members[0].token();
    for (int m = 0; m < g.members; ++m) {
      ChatLoadClient& c = AddClient(members[static_cast<size_t>(m)],
                                    "g" + std::to_string(gi) + "m" + std::to_string(m));
      c.ReceiveIn(group.conv_id);
      if (m < g.senders) c.SendToGroup(group.group_id);
      if (m == g.members - 1) c.MakeLate();
    }
  }
  for (auto& c : clients_) c->Start();
  return true;
}

::testing::AssertionResult ChatLoadRun::WaitConnected(Ms deadline) {
  const auto connected = [this](const ChatLoadClient& c) { return Connected(c); };
  if (WaitAll(connected, deadline)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "clients not connected to server " << load.Server().first << Laggards(connected);
}

::testing::AssertionResult ChatLoadRun::WaitAcks(int64_t n, Ms deadline) {
  const int64_t want = load.acks.load() + n;
  if (load.WaitFor([&] { return load.acks.load() >= want; }, deadline)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "sends are not acknowledged"
         << Laggards([](const ChatLoadClient& c) { return c.unacked() == 0; });
}

std::optional<Ms> ChatLoadRun::WaitEverySenderAcked(int64_t n, Ms deadline) {
  std::map<const ChatLoadClient*, int64_t> acked;
  for (const auto& c : clients_) acked[c.get()] = c->acked();
  const auto t0 = Clock::now();
  const auto again = [&](const ChatLoadClient& c) {
    return !c.sends() || c.acked() >= acked[&c] + n;
  };
  if (!WaitAll(again, deadline)) {
    ADD_FAILURE() << "senders not acknowledged again" << Laggards(again);
    return std::nullopt;
  }
  return std::chrono::duration_cast<Ms>(Clock::now() - t0);
}

ChatLoadSummary ChatLoadRun::Finish(uint16_t port, Ms deadline) {
  ChatLoadSummary summary;
  const auto since = [t0 = Clock::now()] {
    return std::chrono::duration_cast<Ms>(Clock::now() - t0);
  };
  // No new sends; every send finishes; the late members come online.
  load.sending = false;
  load.late_may_connect = true;
  const auto finished = [this](const ChatLoadClient& c) {
    return Connected(c) && c.unacked() == 0;
  };
  EXPECT_TRUE(WaitAll(finished, deadline)) << "sends not finished" << Laggards(finished);
  summary.sends_finished = since();

  // Read every conversation back, then let every receiver catch up to it.
  ApiClient api(port);
  std::map<std::string, int64_t> last_seq;
  for (const auto& [conv_id, token] : reader_) {
    std::vector<SeenMessage> stored;
    for (const auto& m : History(api, token, conv_id)) {
      stored.push_back(SeenFromJson(m));
      last_seq[conv_id] = std::max(last_seq[conv_id], stored.back().seq);
    }
    EXPECT_FALSE(stored.empty()) << conv_id;
    load.checker.Stored(conv_id, std::move(stored));
  }
  summary.read_back = since();
  const auto caught_up = [&](const ChatLoadClient& c) { return c.CaughtUp(last_seq); };
  EXPECT_TRUE(WaitAll(caught_up, deadline))
      << "receivers did not catch up with the store" << Laggards(caught_up);
  summary.caught_up = since();
  load.Stop();
  for (auto& c : clients_) {
    c->Join();
    summary.sent += c->sent();
    summary.resent += c->resent();
    summary.resends_found_stored += c->resends_found_stored();
    summary.connections += c->connections();
    summary.failovers += c->failovers();
  }

  std::vector<std::string> problems = load.checker.Check();
  std::string report;
  for (const auto& p : problems) report += "\n  " + p;
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems:" << report;
  summary.totals = load.checker.Totals();
  summary.conversations = reader_.size();
  EXPECT_EQ(summary.totals.acked_messages, summary.sent) << "every send acknowledged";
  EXPECT_EQ(summary.totals.stored_unacked, 0);
  EXPECT_EQ(load.misdelivered.load(), 0) << "messages pushed to a client not in their conversation";
  return summary;
}

std::string ChatLoadRun::Laggards(const std::function<bool(const ChatLoadClient&)>& pred) const {
  std::string out;
  for (const auto& c : clients_) {
    if (!pred(*c)) out += "\n  " + c->Describe();
  }
  return out;
}

void ChatLoadRun::StopClients() {
  load.Stop();
  clients_.clear();  // joins
}

ChatLoadClient& ChatLoadRun::AddClient(const Account& a, const std::string& name) {
  clients_.push_back(std::make_unique<ChatLoadClient>(load, a, name, clients_.size()));
  return *clients_.back();
}

bool ChatLoadRun::WaitAll(const std::function<bool(const ChatLoadClient&)>& pred, Ms deadline) {
  return load.WaitFor(
      [&] {
        return std::all_of(clients_.begin(), clients_.end(),
                           [&](const auto& c) { return pred(*c); });
      },
      deadline);
}

bool ChatLoadRun::Connected(const ChatLoadClient& c) const {
  if (c.late() && !load.late_may_connect.load()) return true;
  return c.connected_generation() == load.Server().first;
}

}  // namespace mpim::testing
