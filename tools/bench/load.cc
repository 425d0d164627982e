#include "bench/load.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace mpim::bench {

namespace asio = boost::asio;
namespace json = boost::json;

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

namespace {

// Send rids carry the scheduled time, above this bit; control rids are small.
constexpr uint64_t kSendRid = uint64_t{1} << 62;
// The send schedule's wake-up grid (SendTick): a message goes out up to
// this late, which its latency includes.
constexpr uint64_t kSendTickNs = 250'000;

std::chrono::steady_clock::time_point TimePoint(uint64_t ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

// The integer after `key` (which ends with ':' or ':"'), or -1.
int64_t ScanInt(std::string_view text, std::string_view key) {
  // memmem, not string_view::find: find compares at every '"' of the frame
  // (a tenth of the generator's time in group-5k went to memcmp).
  const void* at = ::memmem(text.data(), text.size(), key.data(), key.size());
  if (at == nullptr) return -1;
  const char* p = static_cast<const char*>(at) + key.size();
  int64_t v = -1;
  auto [end, ec] = std::from_chars(p, text.data() + text.size(), v);
  if (ec != std::errc() || end == p) return -1;
  return v;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads complete lines from `fd` into `lines`; false on EOF or error.
bool ReadLines(int fd, std::string& buffer, std::vector<std::string>& lines) {
  char chunk[65536];
  ssize_t n = ::read(fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  buffer.append(chunk, static_cast<size_t>(n));
  size_t start = 0;
  for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.emplace_back(buffer, start, nl - start);
  }
  buffer.erase(0, start);
  return true;
}

// ---- the worker: one Driver per io thread

struct DriverStats {
  std::atomic<uint64_t> ready{0}, connect_failed{0}, gave_up{0}, closed{0}, sent{0},
      send_dropped{0}, replies_ok{0}, replies_err{0}, delivered{0}, delivered_window{0},
      sync_messages{0}, last_ready_ns{0};
  std::mutex mu;  // guards what follows
  Histogram delivery_interval;
  Histograms totals;

  Counters Snapshot() const {
    Counters c;
    c.ready = ready;
    c.connect_failed = connect_failed;
    c.gave_up = gave_up;
    c.closed = closed;
    c.sent = sent;
    c.send_dropped = send_dropped;
    c.replies_ok = replies_ok;
    c.replies_err = replies_err;
    c.delivered = delivered;
    c.delivered_window = delivered_window;
    c.sync_messages = sync_messages;
    c.last_ready_ns = last_ready_ns;
    return c;
  }
};

class Driver : public WsListener {
 public:
  Driver(const LoadParams& params, std::vector<const SessionSpec*> specs,
         std::vector<int> global_index, int connect_limit)
      : params_(params),
        connect_limit_(std::max(1, connect_limit)),
        send_timer_(io_),
        ack_timer_(io_),
        storm_timer_(io_) {
    sessions_.resize(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      sessions_[i].spec = specs[i];
      sessions_[i].source_index = global_index[i] % std::max(1, params.source_addrs);
      if (specs[i]->sender) senders_.push_back(static_cast<uint32_t>(i));
    }
  }

  asio::io_context& io() { return io_; }
  DriverStats& stats() { return stats_; }

  void StartConnect() {
    for (uint32_t i = 0; i < sessions_.size(); ++i) pending_.push_back(i);
    LaunchMore();
    if (params_.ack_interval_ms > 0 && !params_.ack_each && params_.scenario != Scenario::kStorm) {
      ArmAckTimer();
    }
  }

  void StartLoad(uint64_t t0, uint64_t t_end, uint64_t measure_from) {
    if (senders_.empty() || params_.rate <= 0 || params_.senders_total <= 0) return;
    const double thread_rate =
        params_.rate * static_cast<double>(senders_.size()) / params_.senders_total;
    t0_ = t0;
    t_end_ = t_end;
    measure_from_ = measure_from;
    period_ns_ = 1e9 / thread_rate;
    k_ = 0;
    SendTick();
  }

  // Storm preparation: every sender sends `storm_backlog` messages now.
  void StartPrep() {
    for (int round = 0; round < params_.storm_backlog; ++round) {
      for (uint32_t i : senders_) SendOne(sessions_[i], NowNs());
    }
  }

  // At t0 every session drops its connection and reconnects, syncs, acks.
  void StartStorm(uint64_t t0) {
    storm_timer_.expires_at(TimePoint(t0));
    storm_timer_.async_wait([this, t0](boost::system::error_code ec) {
      if (ec) return;
      storming_ = true;
      storm_t0_ = t0;
      {
        std::lock_guard lock(stats_.mu);
        stats_.totals.ready.Reset();  // from here on: reconnected and synced
      }
      pending_.clear();
      inflight_ = 0;
      for (auto& s : sessions_) {
        s.ws.Abort();
        s.state = State::kOff;
        s.attempts = 0;
      }
      StartConnect();
    });
  }

  void StopAll() {
    stopped_ = true;
    send_timer_.cancel();
    ack_timer_.cancel();
    storm_timer_.cancel();
    for (auto& s : sessions_) s.ws.Abort();
  }

  // ---- WsListener

  void OnOpen(uint32_t id) override { sessions_[id].state = State::kOpen; }

  void OnText(uint32_t id, std::string_view text) override {
    Session& s = sessions_[id];
    if (text.starts_with("{\"op\":\"msg\"")) return OnMsg(s, text);
    if (text.starts_with("{\"op\":\"reply\"")) return OnReply(s, text);
    if (text.starts_with("{\"op\":\"hello\"")) return OnHello(s, text);
  }

  void OnClosed(uint32_t id, int close_code, std::string_view error) override {
    Session& s = sessions_[id];
    const bool was_ready = s.state == State::kReady;
    s.state = State::kOff;
    Note("session closed (code " + std::to_string(close_code) + "): " + std::string(error));
    if (was_ready) {
      ++stats_.closed;
      return;
    }
    ++stats_.connect_failed;
    --inflight_;
    if (++s.attempts >= kConnectAttempts) {
      ++stats_.gave_up;
    } else {
      Retry(id);
    }
    LaunchMore();
  }

 private:
  enum class State : uint8_t { kOff, kConnecting, kOpen, kSyncing, kReady };

  struct Session {
    const SessionSpec* spec = nullptr;
    AsyncWs ws;
    uint64_t connect_start = 0;  // first attempt (storm: the drop)
    int64_t last_seq = 0;        // highest seq seen in the session's conversation
    int64_t acked = 0;           // highest seq acked
    int64_t sync_rid = 0;
    std::string conv_id;  // learned from the first msg or hello
    int source_index = 0;
    int attempts = 0;  // failed connects since the last success
    State state = State::kOff;
    bool ack_queued = false;
  };

  // Back to the connect queue after 100-300 ms.
  void Retry(uint32_t id) {
    auto timer = std::make_shared<asio::steady_timer>(
        io_, std::chrono::milliseconds(100 + static_cast<int>(rng_() % 200)));
    timer->async_wait([this, timer, id](boost::system::error_code ec) {
      if (ec || stopped_) return;
      pending_.push_back(id);
      LaunchMore();
    });
  }

  void LaunchMore() {
    while (inflight_ < connect_limit_ && !pending_.empty()) {
      uint32_t i = pending_.front();
      pending_.pop_front();
      Session& s = sessions_[i];
      s.state = State::kConnecting;
      if (s.attempts == 0) s.connect_start = storming_ ? storm_t0_ : NowNs();
      auto source = asio::ip::address_v4(0x7f000002u + static_cast<uint32_t>(s.source_index));
      ++inflight_;
      const size_t node = static_cast<size_t>(s.spec->node);
      s.ws.Connect(io_, this, i,
                   node < params_.targets.size() ? params_.targets[node] : params_.target, source,
                   s.spec->token);
    }
  }

  void Ready(Session& s) {
    s.state = State::kReady;
    s.attempts = 0;
    const uint64_t now = NowNs();
    {
      std::lock_guard lock(stats_.mu);
      stats_.totals.ready.Record(now - s.connect_start);
    }
    stats_.last_ready_ns = now;
    ++stats_.ready;
    --inflight_;
    LaunchMore();
  }

  void OnHello(Session& s, std::string_view text) {
    if (!storming_) return Ready(s);
    // After the storm: sync every listed conversation past what we acked.
    boost::system::error_code ec;
    json::value hello = json::parse(json::string_view(text.data(), text.size()), ec);
    const json::array* convs = nullptr;
    if (!ec && hello.is_object()) {
      if (auto* c = hello.get_object().if_contains("conversations"); c && c->is_array()) {
        convs = &c->get_array();
      }
    }
    if (!convs) {
      Note("bad hello: " + std::string(text.substr(0, 200)));
      return Ready(s);
    }
    for (const auto& c : *convs) {
      const auto* obj = c.if_object();
      if (!obj) continue;
      const auto* conv = obj->if_contains("conv_id");
      const auto* last = obj->if_contains("last_seq");
      if (!conv || !conv->is_string() || !last || !last->is_int64()) continue;
      if (last->get_int64() <= s.acked) continue;
      s.conv_id = std::string(conv->get_string());
      s.state = State::kSyncing;
      return Sync(s, s.acked);
    }
    Ready(s);
  }

  void Sync(Session& s, int64_t after) {
    s.sync_rid = ++control_rid_;
    s.ws.Send("{\"op\":\"sync\",\"rid\":" + std::to_string(s.sync_rid) + ",\"conv_id\":\"" +
              s.conv_id + "\",\"after_seq\":" + std::to_string(after) + ",\"limit\":200}");
  }

  void OnSyncReply(Session& s, std::string_view text) {
    boost::system::error_code ec;
    json::value reply = json::parse(json::string_view(text.data(), text.size()), ec);
    const json::object* obj = ec ? nullptr : reply.if_object();
    const json::value* ok = obj ? obj->if_contains("ok") : nullptr;
    const json::value* messages = obj ? obj->if_contains("messages") : nullptr;
    if (!ok || !ok->is_bool() || !ok->get_bool() || !messages || !messages->is_array()) {
      Note("sync failed: " + std::string(text.substr(0, 200)));
      return Ready(s);
    }
    int64_t highest = s.acked;
    for (const auto& m : messages->get_array()) {
      if (const auto* mo = m.if_object()) {
        if (const auto* seq = mo->if_contains("seq"); seq && seq->is_int64()) {
          highest = std::max(highest, seq->get_int64());
        }
      }
    }
    stats_.sync_messages += messages->get_array().size();
    const json::value* more = obj->if_contains("has_more");
    if (more && more->is_bool() && more->get_bool() && highest > s.acked) {
      s.acked = highest;  // the next page starts after it; acked below
      s.last_seq = std::max(s.last_seq, highest);
      return Sync(s, highest);
    }
    s.last_seq = std::max(s.last_seq, highest);
    s.acked = s.last_seq;
    s.ws.Send("{\"op\":\"ack\",\"conv_id\":\"" + s.conv_id +
              "\",\"seq\":" + std::to_string(s.acked) + "}");
    Ready(s);
  }

  void OnMsg(Session& s, std::string_view text) {
    const int64_t seq = ScanInt(text, "\"seq\":");
    if (seq > s.last_seq) {
      if (s.conv_id.empty()) {
        size_t at = text.find("\"conv_id\":\"");
        if (at != std::string_view::npos) {
          at += 11;
          size_t end = text.find('"', at);
          if (end != std::string_view::npos) s.conv_id = std::string(text.substr(at, end - at));
        }
      }
      s.last_seq = seq;
      if (params_.ack_each && params_.scenario != Scenario::kStorm && !s.conv_id.empty() &&
          s.state == State::kReady) {
        s.acked = seq;
        s.ws.Send("{\"op\":\"ack\",\"conv_id\":\"" + s.conv_id +
                  "\",\"seq\":" + std::to_string(seq) + "}");
      } else if (!s.ack_queued && params_.ack_interval_ms > 0 &&
                 params_.scenario != Scenario::kStorm) {
        s.ack_queued = true;
        ack_list_.push_back({static_cast<uint32_t>(&s - sessions_.data()),
                             NowNs() + static_cast<uint64_t>(params_.ack_interval_ms) * 1'000'000});
      }
    }
    const int64_t sched = ScanInt(text, "\"bench_t\":");
    if (sched < 0) return;
    const int64_t from = ScanInt(text, "\"from\":\"");
    if (from == static_cast<int64_t>(s.spec->user_id)) return;
    const uint64_t now = NowNs();
    const uint64_t latency = now > static_cast<uint64_t>(sched) ? now - sched : 0;
    ++stats_.delivered;
    const bool window = static_cast<uint64_t>(sched) >= measure_from_;
    if (window) ++stats_.delivered_window;
    std::lock_guard lock(stats_.mu);
    stats_.delivery_interval.Record(latency);
    if (window) stats_.totals.delivery.Record(latency);
  }

  void OnReply(Session& s, std::string_view text) {
    const int64_t rid = ScanInt(text, "\"rid\":");
    if (rid < 0) return Note("reply without rid: " + std::string(text.substr(0, 200)));
    if (static_cast<uint64_t>(rid) >= kSendRid) {
      const uint64_t sched = static_cast<uint64_t>(rid) - kSendRid;
      if (text.find("\"ok\":true") == std::string_view::npos) {
        ++stats_.replies_err;
        return Note("send failed: " + std::string(text.substr(0, 200)));
      }
      ++stats_.replies_ok;
      if (sched >= measure_from_) {
        const uint64_t now = NowNs();
        std::lock_guard lock(stats_.mu);
        stats_.totals.persist.Record(now > sched ? now - sched : 0);
      }
      return;
    }
    if (rid == s.sync_rid && s.state == State::kSyncing) return OnSyncReply(s, text);
  }

  void SendTick() {
    const uint64_t now = NowNs();
    for (;;) {
      const uint64_t sched = t0_ + static_cast<uint64_t>(static_cast<double>(k_) * period_ns_);
      if (sched >= t_end_) return;
      if (sched > now) {
        // Wakes on a grid of kSendTickNs from t0 and sends what is due: a
        // timer per message (one timerfd re-arm and wake-up each) cost the
        // generator ~0.25 cores at 45,000/s. Latency still counts from
        // `sched`, so the wait is measured, not hidden.
        const uint64_t ticks = (sched - t0_ + kSendTickNs - 1) / kSendTickNs;
        send_timer_.expires_at(TimePoint(t0_ + ticks * kSendTickNs));
        send_timer_.async_wait([this](boost::system::error_code ec) {
          if (!ec) SendTick();
        });
        return;
      }
      SendOne(sessions_[senders_[k_ % senders_.size()]], sched);
      ++k_;
    }
  }

  // One `custom` message whose body carries its scheduled time and pads to
  // body_bytes; its rid carries the scheduled time too.
  void SendOne(Session& s, uint64_t sched) {
    if (sched <= last_sched_) sched = last_sched_ + 1;  // rids unique per driver
    last_sched_ = sched;
    const std::string t = std::to_string(sched);
    std::string body = "{\"bench_t\":" + t + ",\"pad\":\"";
    const size_t fixed = body.size() + 2;
    if (params_.body_bytes > fixed) body.append(params_.body_bytes - fixed, 'x');
    body += "\"}";
    std::string frame;
    frame.reserve(body.size() + 160);
    frame += "{\"op\":\"send\",\"rid\":";
    frame += std::to_string(kSendRid + sched);
    frame += ",\"to\":";
    frame += s.spec->to_json;
    frame += ",\"client_msg_id\":\"b";
    frame += t;
    frame += "\",\"type\":\"custom\",\"qos\":";
    frame += params_.qos ? '1' : '0';
    frame += ",\"body\":";
    frame += body;
    frame += '}';
    if (s.state != State::kReady || !s.ws.Send(std::move(frame))) {
      ++stats_.send_dropped;
      return;
    }
    ++stats_.sent;
  }

  // Each session acks ack_interval_ms after the first delivery it has not
  // acked (independent clients batching their acks), checked every 5 ms: one
  // timer for all sessions would send every session's ack at the same moment,
  // a burst that real clients do not make.
  void ArmAckTimer() {
    ack_timer_.expires_after(std::chrono::milliseconds(5));
    ack_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      const uint64_t now = NowNs();
      while (!ack_list_.empty() && ack_list_.front().due_ns <= now) {
        Session& s = sessions_[ack_list_.front().session];
        ack_list_.pop_front();
        s.ack_queued = false;
        if (s.last_seq <= s.acked || s.conv_id.empty() || s.state != State::kReady) continue;
        s.acked = s.last_seq;
        s.ws.Send("{\"op\":\"ack\",\"conv_id\":\"" + s.conv_id +
                  "\",\"seq\":" + std::to_string(s.acked) + "}");
      }
      ArmAckTimer();
    });
  }

  void Note(std::string error) {
    std::lock_guard lock(stats_.mu);
    stats_.totals.last_error = std::move(error);
  }

  const LoadParams& params_;
  asio::io_context io_;
  std::vector<Session> sessions_;
  std::vector<uint32_t> senders_;
  std::deque<uint32_t> pending_;
  int inflight_ = 0;
  int connect_limit_;
  struct DueAck {
    uint32_t session;
    uint64_t due_ns;
  };
  std::deque<DueAck> ack_list_;  // in due order
  asio::steady_timer send_timer_, ack_timer_, storm_timer_;
  uint64_t t0_ = 0, t_end_ = 0, measure_from_ = 0, last_sched_ = 0, storm_t0_ = 0;
  double period_ns_ = 0;
  uint64_t k_ = 0;
  int64_t control_rid_ = 0;
  bool storming_ = false;
  bool stopped_ = false;
  std::minstd_rand rng_{std::random_device{}()};
  DriverStats stats_;
};

}  // namespace

