#include "gateway/frames.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

namespace mpim::gateway::frames {

std::string Quoted(std::string_view s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

std::string ReplyPrefix(std::optional<int64_t> rid) {
  std::string out = "\"op\":\"reply\",";
  if (rid) out += "\"rid\":" + std::to_string(*rid) + ",";
  return out;
}

std::string ReplyOk(std::optional<int64_t> rid, std::string_view fields) {
  std::string text = "{" + ReplyPrefix(rid) + "\"ok\":true";
  if (!fields.empty()) (text += ",") += fields;
  return text + "}";
}

std::string ReplyOkPrefix(std::optional<int64_t> rid) {
  return ReplyPrefix(rid) + "\"ok\":true,";
}

std::string PingFields(int64_t now_ms) { return "\"ts\":" + std::to_string(now_ms); }

std::string ReadFields(int64_t read_seq) { return "\"read_seq\":" + std::to_string(read_seq); }

std::string ReplyError(std::optional<int64_t> rid, const core::Status& status) {
  return "{" + ReplyPrefix(rid) + "\"ok\":false,\"error\":" + core::ErrorObjectJson(status) + "}";
}

std::string HelloFields(int64_t user_id, int64_t session_id,
                        const std::vector<store::PendingConversation>& pending) {
  std::string fields = "\"user_id\":\"" + std::to_string(user_id) + "\",\"session_id\":\"" +
                       std::to_string(session_id) + "\",\"conversations\":[";
  bool first = true;
  for (const auto& p : pending) {
    if (!first) fields += ',';
    first = false;
    fields += "{\"conv_id\":" + Quoted(p.conv_id) + ",\"last_seq\":" + std::to_string(p.last_seq) +
              ",\"read_seq\":" + std::to_string(p.read_seq) + "}";
  }
  return fields + "]";
}

std::string Hello(std::string_view fields) {
  return "{\"op\":\"hello\"," + std::string(fields) + "}";
}

std::string SendResultFields(int64_t msg_id, std::string_view conv_id, int64_t seq, int64_t ts) {
  return "\"msg_id\":\"" + std::to_string(msg_id) + "\",\"conv_id\":" + Quoted(conv_id) +
         ",\"seq\":" + std::to_string(seq) + ",\"ts\":" + std::to_string(ts);
}

std::string Presence(int64_t user, bool online, int64_t last_seen) {
  std::string text = "{\"op\":\"presence\",\"user\":\"" + std::to_string(user) +
                     "\",\"online\":" + (online ? "true" : "false");
  if (last_seen > 0) text += ",\"last_seen\":" + std::to_string(last_seen);
  return text + "}";
}

std::string Receipt(std::string_view conv_id, int64_t reader, int64_t read_seq) {
  return "{\"op\":\"receipt\",\"conv_id\":" + Quoted(conv_id) + ",\"user\":\"" +
         std::to_string(reader) + "\",\"read_seq\":" + std::to_string(read_seq) + "}";
}

std::string Typing(std::string_view conv_id, int64_t user) {
  return "{\"op\":\"typing\",\"conv_id\":" + Quoted(conv_id) + ",\"user\":\"" +
         std::to_string(user) + "\"}";
}

std::string Conv(std::string_view conv_id, std::string_view event) {
  return "{\"op\":\"conv\",\"conv_id\":" + Quoted(conv_id) + ",\"event\":" + Quoted(event) + "}";
}

std::string Recall(std::string_view conv_id, int64_t seq, int64_t msg_id) {
  return "{\"op\":\"recall\",\"conv_id\":" + Quoted(conv_id) + ",\"seq\":" + std::to_string(seq) +
         ",\"msg_id\":\"" + std::to_string(msg_id) + "\"}";
}

std::string Kick(std::string_view reason) {
  return "{\"op\":\"kick\",\"reason\":" + Quoted(reason) + "}";
}

}  // namespace mpim::gateway::frames
