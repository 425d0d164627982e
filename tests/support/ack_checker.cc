#include "support/ack_checker.h"

#include <algorithm>
#include <boost/json/value.hpp>
#include <sstream>

#include "support/ws_helpers.h"

namespace mpim::testing {
namespace {

namespace json = boost::json;

// "3-7, 9, 12-13" of ascending seqs.
std::string Ranges(const std::vector<int64_t>& seqs) {
  std::ostringstream out;
  for (size_t i = 0; i < seqs.size();) {
    size_t j = i;
    while (j + 1 < seqs.size() && seqs[j + 1] == seqs[j] + 1) ++j;
    if (i) out << ", ";
    out << seqs[i];
    if (j > i) out << "-" << seqs[j];
    i = j + 1;
  }
  return out.str();
}

std::string Where(const Receipt& r) {
  return std::string(r.source == ReceiptSource::kLive ? "live" : "sync") + " on connection " +
         std::to_string(r.connection);
}

std::string Ack(const AckedSend& a) {
  return a.conv_id + " seq " + std::to_string(a.seq) + " msg_id " + a.msg_id;
}

// The stored conversations, indexed.
struct StoreIndex {
  std::map<std::string, std::map<int64_t, const SeenMessage*>> by_seq;  // first one served
  std::map<std::string, int64_t> last_seq;