// ---- counters

void Counters::Add(const Counters& o) {
  ready += o.ready;
  connect_failed += o.connect_failed;
  gave_up += o.gave_up;
  closed += o.closed;
  sent += o.sent;
  send_dropped += o.send_dropped;
  replies_ok += o.replies_ok;
  replies_err += o.replies_err;
  delivered += o.delivered;
  delivered_window += o.delivered_window;
  sync_messages += o.sync_messages;
  last_ready_ns = std::max(last_ready_ns, o.last_ready_ns);
}

std::string Counters::Serialize() const {
  std::ostringstream out;
  out << ready << ' ' << connect_failed << ' ' << gave_up << ' ' << closed << ' ' << sent << ' '
      << send_dropped << ' ' << replies_ok << ' ' << replies_err << ' ' << delivered << ' '
      << delivered_window << ' ' << sync_messages << ' ' << last_ready_ns;
  return out.str();
}

Counters Counters::Parse(const std::string& text) {
  Counters c;
  std::istringstream in(text);
  in >> c.ready >> c.connect_failed >> c.gave_up >> c.closed >> c.sent >> c.send_dropped >>
      c.replies_ok >> c.replies_err >> c.delivered >> c.delivered_window >> c.sync_messages >>
      c.last_ready_ns;
  return c;
}

