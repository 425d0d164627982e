// The acknowledged-message checker of the crash/restart suites (issue 8
// "Crashes and restarts"; docs/protocol.md section 3: "A reply
// with ok:true means the message is durable", idempotent `send`, "Ordering
// and delivery guarantees").
//
// A load run records, while it runs, every `ok` reply to a `send` (Acked)
// and every message each receiver got, from `msg` pushes and `sync` pages,
// in the order it got them (Received). After the run the test reads every
// conversation back from the server (REST history or `sync`) into Stored,
// and Check() reports each broken guarantee:
//
//   - the stored conversation: seqs 1, 2, ... n, contiguous, each once; a
//     msg_id stored once; (sender, client_msg_id) names one message;
//   - every acknowledged send is stored, once, at the conv_id, seq and
//     msg_id of its reply, and every reply to one (sender, client_msg_id)
//     is the same;
//   - every expected receiver of a conversation got every stored seq, each
//     with the stored msg_id, and after dropping duplicates by seq the
//     messages of others arrived in ascending seq order. The receiver's own
//     messages are outside both checks: the reply to the send tells it about
//     them, and a push of one, if any, is not ordered with the rest.
//
// Recording is thread-safe (one mutex; load threads record as they go).
// Check() runs after the recording threads are done.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace mpim::testing {

// One `ok` reply to a `send`.
struct AckedSend {
  std::string sender;  // user id
  std::string client_msg_id;
  std::string conv_id;
  int64_t seq = 0;
  std::string msg_id;
};

// One message as the server gives it (stored, or as a receiver got it).
struct SeenMessage {
  std::string conv_id;
  int64_t seq = 0;
  std::string msg_id;
  std::string from;           // sender user id
  std::string client_msg_id;  // "" for system messages
};

// The fields the checker uses of a protocol Message object.
SeenMessage SeenFromJson(const boost::json::object& message);

enum class ReceiptSource { kLive, kSync };

// One message as a receiver got it.
struct Receipt {
  SeenMessage message;
  ReceiptSource source = ReceiptSource::kLive;
  int connection = 0;  // which connection of the receiver, for reports
};

// What Check() looked at.
struct AckCheckTotals {
  int64_t acks = 0;             // ok replies recorded (retries included)
  int64_t acked_messages = 0;   // distinct (sender, client_msg_id) acknowledged
  int64_t stored_messages = 0;  // in every conversation read back
  int64_t stored_unacked = 0;   // stored non-system messages nobody saw acknowledged
  int64_t receipts = 0;         // messages receivers got, duplicates included
  int64_t duplicate_receipts = 0;
  int64_t receivers = 0;  // expected (receiver, conversation) pairs
};

class AckChecker {
 public:
  // Recording; thread-safe.
  void Acked(AckedSend ack);
  // `receiver` (a user id) must get every message of `conv_id`.
  void ExpectReceiver(const std::string& receiver, const std::string& conv_id);
  // `receiver` got `receipt`; calls for one receiver come in arrival order.
  void Received(const std::string& receiver, Receipt receipt);
  // The conversation read back after the run, in the order served.
  void Stored(const std::string& conv_id, std::vector<SeenMessage> messages);

  // Every broken guarantee, one line each, in a stable order; at most
  // `max_lines` of them, then one "... and N more" line. Empty when the run
  // is clean. Call once recording is over.
  std::vector<std::string> Check(size_t max_lines = 200) const;
  AckCheckTotals Totals() const;
  // The acknowledged sends recorded so far (a copy; thread-safe).
  std::vector<AckedSend> Acks() const {
    std::lock_guard lock(mu_);
    return acks_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<AckedSend> acks_;
  std::set<std::pair<std::string, std::string>> expected_;  // (receiver, conv_id)
  std::map<std::string, std::vector<Receipt>> receipts_;    // by receiver
  std::map<std::string, std::vector<SeenMessage>> stored_;  // by conv_id, as served
};

}  // namespace mpim::testing
