#include "service/push/notification.h"

#include <boost/json.hpp>

namespace mpim::service::push {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kTokenGone:
      return "token_gone";
    case Outcome::kRetry:
      return "retry";
    case Outcome::kRejected:
      return "rejected";
  }
  return "unknown";
}

std::string NotificationJson(const Notification& n) {
  boost::json::object o;
  o["conv_id"] = n.conv_id;
  o["seq"] = n.seq;
  o["msg_id"] = std::to_string(n.msg_id);
  o["from"] = std::to_string(n.from);
  if (n.preview) o["preview"] = *n.preview;
  o["badge"] = n.badge;
  return boost::json::serialize(o);
}

std::string PreviewOf(std::string_view body, size_t max_chars) {
  size_t chars = 0;
  size_t i = 0;
  while (i < body.size()) {
    if (chars == max_chars) return std::string(body.substr(0, i)) + "\xE2\x80\xA6";
    const auto c = static_cast<unsigned char>(body[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 4;
    i += len;
    ++chars;
  }
  return std::string(body);
}

}  // namespace mpim::service::push
