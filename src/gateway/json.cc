#include "gateway/json.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

namespace mpim::gateway {

core::StatusOr<boost::json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) return absl::InvalidArgumentError("body: invalid JSON (" + ec.message() + ")");
  if (!v.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  return std::move(v.get_object());
}

core::StatusOr<std::string> RequiredString(const boost::json::object& obj, std::string_view field) {
  const boost::json::value* v = obj.if_contains(field);
  if (!v || v->is_null()) {
    return absl::InvalidArgumentError(std::string(field) + ": required");
  }
  if (!v->is_string()) return absl::InvalidArgumentError(std::string(field) + ": must be a string");
  return std::string(v->get_string());
}

core::StatusOr<std::optional<std::string>> OptionalString(const boost::json::object& obj,
                                                          std::string_view field) {
  const boost::json::value* v = obj.if_contains(field);
  if (!v || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return absl::InvalidArgumentError(std::string(field) + ": must be a string");
  return std::optional<std::string>(std::string(v->get_string()));
}

core::StatusOr<int64_t> ParseId(std::string_view text, std::string_view what) {
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return absl::InvalidArgumentError(std::string(what) + ": must be a decimal id");
  }
  return id;
}

core::StatusOr<int> ParseLimit(const net::HttpRequest& req, int page_max) {
  auto text = req.Query("limit");
  if (!text) return std::min(50, page_max);
  int limit = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
  if (ec != std::errc() || ptr != text->data() + text->size() || limit < 1 || limit > page_max) {
    return absl::InvalidArgumentError("limit: must be an integer between 1 and " +
                                      std::to_string(page_max));
  }
  return limit;
}

boost::json::object UserJson(const service::UserProfile& user) {
  boost::json::object o;
  o["user_id"] = std::to_string(user.user_id);
  o["username"] = user.username;
  o["display_name"] = user.display_name;
  o["avatar_url"] = user.avatar_url;
  o["online"] = user.online;
  if (user.last_seen > 0) o["last_seen"] = user.last_seen;
  return o;
}

boost::json::object GroupJson(const store::Group& g, std::optional<store::GroupRole> role) {
  boost::json::object o{{"group_id", std::to_string(g.group_id)},
                        {"conv_id", g.conv_id},
                        {"name", g.name},
                        {"owner", std::to_string(g.owner_id)},
                        {"public", g.is_public},
                        {"member_count", g.member_count},
                        {"created_at", g.created_at}};
  if (role) o["role"] = store::GroupRoleName(*role);
  return o;
}

core::DoneCallback ReplyNoContent(net::HttpResponder respond) {
  return [respond = std::move(respond)](core::Status s) mutable {
    if (!s.ok()) return respond(net::HttpResponse::Error(s));
    respond(net::HttpResponse::NoContent());
  };
}

net::HttpResponse JsonResponse(int status, const boost::json::value& body) {
  return net::HttpResponse::Json(status, boost::json::serialize(body));
}

}  // namespace mpim::gateway
