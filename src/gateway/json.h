// JSON in and out of the HTTP API, with the protocol's error rules: a body
// that is not a JSON object, a missing required field or a field of the
// wrong type is invalid_argument naming the field. Unknown fields are
// ignored. Boost.JSON rejects invalid UTF-8 while parsing.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/callback.h"
#include "core/status.h"
#include "net/http.h"
#include "service/friend_service.h"
#include "service/user_service.h"
#include "store/group_store.h"

namespace mpim::gateway {

// Parses a request body that must be a JSON object.
core::StatusOr<boost::json::object> ParseObject(std::string_view body);

core::StatusOr<std::string> RequiredString(const boost::json::object& obj, std::string_view field);
// Absent or null: nullopt. Present and not a string: invalid_argument.
core::StatusOr<std::optional<std::string>> OptionalString(const boost::json::object& obj,
                                                          std::string_view field);

// A decimal id from a path or query parameter ("1001"), > 0.
core::StatusOr<int64_t> ParseId(std::string_view text, std::string_view what);

// `limit` from the query: 1..page_max, default min(50, page_max).
core::StatusOr<int> ParseLimit(const net::HttpRequest& req, int page_max);

// {user_id, username, display_name, avatar_url, online, last_seen?}.
boost::json::object UserJson(const service::UserProfile& user);

// {group_id, conv_id, name, owner, public, member_count, created_at[, role]}.
boost::json::object GroupJson(const store::Group& g,
                              std::optional<store::GroupRole> role = std::nullopt);

net::HttpResponse JsonResponse(int status, const boost::json::value& body);

// A service callback answering 204 on success, the error body otherwise.
core::DoneCallback ReplyNoContent(net::HttpResponder respond);

}  // namespace mpim::gateway
