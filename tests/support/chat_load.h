// Chat and group load for the crash and fault suites (crash_cycles,
// mysql_faults): clients that keep a WebSocket to the current server, send
// with client_msg_ids, receive, and record every `ok` reply and every
// message received into an AckChecker (support/ack_checker.h).
//
// Each ChatLoadClient runs on a thread of its own. It connects to the server
// the ChatLoad last published, catches up through hello + sync, resends its
// unacknowledged sends with the same client_msg_id, then sends (at most
// kWindow in flight, about every kSendEvery) and receives, acking what it
// got. A send answered `unavailable` or `rate_limited` is sent again 100 ms
// later on the same connection; any other error is a test failure, and so
// is a `msg` of a conversation the client is not in. A lost connection, or
// a server published anew (even on the same port), makes it reconnect with
// back-off (50 ms doubling to 1 s, jittered) and catch up.
//
// Several nodes of one cluster (the multi-node fault suite): PublishNodes
// gives the clients a list of ports, and the client the run added i-th has
// its home node at ports[i % n], so consecutive clients (the two users of a
// pair, the members of a group) sit on different nodes. A client whose
// connection is lost or cannot be made goes on to the next node: the k-th
// attempt in a row goes to ports[(home + k) % n], with the back-off between
// attempts, as a client behind a load balancer that skips a dead node
// would; the next attempt after one that succeeded starts at home again. It
// stays where it got in until that connection ends or a new PublishNodes
// sends it home (see there).
//
// The test's thread drives a run through ChatLoadRun (set-up, waits, the
// final read-back and check) and its ChatLoad: Publish a server, wait with
// WaitFor on the clients' state, and mark outages of the store
// (BeginOutage/EndOutage): an `ok` reply to a send transmitted during an
// outage and received before it ended is a test failure (the store was
// unreachable throughout, so nothing can have been made durable).
// `MPIM_CRASH_TRACE=1` makes each client print its hellos, sync pages and
// the gaps its cursor met on stderr.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/ack_checker.h"
#include "support/api_client.h"
#include "support/ws_helpers.h"

namespace mpim::testing {

// What the test's thread and the load clients share. Thread-safe.
class ChatLoad {
 public:
  // What was published last.
  struct Servers {
    int generation = 0;  // 0 before any Publish, then 1, 2, ...
    std::vector<uint16_t> ports;
    bool nodes = false;  // by PublishNodes
  };

  // Tells the clients to connect to the server on `port` (a new one, or the
  // same one again: they reconnect and catch up either way); its generation
  // (1 for the first Publish, then counting up).
  int Publish(uint16_t port) { return Set({port}, false); }
  // Tells the clients to connect to the nodes on `ports` (one cluster; see
  // the file comment for which client goes where). A client connected to
  // its home node's port stays connected (its connection counts as one to
  // this generation); every other one reconnects, to its home first. So
  // after a node restarted on a new port, publishing the new list brings
  // that node's clients home and leaves the others alone. Its generation.
  int PublishNodes(std::vector<uint16_t> ports) { return Set(std::move(ports), true); }
  // The published server: its generation (0 before any) and (first) port.
  std::pair<int, uint16_t> Server() const {
    std::lock_guard lock(servers_mu_);
    return {servers_.generation, servers_.ports.empty() ? uint16_t{0} : servers_.ports.front()};
  }
  Servers Published() const {
    std::lock_guard lock(servers_mu_);
    return servers_;
  }
  int generation() const { return generation_.load(); }

  void Stop();
  bool stopped() const { return stop_.load(); }
  // Sleeps for `d` unless Stop() comes first (back-off, pacing).
  void Pause(std::chrono::milliseconds d);

  // Clients call Changed() after their state moved; the test's thread waits
  // with WaitFor for a condition over that state.
  void Changed();
  bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds deadline);

  // The store is unreachable from now until EndOutage(). Outages count from 1.
  void BeginOutage() { outage_ = ++outages_; }
  void EndOutage() { outage_ = 0; }
  int outage() const { return outage_.load(); }  // 0: none

  AckChecker checker;
  std::atomic<bool> sending{true};  // false: no new sends, retries go on
  std::atomic<bool> late_may_connect{false};
  std::atomic<int64_t> acks{0};          // ok replies to sends
  std::atomic<int64_t> unavailable{0};   // sends answered `unavailable`
  std::atomic<int64_t> misdelivered{0};  // msgs of a conversation the client is not in