// ---- worker process
//
// Reports, one line each: "c <counters>" every 100 ms; "h <second> <sent>
// <delivery histogram>" at the end of each second after a run or storm
// starts; "f <delivery>|<persist>|<ready>|<last error>" after "final".

int RunWorker(const LoadParams& params, std::vector<SessionSpec> sessions, int first_index,
              int fd) {
  const int threads =
      std::max(1, std::min<int>(params.threads, std::max<size_t>(1, sessions.size())));
  std::vector<std::unique_ptr<Driver>> drivers;
  for (int t = 0; t < threads; ++t) {
    std::vector<const SessionSpec*> specs;
    std::vector<int> index;
    for (size_t i = static_cast<size_t>(t); i < sessions.size();
         i += static_cast<size_t>(threads)) {
      specs.push_back(&sessions[i]);
      index.push_back(first_index + static_cast<int>(i));
    }
    drivers.push_back(std::make_unique<Driver>(params, std::move(specs), std::move(index),
                                               params.connect_concurrency / threads));
  }
  std::vector<std::thread> pool;
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<Guard> guards;
  for (auto& d : drivers) {
    guards.emplace_back(d->io().get_executor());
    pool.emplace_back([&io = d->io()] { io.run(); });
  }
  auto each = [&](auto fn) {
    for (auto& d : drivers) asio::post(d->io(), [&d, fn] { fn(*d); });
  };

  std::string in;
  uint64_t origin = 0;  // t0 of the run or storm: timeline seconds count from it
  int64_t second = 0;
  uint64_t last_sent = 0, last_ok = 0, next_counters = 0;
  bool quit = false;
  auto start_timeline = [&](uint64_t t0) {
    origin = t0;
    second = 0;
    last_sent = last_ok = 0;
    for (auto& d : drivers) {
      last_sent += d->stats().sent;
      last_ok += d->stats().replies_ok;
    }
  };
  while (!quit) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 20);
    std::vector<std::string> lines;
    if (p.revents && !ReadLines(fd, in, lines)) break;  // coordinator gone
    for (const auto& line : lines) {
      std::istringstream cmd(line);
      std::string op;
      cmd >> op;
      if (op == "connect") {
        each([](Driver& d) { d.StartConnect(); });
      } else if (op == "run") {
        uint64_t t0 = 0, t_end = 0, from = 0;
        cmd >> t0 >> t_end >> from;
        start_timeline(t0);
        each([=](Driver& d) { d.StartLoad(t0, t_end, from); });
      } else if (op == "prep") {
        each([](Driver& d) { d.StartPrep(); });
      } else if (op == "storm") {
        uint64_t t0 = 0;
        cmd >> t0;
        start_timeline(t0);
        each([=](Driver& d) { d.StartStorm(t0); });
      } else if (op == "final") {
        Histograms all;
        for (auto& d : drivers) {
          std::lock_guard lock(d->stats().mu);
          all.delivery.Merge(d->stats().totals.delivery);
          all.persist.Merge(d->stats().totals.persist);
          all.ready.Merge(d->stats().totals.ready);
          if (!d->stats().totals.last_error.empty()) all.last_error = d->stats().totals.last_error;
        }
        std::string err = all.last_error;
        for (char& c : err) {
          if (c == '\n' || c == '|') c = ' ';
        }
        WriteAll(fd, "f " + all.delivery.Serialize() + "|" + all.persist.Serialize() + "|" +
                         all.ready.Serialize() + "|" + err + "\n");
      } else if (op == "quit") {
        quit = true;
      }
    }
    const uint64_t now = NowNs();
    if (origin && now >= origin + static_cast<uint64_t>(second + 1) * 1000000000ull) {
      Histogram interval;
      Counters c;
      for (auto& d : drivers) {
        std::lock_guard lock(d->stats().mu);
        interval.Merge(d->stats().delivery_interval);
        d->stats().delivery_interval.Reset();
        c.Add(d->stats().Snapshot());
      }
      WriteAll(fd, "h " + std::to_string(second) + " " + std::to_string(c.sent - last_sent) + " " +
                       std::to_string(c.replies_ok - last_ok) + " " + interval.Serialize() + "\n");
      last_sent = c.sent;
      last_ok = c.replies_ok;
      ++second;
    }
    if (now >= next_counters) {
      Counters c;
      for (auto& d : drivers) c.Add(d->stats().Snapshot());
      if (!WriteAll(fd, "c " + c.Serialize() + "\n")) break;
      next_counters = now + 100000000;
    }
  }
  for (auto& d : drivers) {
    asio::post(d->io(), [&d] {
      d->StopAll();
      d->io().stop();
    });
  }
  for (auto& t : pool) t.join();
  return 0;
}

