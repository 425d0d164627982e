#include "gateway/message_json.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cmath>

#include "gateway/json.h"

namespace mpim::gateway {
namespace {

void AppendQuoted(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

// True when `v` holds a number that has no JSON text: 1e400 parses as
// infinity, which Boost.JSON would write back as `Infinity`, a frame no
// client could parse. Parsed values are at most 32 levels deep.
bool HasNonFiniteNumber(const boost::json::value& v) {
  if (v.is_double()) return !std::isfinite(v.get_double());
  if (v.is_array()) return std::ranges::any_of(v.get_array(), HasNonFiniteNumber);
  if (v.is_object()) {
    return std::ranges::any_of(v.get_object(),
                               [](const auto& kv) { return HasNonFiniteNumber(kv.value()); });
  }
  return false;
}

}  // namespace

std::string MessageObjectText(const store::Message& m) {
  std::string out;
  out.reserve(160 + m.body.size() + m.conv_id.size() + m.client_msg_id.size());
  out += "{\"msg_id\":\"";
  out += std::to_string(m.msg_id);
  out += "\",\"conv_id\":";
  AppendQuoted(out, m.conv_id);
  out += ",\"seq\":";
  out += std::to_string(m.seq);
  out += ",\"from\":\"";
  out += std::to_string(m.sender);
  out += "\",\"to\":{\"";
  out += m.conv_id.rfind("g:", 0) == 0 ? "group" : "user";
  out += "\":\"";
  out += std::to_string(m.recipient);
  out += "\"},\"type\":";
  AppendQuoted(out, m.type);
  out += ",\"body\":";
  out += m.body.empty() ? std::string("{}") : m.body;
  out += ",\"ts\":";
  out += std::to_string(m.ts);
  out += ",\"client_msg_id\":";
  AppendQuoted(out, m.client_msg_id);
  if (m.recalled) out += ",\"recalled\":true";
  out += '}';
  return out;
}

std::string MessageEventText(const store::Message& m) {
  return "{\"op\":\"msg\",\"msg\":" + MessageObjectText(m) + "}";
}

std::string MessagePageText(const std::string& prefix, const std::vector<store::Message>& messages,
                            bool has_more) {
  std::string out = "{" + prefix + "\"messages\":[";
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i) out += ',';
    out += MessageObjectText(messages[i]);
  }
  out += "],\"has_more\":";
  out += has_more ? "true" : "false";
  out += '}';
  return out;
}

core::StatusOr<service::SendRequest> ParseSendRequest(const boost::json::object& frame) {
  service::SendRequest req;
  const boost::json::value* to = frame.if_contains("to");
  if (!to || !to->is_object()) {
    return absl::InvalidArgumentError("to: required, {\"user\": id} or {\"group\": id}");
  }
  const auto& to_obj = to->get_object();
  const boost::json::value* user = to_obj.if_contains("user");
  const boost::json::value* group = to_obj.if_contains("group");
  if ((user != nullptr) == (group != nullptr)) {
    return absl::InvalidArgumentError("to: exactly one of \"user\" or \"group\"");
  }
  const boost::json::value* id = user ? user : group;
  if (!id->is_string()) return absl::InvalidArgumentError("to: the id must be a decimal string");
  auto parsed = ParseId(std::string_view(id->get_string()), "to");
  if (!parsed.ok()) return parsed.status();
  req.to_group = group != nullptr;
  req.to_id = *parsed;

  auto client_msg_id = RequiredString(frame, "client_msg_id");
  if (!client_msg_id.ok()) return client_msg_id.status();
  req.client_msg_id = std::move(*client_msg_id);

  auto type = OptionalString(frame, "type");
  if (!type.ok()) return type.status();
  req.type = type->value_or("text");

  const boost::json::value* body = frame.if_contains("body");
  if (!body || !body->is_object()) return absl::InvalidArgumentError("body: required, an object");
  if (req.type == "text") {
    const boost::json::value* text = body->get_object().if_contains("text");
    if (!text || !text->is_string()) {
      return absl::InvalidArgumentError("body: a text message needs {\"text\": string}");
    }
  }
  if (HasNonFiniteNumber(*body)) return absl::InvalidArgumentError("body: number out of range");
  req.body = boost::json::serialize(*body);

  if (const boost::json::value* qos = frame.if_contains("qos")) {
    if (!qos->is_int64() || (qos->get_int64() != 0 && qos->get_int64() != 1)) {
      return absl::InvalidArgumentError("qos: must be 0 or 1");
    }
    req.qos1 = qos->get_int64() == 1;
  }
  if (const boost::json::value* priority = frame.if_contains("priority")) {
    if (!priority->is_string()) return absl::InvalidArgumentError("priority: must be a string");
    std::string_view p = priority->get_string();
    if (p == "low") {
      req.priority = service::Priority::kLow;
    } else if (p == "normal") {
      req.priority = service::Priority::kNormal;
    } else if (p == "high") {
      req.priority = service::Priority::kHigh;
    } else if (p == "urgent") {
      req.priority = service::Priority::kUrgent;
    } else {
      return absl::InvalidArgumentError("priority: one of low, normal, high, urgent");
    }
  }
  return req;
}

}  // namespace mpim::gateway