  const SeenMessage* At(const std::string& conv_id, int64_t seq) const {
    auto c = by_seq.find(conv_id);
    if (c == by_seq.end()) return nullptr;
    auto m = c->second.find(seq);
    return m == c->second.end() ? nullptr : m->second;
  }
};

// Checks one conversation as served; fills `index`.
void CheckConversation(const std::string& conv_id, const std::vector<SeenMessage>& messages,
                       StoreIndex& index, std::vector<std::string>& out) {
  const std::string at = "stored " + conv_id + ": ";
  auto& by_seq = index.by_seq[conv_id];
  int64_t last = 0;
  for (const SeenMessage& m : messages) {
    if (m.conv_id != conv_id) {
      out.push_back(at + "seq " + std::to_string(m.seq) + " is served with conv_id " + m.conv_id);
    }
    if (auto first = by_seq.find(m.seq); first != by_seq.end()) {
      out.push_back(at + "seq " + std::to_string(m.seq) + " served twice (msg_ids " +
                    first->second->msg_id + " and " + m.msg_id + ")");
    } else if (m.seq < last) {
      out.push_back(at + "seq " + std::to_string(m.seq) + " served after seq " +
                    std::to_string(last) + " (out of order)");
    }
    last = std::max(last, m.seq);
    by_seq.emplace(m.seq, &m);
  }
  index.last_seq[conv_id] = last;
  std::vector<int64_t> holes;
  for (int64_t s = 1; s <= last; ++s) {
    if (!by_seq.count(s)) holes.push_back(s);
  }
  if (!holes.empty()) {
    out.push_back(at + "hole, seqs " + Ranges(holes) + " missing (last seq " +
                  std::to_string(last) + ")");
  }
}

void CheckStoreWide(const std::map<std::string, std::vector<SeenMessage>>& stored,
                    std::vector<std::string>& out) {
  std::map<std::string, std::vector<const SeenMessage*>> by_msg_id;
  std::map<std::pair<std::string, std::string>, std::vector<const SeenMessage*>> by_client_id;
  for (const auto& [conv_id, messages] : stored) {
    for (const SeenMessage& m : messages) {
      by_msg_id[m.msg_id].push_back(&m);
      if (!m.client_msg_id.empty()) by_client_id[{m.from, m.client_msg_id}].push_back(&m);
    }
  }
  auto list = [](const std::vector<const SeenMessage*>& ms) {
    std::string s;
    for (const SeenMessage* m : ms) {
      s += (s.empty() ? "" : ", ") + m->conv_id + " seq " + std::to_string(m->seq) + " msg_id " +
           m->msg_id;
    }
    return s;
  };
  for (const auto& [msg_id, ms] : by_msg_id) {
    if (ms.size() > 1) {
      out.push_back("stored: msg_id " + msg_id + " appears " + std::to_string(ms.size()) +
                    " times (" + list(ms) + ")");
    }
  }
  for (const auto& [key, ms] : by_client_id) {
    std::set<std::string> ids;
    for (const SeenMessage* m : ms) ids.insert(m->msg_id);
    if (ids.size() > 1) {
      out.push_back("stored: client_msg_id " + key.second + " of sender " + key.first + " names " +
                    std::to_string(ids.size()) + " messages (" + list(ms) + ")");
    }
  }
}

using AckGroups = std::map<std::pair<std::string, std::string>, std::vector<const AckedSend*>>;

AckGroups GroupAcks(const std::vector<AckedSend>& acks) {
  AckGroups groups;
  for (const AckedSend& a : acks) groups[{a.sender, a.client_msg_id}].push_back(&a);
  return groups;
}

void CheckAckGroups(const AckGroups& groups, const StoreIndex& index,
                    std::vector<std::string>& out) {
  std::set<std::string> unread_convs;
  for (const auto& [key, acks] : groups) {
    const std::string who = "sender " + key.first + " client_msg_id " + key.second;
    std::vector<const AckedSend*> distinct;
    for (const AckedSend* a : acks) {
      bool same = false;
      for (const AckedSend* d : distinct) {
        same = same || (d->conv_id == a->conv_id && d->seq == a->seq && d->msg_id == a->msg_id);
      }
      if (same) continue;
      if (!distinct.empty()) {
        out.push_back("idempotency: " + who + " was acknowledged as " + Ack(*distinct.front()) +
                      ", then as " + Ack(*a));
      }
      distinct.push_back(a);
    }
    for (const AckedSend* a : distinct) {
      if (!index.last_seq.count(a->conv_id)) {
        if (unread_convs.insert(a->conv_id).second) {
          out.push_back("acked: " + a->conv_id + " has acknowledged sends but was not read back");
        }
        continue;
      }
      const SeenMessage* m = index.At(a->conv_id, a->seq);
      if (!m) {
        out.push_back("lost: " + who + " acknowledged as " + Ack(*a) + " is not stored (last seq " +
                      std::to_string(index.last_seq.at(a->conv_id)) + ")");
      } else if (m->msg_id != a->msg_id || m->from != a->sender ||
                 m->client_msg_id != a->client_msg_id) {
        out.push_back("lost: " + who + " acknowledged as " + Ack(*a) +
                      ", but that seq holds msg_id " + m->msg_id + " from " + m->from +
                      " client_msg_id " + m->client_msg_id);
      }
    }
  }
}

void CheckReceiver(const std::string& receiver, const std::string& conv_id,
                   const std::vector<Receipt>& receipts, const StoreIndex& index,
                   std::vector<std::string>& out) {
  const std::string at = "receiver " + receiver + " " + conv_id + ": ";
  auto last = index.last_seq.find(conv_id);
  if (last == index.last_seq.end()) {
    out.push_back(at + "the conversation was not read back");
    return;
  }
  std::set<int64_t> got;
  const Receipt* latest = nullptr;  // the highest seq from others so far
  for (const Receipt& r : receipts) {
    const SeenMessage& m = r.message;
    if (m.conv_id != conv_id) continue;
    const SeenMessage* stored = index.At(conv_id, m.seq);
    if (!stored) {
      out.push_back(at + "got seq " + std::to_string(m.seq) + " (msg_id " + m.msg_id + ", " +
                    Where(r) + ") that is not stored (last seq " + std::to_string(last->second) +
                    ")");
    } else if (stored->msg_id != m.msg_id) {
      out.push_back(at + "got seq " + std::to_string(m.seq) + " as msg_id " + m.msg_id + " (" +
                    Where(r) + "), stored as msg_id " + stored->msg_id);
    }
    if (!got.insert(m.seq).second) continue;  // a duplicate
    // The receiver's own messages are outside the order (see the header).
    if ((stored ? stored->from : m.from) == receiver) continue;
    if (latest && m.seq < latest->message.seq) {
      std::string line = at + "seq " + std::to_string(m.seq) + " (" + Where(r) +
                         ") came after seq " + std::to_string(latest->message.seq) + " (" +
                         Where(*latest) + "): out of order";
      if (r.connection != latest->connection) {
        line += "; connection " + std::to_string(latest->connection) + " went past it";
      }
      out.push_back(std::move(line));
    } else {
      latest = &r;
    }
  }
  std::vector<int64_t> missing;
  for (int64_t s = 1; s <= last->second; ++s) {
    const SeenMessage* stored = index.At(conv_id, s);
    if (got.count(s) || (stored && stored->from == receiver)) continue;
    missing.push_back(s);
  }
  if (!missing.empty()) {
    out.push_back(at + "never got seqs " + Ranges(missing) + " (last seq " +
                  std::to_string(last->second) + ")");
  }
}

}  // namespace

SeenMessage SeenFromJson(const json::object& m) {
  return SeenMessage{Str(m, "conv_id"), Int(m, "seq"), Str(m, "msg_id"), Str(m, "from"),
                     Str(m, "client_msg_id")};
}

void AckChecker::Acked(AckedSend ack) {
  std::lock_guard lock(mu_);
  acks_.push_back(std::move(ack));
}

void AckChecker::ExpectReceiver(const std::string& receiver, const std::string& conv_id) {
  std::lock_guard lock(mu_);
  expected_.emplace(receiver, conv_id);
}

void AckChecker::Received(const std::string& receiver, Receipt receipt) {
  std::lock_guard lock(mu_);
  receipts_[receiver].push_back(std::move(receipt));
}

void AckChecker::Stored(const std::string& conv_id, std::vector<SeenMessage> messages) {
  std::lock_guard lock(mu_);
  stored_[conv_id] = std::move(messages);
}

std::vector<std::string> AckChecker::Check(size_t max_lines) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  StoreIndex index;
  for (const auto& [conv_id, messages] : stored_) CheckConversation(conv_id, messages, index, out);
  CheckStoreWide(stored_, out);
  CheckAckGroups(GroupAcks(acks_), index, out);
  static const std::vector<Receipt> kNone;
  for (const auto& [receiver, conv_id] : expected_) {
    auto r = receipts_.find(receiver);
    CheckReceiver(receiver, conv_id, r == receipts_.end() ? kNone : r->second, index, out);
  }
  if (out.size() > max_lines) {
    const size_t more = out.size() - max_lines;
    out.resize(max_lines);
    out.push_back("... and " + std::to_string(more) + " more");
  }
  return out;
}

AckCheckTotals AckChecker::Totals() const {
  std::lock_guard lock(mu_);
  AckCheckTotals t;
  t.acks = static_cast<int64_t>(acks_.size());
  AckGroups groups = GroupAcks(acks_);
  t.acked_messages = static_cast<int64_t>(groups.size());
  for (const auto& [conv_id, messages] : stored_) {
    t.stored_messages += static_cast<int64_t>(messages.size());
    for (const SeenMessage& m : messages) {
      if (!m.client_msg_id.empty() && !groups.count({m.from, m.client_msg_id})) ++t.stored_unacked;
    }
  }
  for (const auto& [receiver, receipts] : receipts_) {
    t.receipts += static_cast<int64_t>(receipts.size());
    std::set<std::pair<std::string, int64_t>> seen;
    for (const Receipt& r : receipts) {
      if (!seen.emplace(r.message.conv_id, r.message.seq).second) ++t.duplicate_receipts;
    }
  }
  t.receivers = static_cast<int64_t>(expected_.size());
  return t;
}

}  // namespace mpim::testing