// ---- coordinator

WorkerSet::~WorkerSet() {
  for (auto& w : workers_) {
    if (w.pid > 0) {
      ::kill(w.pid, SIGKILL);
      ::waitpid(w.pid, nullptr, 0);
    }
    if (w.fd >= 0) ::close(w.fd);
  }
}

bool WorkerSet::Start(const LoadParams& params, const std::vector<SessionSpec>& sessions,
                      int per_process, std::string* error) {
  const size_t per = static_cast<size_t>(std::max(1, per_process));
  const size_t count = std::max<size_t>(1, (sessions.size() + per - 1) / per);
  const size_t slice = (sessions.size() + count - 1) / count;
  for (size_t w = 0; w < count; ++w) {
    const size_t begin = std::min(sessions.size(), w * slice);
    const size_t end = std::min(sessions.size(), begin + slice);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      *error = std::string("socketpair: ") + std::strerror(errno);
      return false;
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
      *error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      ::close(sv[0]);
      for (auto& other : workers_) ::close(other.fd);
      std::vector<SessionSpec> mine(sessions.begin() + static_cast<long>(begin),
                                    sessions.begin() + static_cast<long>(end));
      LoadParams p = params;
      p.connect_concurrency = std::max(1, params.connect_concurrency / static_cast<int>(count));
      ::_exit(RunWorker(p, std::move(mine), static_cast<int>(begin), sv[1]));
    }
    ::close(sv[1]);
    Worker worker;
    worker.pid = pid;
    worker.fd = sv[0];
    workers_.push_back(std::move(worker));
  }
  return true;
}