 private:
  int Set(std::vector<uint16_t> ports, bool nodes);

  mutable std::mutex servers_mu_;
  Servers servers_;                 // guarded by servers_mu_
  std::atomic<int> generation_{0};  // servers_.generation, read without the lock
  std::atomic<int> outage_{0};
  int outages_ = 0;  // the test's thread's own
  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;
};

// One user's device (see the file comment).
class ChatLoadClient {
 public:
  // `home`: its number in the run, which names its home node under
  // PublishNodes (ports[home % n]).
  ChatLoadClient(ChatLoad& load, Account account, std::string name, size_t home = 0)
      : load_(load), account_(std::move(account)), name_(std::move(name)), home_(home) {}
  ~ChatLoadClient() { Join(); }

  // Before Start(): whom to send to (a user or a group id) and where to
  // receive.
  void SendToUser(std::string user_id) {
    own_conv_ = PrivateConvId(account_.id(), user_id);
    to_ = std::move(user_id);
  }
  void SendToGroup(std::string group_id) {
    to_ = std::move(group_id);
    to_group_ = true;
  }
  void ReceiveIn(const std::string& conv_id);
  // Stays offline until load.late_may_connect.
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
  // The port of the server it is connected to; 0 while it is not.
  uint16_t connected_port() const { return connected_port_.load(); }
  int64_t unacked() const { return unacked_.load(); }
  int64_t acked() const { return acked_.load(); }  // its sends acknowledged
  // Every conversation of this client received up to at least `last_seq`.
  bool CaughtUp(const std::map<std::string, int64_t>& last_seq) const;
  std::string Describe() const;
  int64_t sent() const { return sent_.load(); }
  int64_t resent() const { return resent_.load(); }
  int64_t resends_found_stored() const { return resends_found_stored_.load(); }
  int connections() const { return connections_.load(); }
  // Connections made under PublishNodes to a node other than its home.
  int failovers() const { return failovers_.load(); }

 private:
  struct Pending {
    std::string client_msg_id;
    bool in_flight = false;
    int outage = 0;  // load.outage() when last transmitted
    std::chrono::steady_clock::time_point retry_at{};
    int64_t resent_wall_ms = 0;  // when last sent again on a new connection
  };
  struct Conv {
    int64_t cursor = 0;       // every seq up to here was received (or is our own)
    std::set<int64_t> ahead;  // received seqs above cursor + 1
    int64_t acked = 0;        // last cumulative ack sent on this connection
  };

  void Run();
  bool Connect(uint16_t port);
  void Disconnect();
  bool CatchUp();
  bool SendDue();
  bool Transmit(int64_t index, Pending& p);
  void Handle(const boost::json::object& frame);
  void HandleReply(const boost::json::object& reply);
  void Receive(const boost::json::object& m, ReceiptSource source);
  void Note(const std::string& conv_id, Conv& c, int64_t seq, const char* how);
  void AckAll(int64_t at_least);
  void Trace(const std::string& what) const;
  void SetError(std::string e);

  ChatLoad& load_;
  const Account account_;
  const std::string name_;
  const size_t home_;
  std::string to_;        // empty: sends nothing
  std::string own_conv_;  // the private conversation it sends to, if any
  bool to_group_ = false;
  bool late_ = false;
  std::thread thread_;

  // The client thread's own.
  std::unique_ptr<WsConn> ws_;
  std::map<std::string, Conv> convs_;
  std::map<int64_t, Pending> pending_;  // by send index: resent in order
  std::map<int64_t, int64_t> rids_;     // rid on this connection -> send index
  std::chrono::steady_clock::time_point next_send_{};
  int attempt_ = 0;           // connection attempts failed in a row
  int tried_generation_ = 0;  // the generation attempt_ counts in

  // Read by the test's thread.
  std::atomic<int> connected_generation_{0};
  std::atomic<uint16_t> connected_port_{0};
  std::atomic<int64_t> unacked_{0};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> resent_{0};
  std::atomic<int64_t> resends_found_stored_{0};
  std::atomic<int> connections_{0};
  std::atomic<int> failovers_{0};
  mutable std::mutex mu_;
  std::map<std::string, int64_t> cursors_;  // guarded by mu_
  std::string last_error_;                  // guarded by mu_
};

