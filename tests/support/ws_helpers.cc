#include "support/ws_helpers.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "support/api_client.h"

namespace mpim::testing {


namespace json = boost::json;
using client::WsClock;
using client::WsFrame;

const char* WsAuthName(WsAuth how) {
  switch (how) {
    case WsAuth::kHeader:
      return "header";
    case WsAuth::kQuery:
      return "query";
    case WsAuth::kFrame:
      return "frame";
  }
  return "?";
}

WsConn::WsConn(uint16_t port, client::WsOptions options)
    : port_(port), client_(std::make_unique<client::WsClient>(options)) {}

WsConn::~WsConn() = default;

core::Status WsConn::Connect(const std::string& target,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  auto s = client_->Connect("127.0.0.1", port_, target, headers);
  if (!s.ok()) last_error_ = s.ToString();
  return s;
}

::testing::AssertionResult WsConn::Open(const std::string& token, WsAuth how) {
  core::Status s;
  switch (how) {
    case WsAuth::kHeader:
      s = Connect("/ws", {{"Authorization", "Bearer " + token}});
      break;
    case WsAuth::kQuery:
      s = Connect("/ws?token=" + UrlEncode(token));
      break;
    case WsAuth::kFrame:
      s = Connect("/ws");
      break;
  }
  if (!s.ok()) {
    return ::testing::AssertionFailure() << "connect (" << WsAuthName(how) << "): " << s;
  }
  std::optional<json::object> first;
  if (how == WsAuth::kFrame) {
    json::object auth{{"op", "auth"}, {"token", token}};
    first = Request(std::move(auth));
    if (!first) return ::testing::AssertionFailure() << "no auth reply: " << last_error_;
    if (auto ok = IsOkReply(first); !ok) return ok << " (auth reply)";
  } else {
    first = NextFrame();
    if (!first) return ::testing::AssertionFailure() << "no hello: " << last_error_;
    if (Str(*first, "op") != "hello") {
      return ::testing::AssertionFailure()
             << "first frame is not hello: " << json::serialize(*first);
    }
  }
  hello_ = *first;
  if (!IsDecimalId(Str(hello_, "user_id")) || !IsDecimalId(Str(hello_, "session_id")) ||
      !Arr(hello_, "conversations")) {
    return ::testing::AssertionFailure()
           << "hello fields missing (user_id, session_id, conversations): "
           << json::serialize(hello_);
  }
  return ::testing::AssertionSuccess();
}

std::optional<int64_t> WsConn::HelloLastSeq(const std::string& conv_id) const {
  const json::array* convs = Arr(hello_, "conversations");
  if (!convs) return std::nullopt;
  for (const auto& c : *convs) {
    if (c.is_object() && Str(c.as_object(), "conv_id") == conv_id) {
      return Int(c.as_object(), "last_seq");
    }
  }
  return std::nullopt;
}

bool WsConn::Send(const json::object& frame) { return SendText(json::serialize(frame)); }

bool WsConn::SendText(const std::string& text) {
  auto s = client_->SendText(text);
  if (!s.ok()) {
    last_error_ = "send: " + s.ToString();
    return false;
  }
  return true;
}

std::optional<json::object> WsConn::Request(json::object frame, Ms timeout) {
  int64_t rid;
  if (const auto* r = frame.if_contains("rid"); r && r->is_int64()) {
    rid = r->as_int64();
  } else {
    rid = NextRid();
    frame["rid"] = rid;
  }
  if (!Send(frame)) return std::nullopt;
  return ReplyTo(rid, timeout);
}

std::optional<json::object> WsConn::ReplyTo(int64_t rid, Ms timeout) {
  return Take(
      [rid](const json::object& f) {
        const auto* r = f.if_contains("rid");
        return Str(f, "op") == "reply" && r && r->is_int64() && r->as_int64() == rid;
      },
      timeout);
}

std::optional<json::object> WsConn::NextEvent(std::string_view op, Ms timeout) {
  return Take([op](const json::object& f) { return Str(f, "op") == op; }, timeout);
}

std::optional<json::object> WsConn::NextMsg(std::string_view conv_id, Ms timeout) {
  return Take(
      [conv_id](const json::object& f) {
        return Str(f, "op") == "msg" && Str(MsgOf(f), "conv_id") == conv_id;
      },
      timeout);
}

std::optional<json::object> WsConn::NextFrame(Ms timeout) {
  return Take([](const json::object&) { return true; }, timeout);
}

std::vector<json::object> WsConn::Drain(std::string_view op, Ms window) {
  auto deadline = WsClock::now() + window;
  while (WsClock::now() < deadline && ReadOne(deadline)) {
  }
  std::vector<json::object> out;
  for (auto it = buffered_.begin(); it != buffered_.end();) {
    if (Str(*it, "op") == op) {
      out.push_back(std::move(*it));
      it = buffered_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::optional<int> WsConn::CloseCode(Ms timeout) {
  auto deadline = WsClock::now() + timeout;
  while (!closed_ && ReadOne(deadline)) {
  }
  if (!closed_ && last_error_.empty()) last_error_ = "no close within the deadline";
  return close_code_;
}

bool WsConn::Ack(const std::string& conv_id, int64_t seq) {
  return Send(json::object{{"op", "ack"}, {"conv_id", conv_id}, {"seq", seq}});
}

bool WsConn::ReadOne(WsClock::time_point deadline) {
  if (closed_) return false;
  WsFrame f = client_->Receive(deadline);
  switch (f.kind) {
    case WsFrame::kText: {
      boost::system::error_code ec;
      json::value v = json::parse(f.data, ec);
      if (ec || !v.is_object()) {
        ADD_FAILURE() << "server sent a frame that is not a JSON object: " << f.data.substr(0, 500);
        return true;
      }
      buffered_.push_back(std::move(v.as_object()));
      return true;
    }
    case WsFrame::kBinary:
      ADD_FAILURE() << "server sent a binary frame (" << f.data.size() << " bytes)";
      return true;
    case WsFrame::kClosed:
      closed_ = true;
      close_code_ = f.close_code;
      close_reason_ = f.reason;
      last_error_ = "closed with " + std::to_string(f.close_code) + " " + f.reason;
      return false;
    case WsFrame::kTimeout:
      last_error_ = "timed out";
      return false;
    case WsFrame::kError:
      closed_ = true;
      last_error_ = "connection lost without a close frame: " + f.error;
      return false;
  }
  return false;
}

template <typename Pred>
std::optional<json::object> WsConn::Take(Pred pred, Ms timeout) {
  auto deadline = WsClock::now() + timeout;
  size_t scanned = 0;
  for (;;) {
    for (; scanned < buffered_.size(); ++scanned) {
      if (pred(buffered_[scanned])) {
        json::object out = std::move(buffered_[scanned]);
        buffered_.erase(buffered_.begin() + static_cast<std::ptrdiff_t>(scanned));
        return out;
      }
    }
    if (!ReadOne(deadline)) return std::nullopt;
  }
}

std::vector<std::pair<std::string, std::string>> WsEnv(
    std::vector<std::pair<std::string, std::string>> extra) {
  auto env = FastAuthEnv();
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::string Str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t Int(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_uint64() && v->as_uint64() <= INT64_MAX)
    return static_cast<int64_t>(v->as_uint64());
  return -1;
}

const json::object* Obj(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

const json::array* Arr(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->as_array() : nullptr;
}

std::string PrivateConvId(const std::string& a, const std::string& b) {
  auto less = [](const std::string& x, const std::string& y) {
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  };
  return less(a, b) ? "p:" + a + ":" + b : "p:" + b + ":" + a;
}

::testing::AssertionResult Pings(WsConn& ws) {
  auto r = ws.Request(json::object{{"op", "ping"}});
  if (auto ok = IsOkReply(r); !ok) return ok << " (ping; " << ws.last_error() << ")";
  if (Int(*r, "ts") <= 0) {
    return ::testing::AssertionFailure() << "ping reply without ts: " << json::serialize(*r);
  }
  return ::testing::AssertionSuccess();
}

json::object TextSend(const std::string& to_user, const std::string& client_msg_id,
                      const std::string& text) {
  return json::object{{"op", "send"},
                      {"to", json::object{{"user", to_user}}},
                      {"client_msg_id", client_msg_id},
                      {"type", "text"},
                      {"body", json::object{{"text", text}}}};
}

::testing::AssertionResult IsOkReply(const std::optional<json::object>& reply) {
  if (!reply) return ::testing::AssertionFailure() << "no reply";
  const auto* ok = reply->if_contains("ok");
  if (Str(*reply, "op") != "reply" || !ok || !ok->is_bool() || !ok->as_bool()) {
    return ::testing::AssertionFailure() << "not an ok reply: " << json::serialize(*reply);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsErrorReply(const std::optional<json::object>& reply,
                                        std::string_view code) {
  if (!reply) return ::testing::AssertionFailure() << "no reply (wanted " << code << ")";
  const auto* ok = reply->if_contains("ok");
  const json::object* err = Obj(*reply, "error");
  if (Str(*reply, "op") != "reply" || !ok || !ok->is_bool() || ok->as_bool() || !err ||
      Str(*err, "code") != code || !err->contains("message") || !err->at("message").is_string()) {
    return ::testing::AssertionFailure()
           << "not a " << code << " error reply: " << json::serialize(*reply);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsMessage(const json::value& v) {
  if (!v.is_object()) return ::testing::AssertionFailure() << "not an object: " << v;
  const auto& m = v.as_object();
  const json::object* to = Obj(m, "to");
  bool to_ok =
      to && to->size() == 1 && (IsDecimalId(Str(*to, "user")) || IsDecimalId(Str(*to, "group")));
  if (!IsDecimalId(Str(m, "msg_id")) || Str(m, "conv_id").empty() || Int(m, "seq") < 1 ||
      !IsDecimalId(Str(m, "from")) || !to_ok || Str(m, "type").empty() || !Obj(m, "body") ||
      Int(m, "ts") <= 0 || !m.contains("client_msg_id") || !m.at("client_msg_id").is_string()) {
    return ::testing::AssertionFailure() << "not a Message object: " << json::serialize(m);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsSendResult(const std::optional<json::object>& reply) {
  if (auto ok = IsOkReply(reply); !ok) return ok;
  const auto& r = *reply;
  if (!IsDecimalId(Str(r, "msg_id")) || Str(r, "conv_id").empty() || Int(r, "seq") < 1 ||
      Int(r, "ts") <= 0) {
    return ::testing::AssertionFailure()
           << "send reply lacks {msg_id, conv_id, seq, ts}: " << json::serialize(r);
  }
  return ::testing::AssertionSuccess();
}

json::object MsgOf(const json::object& event) {
  const json::object* m = Obj(event, "msg");
  return m ? *m : json::object{};
}

std::vector<json::object> SyncAll(WsConn& conn, const std::string& conv_id, int64_t after_seq,
                                  int64_t limit, int max_pages) {
  std::vector<json::object> out;
  for (int page = 0; page < max_pages; ++page) {
    auto r = conn.Request(json::object{
        {"op", "sync"}, {"conv_id", conv_id}, {"after_seq", after_seq}, {"limit", limit}});
    if (!IsOkReply(r)) {
      ADD_FAILURE() << "sync " << conv_id << " after " << after_seq << ": "
                    << IsOkReply(r).message();
      return out;
    }
    const json::array* msgs = Arr(*r, "messages");
    const auto* more = r->if_contains("has_more");
    if (!msgs || !more || !more->is_bool()) {
      ADD_FAILURE() << "sync reply lacks messages/has_more: " << json::serialize(*r);
      return out;
    }
    if (static_cast<int64_t>(msgs->size()) > limit) {
      ADD_FAILURE() << "sync returned " << msgs->size() << " > limit " << limit;
    }
    for (const auto& m : *msgs) {
      if (!m.is_object()) {
        ADD_FAILURE() << "sync message is not an object";
        return out;
      }
      out.push_back(m.as_object());
      after_seq = Int(m.as_object(), "seq");
    }
    if (!more->as_bool()) return out;
    if (msgs->empty()) {
      ADD_FAILURE() << "sync: has_more with an empty page";
      return out;
    }
  }
  ADD_FAILURE() << "sync: more than " << max_pages << " pages";
  return out;
}

}  // namespace mpim::testing