void WorkerSet::Broadcast(const std::string& command) {
  for (auto& w : workers_) {
    if (command == "final") w.final = false;  // wait for the fresh answer
    WriteAll(w.fd, command + "\n");
  }
}

bool WorkerSet::Pump(int timeout_ms) {
  const uint64_t until = NowNs() + static_cast<uint64_t>(timeout_ms) * 1000000;
  bool alive = true;
  do {
    std::vector<pollfd> fds;
    for (auto& w : workers_) fds.push_back({w.fd, POLLIN, 0});
    const uint64_t now = NowNs();
    const int wait = now >= until ? 0 : static_cast<int>((until - now) / 1000000);
    if (::poll(fds.data(), fds.size(), wait) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      std::vector<std::string> lines;
      if (!ReadLines(workers_[i].fd, workers_[i].in, lines)) alive = false;
      for (const auto& line : lines) Line(workers_[i], line);
    }
  } while (NowNs() < until && alive);
  return alive;
}

void WorkerSet::Line(Worker& w, const std::string& line) {
  if (line.size() < 2) return;
  const std::string rest = line.substr(2);
  switch (line[0]) {
    case 'c':
      w.counters = Counters::Parse(rest);
      break;
    case 'h': {
      std::istringstream in(rest);
      int64_t sec = 0;
      uint64_t sent = 0, ok = 0;
      in >> sec >> sent >> ok;
      std::string hist;
      std::getline(in >> std::ws, hist);
      Second& s = timeline_[sec];
      s.sent += sent;
      s.replies_ok += ok;
      if (auto h = Histogram::Parse(hist)) s.delivery.Merge(*h);
      break;
    }
    case 'f': {
      std::vector<std::string> parts;
      std::string part;
      std::istringstream in(rest);
      while (std::getline(in, part, '|')) parts.push_back(part);
      parts.resize(4);
      if (auto h = Histogram::Parse(parts[0])) w.finals.delivery = *h;
      if (auto h = Histogram::Parse(parts[1])) w.finals.persist = *h;
      if (auto h = Histogram::Parse(parts[2])) w.finals.ready = *h;
      w.finals.last_error = parts[3];
      w.final = true;
      break;
    }
  }
}