// What a load run was made of: `pairs` user pairs (one side sends, the
// other receives) and groups, each of `members` (the owner included) of
// which the first `senders` send and all receive, the last one only
// connecting at Finish().
struct ChatLoadPlan {
  struct Group {
    int members;
    int senders;
  };
  int pairs = 0;
  std::vector<Group> groups;
};

// What Finish() counted.
struct ChatLoadSummary {
  AckCheckTotals totals;
  int64_t sent = 0;                  // sends made (each acknowledged, or a failure)
  int64_t resent = 0;                // sent again after a reconnect
  int64_t resends_found_stored = 0;  // of those, answered with an earlier message
  int64_t connections = 0;
  int64_t failovers = 0;  // connections to a node other than the client's home
  size_t conversations = 0;
  // When Finish() had every send finished, the conversations read back,
  // every receiver caught up (from its start).
  std::chrono::milliseconds sends_finished{0}, read_back{0}, caught_up{0};
};

// A load run from set-up to the check: the ChatLoad, its clients, and the
// conversations to read back. The test's thread only. The destructor stops
// and joins the clients.
class ChatLoadRun {
 public:
  ChatLoadRun() = default;
  ~ChatLoadRun() { StopClients(); }
  ChatLoadRun(const ChatLoadRun&) = delete;
  ChatLoadRun& operator=(const ChatLoadRun&) = delete;

  // Publishes the server on `port`, registers the plan's accounts on it
  // ("<prefix>_..."), creates the groups and starts a client per account.
  // False (with recorded failures) when any of it fails.
  bool Start(uint16_t port, const std::string& prefix, const ChatLoadPlan& plan);
  // The same on several nodes of one cluster: PublishNodes(ports); accounts
  // and groups are made on ports[0]; the clients, in the order above (each
  // pair's sender then its receiver, then each group's members), have their
  // homes on the nodes in turn, so a pair's two users sit on two nodes and a
  // group of at least ports.size() members has members on every node.
  bool Start(const std::vector<uint16_t>& ports, const std::string& prefix,
             const ChatLoadPlan& plan);

  // Waits until every client (but the late ones, before Finish()) is
  // connected to the server last published.
  ::testing::AssertionResult WaitConnected(std::chrono::milliseconds deadline);
  // Waits until `n` more sends than now are acknowledged.
  ::testing::AssertionResult WaitAcks(int64_t n, std::chrono::milliseconds deadline);
  // Waits until every sending client has `n` more of its own sends
  // acknowledged than now (after a fault: each sender is served again); the
  // time it took, or nullopt after a recorded failure naming the laggards.
  std::optional<std::chrono::milliseconds> WaitEverySenderAcked(int64_t n,
                                                                std::chrono::milliseconds deadline);

  // Stops new sends, lets the late members connect, waits until every send
  // is acknowledged, reads every conversation back over REST from `port`,
  // waits until every receiver has caught up with it, stops the clients and
  // runs the checker. Records a failure for each problem found (and when a
  // sent message was never acknowledged, or a stored one never was, or a
  // client got a message of a conversation it is not in).
  ChatLoadSummary Finish(uint16_t port, std::chrono::milliseconds deadline);

  // Every client for which `pred` is false, described, one per line.
  std::string Laggards(const std::function<bool(const ChatLoadClient&)>& pred) const;
  // Waits until `pred` holds for every client (it is evaluated on the
  // test's thread whenever a client's state moved).
  bool WaitAll(const std::function<bool(const ChatLoadClient&)>& pred,
               std::chrono::milliseconds deadline);
  // Connected to the server last published (a late one before Finish()
  // counts as connected).
  bool Connected(const ChatLoadClient& c) const;
  // The clients, in the order Start() added them (their home numbers).
  const std::vector<std::unique_ptr<ChatLoadClient>>& clients() const { return clients_; }
  // Each conversation of the run and a member's access token, to read it back.
  const std::map<std::string, std::string>& readers() const { return reader_; }
  void StopClients();

  ChatLoad load;

 private:
  bool StartClients(uint16_t port, const std::string& prefix, const ChatLoadPlan& plan);
  ChatLoadClient& AddClient(const Account& a, const std::string& name);

  std::vector<std::unique_ptr<ChatLoadClient>> clients_;
  std::map<std::string, std::string> reader_;  // conv_id -> a member's token
};

}  // namespace mpim::testing
