// The load itself: worker processes, each running io threads that hold
// thousands of WebSocket sessions (AsyncWs), connect them, send on an open-loop
// schedule and measure. The coordinating process (WorkerSet) forks the
// workers after setup, drives them through phases with one-line commands over
// a socketpair and merges what they report.
//
// Times are CLOCK_MONOTONIC nanoseconds (std::chrono::steady_clock), which
// every process on the machine shares: a message carries its scheduled send
// time in its body ("bench_t") and the receiver, maybe in another process,
// computes the latency from it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/async_ws.h"
#include "bench/histogram.h"

namespace mpim::bench {

uint64_t NowNs();  // steady_clock, ns

enum class Scenario { kConnect, kChat, kGroup, kStorm };

// One WebSocket session of the load: a logged-in user.
struct SessionSpec {
  uint64_t user_id = 0;
  std::string token;
  std::string to_json;  // what `send` goes to: {"user":"7"} / {"group":"9"}; "" sends nothing
  bool sender = false;  // sends during the load phase (chat, group)
  int node = 0;         // which of LoadParams::targets it connects to (--nodes)
};

struct LoadParams {
  Scenario scenario = Scenario::kConnect;
  WsTarget target;
  std::vector<WsTarget> targets;   // several nodes: SessionSpec::node picks one (else `target`)
  int source_addrs = 8;            // 127.0.0.2 ... 127.0.0.(1+n)
  int threads = 1;                 // io threads per worker process
  int connect_concurrency = 1000;  // upgrades in flight per worker process
  double rate = 0;                 // sends per second over all senders of all workers
  int senders_total = 0;
  size_t body_bytes = 100;  // serialized `body` of each message
  int qos = 1;
  int ack_interval_ms = 200;  // batched cumulative acks (0: never ack)
  bool ack_each = false;      // an ack frame per message received, at once (a simple client)
  int storm_backlog = 2;      // messages each storm session sends before the drop
};

// A session whose connect, upgrade or hello fails tries again after a short
// randomized back-off (as a client would), this many times in all.
inline constexpr int kConnectAttempts = 5;

// Cumulative counters of one worker (or all, summed).
struct Counters {
  uint64_t ready = 0;             // sessions connected with hello (and synced, in a storm)
  uint64_t connect_failed = 0;    // connect attempts that failed (each is retried)
  uint64_t gave_up = 0;           // sessions that failed kConnectAttempts times
  uint64_t closed = 0;            // ready sessions the server closed
  uint64_t sent = 0;              // sends scheduled and written
  uint64_t send_dropped = 0;      // sends scheduled for a session that was not open
  uint64_t replies_ok = 0;        // send replies ok:true (durable)
  uint64_t replies_err = 0;       // send replies with an error
  uint64_t delivered = 0;         // bench messages received (from someone else)
  uint64_t delivered_window = 0;  // of those, scheduled in the measured window
  uint64_t sync_messages = 0;     // messages fetched by sync after a storm
  uint64_t last_ready_ns = 0;     // when the last session became ready

  void Add(const Counters& o);
  std::string Serialize() const;
  static Counters Parse(const std::string& text);
};

// Latency histograms of one worker (or all), in nanoseconds.
struct Histograms {
  Histogram delivery;  // scheduled send -> `msg` received, measured window only
  Histogram persist;   // scheduled send -> ok reply, measured window only
  Histogram ready;     // connect start -> hello (and synced, in a storm)
  std::string last_error;
};

// One second of the run, merged over workers.
struct Second {
  uint64_t sent = 0;
  uint64_t replies_ok = 0;
  Histogram delivery;
};

// The worker side: runs until the coordinator says "quit" or goes away.
int RunWorker(const LoadParams& params, std::vector<SessionSpec> sessions, int first_index, int fd);

// The coordinator side.
class WorkerSet {
 public:
  ~WorkerSet();  // kills workers still running

  // Forks ceil(sessions / per_process) workers, each with a contiguous slice.
  bool Start(const LoadParams& params, const std::vector<SessionSpec>& sessions, int per_process,
             std::string* error);
  int workers() const { return static_cast<int>(workers_.size()); }
  std::vector<pid_t> pids() const;

  // Commands (see load.cc): "connect", "run <t0> <t_end> <measure_from>",
  // "prep", "storm <t0>", "final", "quit".
  void Broadcast(const std::string& command);
  // Reads what workers report for up to `timeout_ms`. False when a worker died.
  bool Pump(int timeout_ms);

  Counters Total() const;
  bool AllFinal() const;
  Histograms Finals() const;
  const std::map<int64_t, Second>& timeline() const { return timeline_; }
  // Ends the workers ("quit", then waits; SIGKILL after 10 s).
  void Stop();

 private:
  struct Worker {
    pid_t pid = -1;
    int fd = -1;
    std::string in;
    Counters counters;
    bool final = false;
    Histograms finals;
  };
  void Line(Worker& w, const std::string& line);

  std::vector<Worker> workers_;
  std::map<int64_t, Second> timeline_;
};

}  // namespace mpim::bench