std::vector<pid_t> WorkerSet::pids() const {
  std::vector<pid_t> out;
  for (const auto& w : workers_) out.push_back(w.pid);
  return out;
}

Counters WorkerSet::Total() const {
  Counters c;
  for (const auto& w : workers_) c.Add(w.counters);
  return c;
}

bool WorkerSet::AllFinal() const {
  for (const auto& w : workers_) {
    if (!w.final) return false;
  }
  return true;
}

Histograms WorkerSet::Finals() const {
  Histograms h;
  for (const auto& w : workers_) {
    h.delivery.Merge(w.finals.delivery);
    h.persist.Merge(w.finals.persist);
    h.ready.Merge(w.finals.ready);
    if (!w.finals.last_error.empty()) h.last_error = w.finals.last_error;
  }
  return h;
}

void WorkerSet::Stop() {
  Broadcast("quit");
  const uint64_t until = NowNs() + 10000000000ull;
  for (auto& w : workers_) {
    while (w.pid > 0) {
      if (::waitpid(w.pid, nullptr, WNOHANG) == w.pid) {
        w.pid = -1;
      } else if (NowNs() > until) {
        ::kill(w.pid, SIGKILL);
        ::waitpid(w.pid, nullptr, 0);
        w.pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    ::close(w.fd);
    w.fd = -1;
  }
}

}  // namespace mpim::bench
