// A recording service::Deliverer for service tests: every call is kept with
// its arguments, in call order per kind, and tests read them back or wait
// (with a deadline) until enough have come. Nothing is delivered anywhere;
// Messages() calls `taken` at once.
//
// Thread-safe: services call it from store threads while the test reads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "route/conn_id.h"
#include "service/deliverer.h"
#include "store/message_store.h"

namespace mpim::testing {

// The calls of one kind, in the order they were made.
template <typename Call>
class CallLog {
 public:
  void Add(Call call) {
    {
      std::lock_guard lock(mu_);
      calls_.push_back(std::move(call));
    }
    cv_.notify_all();
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Waits until at least `n` calls were made; false at the timeout.
  [[nodiscard]] bool WaitFor(size_t n,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_.size() >= n; });
  }
  void Clear() {
    std::lock_guard lock(mu_);
    calls_.clear();
  }

 private:
  mutable std::mutex mu_;  // guards calls_
  mutable std::condition_variable cv_;
  std::vector<Call> calls_;
};

class FakeDeliverer final : public service::Deliverer {
 public:
  struct MessageCall {
    std::vector<int64_t> users;
    route::ConnId exclude_conn;
    store::Message msg;
    bool qos1 = false;
    service::Priority priority = service::Priority::kNormal;
  };
  struct MessagesCall {
    std::vector<int64_t> users;
    std::vector<store::Message> msgs;
    bool qos1 = false;
    service::Priority priority = service::Priority::kNormal;
  };
  struct ReceiptCall {
    std::vector<int64_t> users;
    route::ConnId exclude_conn;
    std::string conv_id;
    int64_t reader = 0;
    int64_t read_seq = 0;
  };
  struct TypingCall {
    std::vector<int64_t> users;
    std::string conv_id;
    int64_t user = 0;
  };
  struct PresenceCall {
    std::vector<route::ConnId> conns;
    int64_t user = 0;
    bool online = false;
    int64_t last_seen = 0;
  };
  struct ConvCall {
    std::vector<int64_t> users;
    std::string conv_id;
    std::string event;
  };
  struct RecallCall {
    std::vector<int64_t> users;
    std::string conv_id;
    int64_t seq = 0;
    int64_t msg_id = 0;
  };
  struct KickCall {
    int64_t user_id = 0;
    int64_t session_id = 0;
    std::string reason;
  };

  void Message(const std::vector<int64_t>& users, route::ConnId exclude_conn,
               const store::Message& msg, bool qos1, service::Priority priority) override {
    messages.Add({users, exclude_conn, msg, qos1, priority});
  }
  void Messages(const std::vector<int64_t>& users, const std::vector<store::Message>& msgs,
                bool qos1, service::Priority priority, std::function<void()> taken) override {
    batches.Add({users, msgs, qos1, priority});
    taken();
  }
  void Receipt(const std::vector<int64_t>& users, route::ConnId exclude_conn,
               const std::string& conv_id, int64_t reader, int64_t read_seq) override {
    receipts.Add({users, exclude_conn, conv_id, reader, read_seq});
  }
  void Typing(const std::vector<int64_t>& users, const std::string& conv_id,
              int64_t user) override {
    typing.Add({users, conv_id, user});
  }
  void Presence(const std::vector<route::ConnId>& conns, int64_t user, bool online,
                int64_t last_seen) override {
    presence.Add({conns, user, online, last_seen});
  }
  void Conv(const std::vector<int64_t>& users, const std::string& conv_id,
            const std::string& event) override {
    convs.Add({users, conv_id, event});
  }
  void Recall(const std::vector<int64_t>& users, const std::string& conv_id, int64_t seq,
              int64_t msg_id) override {
    recalls.Add({users, conv_id, seq, msg_id});
  }
  void Kick(int64_t user_id, int64_t session_id, const std::string& reason) override {
    kicks.Add({user_id, session_id, reason});
  }

  CallLog<MessageCall> messages;
  CallLog<MessagesCall> batches;
  CallLog<ReceiptCall> receipts;
  CallLog<TypingCall> typing;
  CallLog<PresenceCall> presence;
  CallLog<ConvCall> convs;
  CallLog<RecallCall> recalls;
  CallLog<KickCall> kicks;
};

}  // namespace mpim::testing
