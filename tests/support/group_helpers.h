// Helpers for the end-to-end suites of groups, conversations, read state,
// recall and search (docs/protocol.md sections 2 and 3,
// docs/protocol.md section 2 "Groups" and "Recall and search"): typed REST calls for
// groups, paged history, conversation listings, search, bulk account
// creation with parallel HTTP clients, and group sends over WebSocket.
//
// Everything records gtest failures for answers that break the documented
// shapes and returns empty values then, so a test goes on to report more.
// Not thread-safe unless said otherwise (RegisterMany, LoginMany run their
// own clients on their own threads).
#pragma once

#include <gtest/gtest.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "support/api_client.h"
#include "support/ws_helpers.h"

namespace mpim::testing {

struct GroupRef {
  std::string group_id;
  std::string conv_id;  // "g:<group_id>"
};

// `["1","2"]`: user ids as a JSON array of strings.
std::string IdsJson(const std::vector<std::string>& ids);

// PUT under the /api/v1 prefix (ApiClient has no shorthand for it).
ApiResponse Put(ApiClient& api, const std::string& path, const std::string& body,
                const std::string& token);

// POST /groups; a recorded failure (and an empty ref) unless it answers 201
// {group_id: decimal string, conv_id: "g:<group_id>"}.
GroupRef CreateGroup(ApiClient& api, const std::string& token, const std::string& name,
                     const std::vector<std::string>& members = {}, bool is_public = false);

// POST /groups/{id}/members {user_ids}.
ApiResponse AddMembers(ApiClient& api, const std::string& token, const std::string& group_id,
                       const std::vector<std::string>& user_ids);
// DELETE /groups/{id}/members/{user_id}.
ApiResponse RemoveMember(ApiClient& api, const std::string& token, const std::string& group_id,
                         const std::string& user_id);
// PUT /groups/{id}/members/{user_id}/role {role}.
ApiResponse SetRole(ApiClient& api, const std::string& token, const std::string& group_id,
                    const std::string& user_id, const std::string& role);

// Success when `v` is a group object of docs/protocol.md: group_id (decimal),
// conv_id "g:<group_id>", name, owner (decimal), public (bool),
// member_count (>= 1), created_at (> 0), and role, when present, one of
// owner/admin/member.
::testing::AssertionResult IsGroupObject(const boost::json::value& v);

// GET /groups/{id} as `token`; the group object, or an empty object with a
// recorded failure when not 200.
boost::json::object GetGroup(ApiClient& api, const std::string& token, const std::string& group_id);

// Every member through GET /groups/{id}/members pages of `limit`:
// [{user, role, joined_at}...] in the order served.
std::vector<boost::json::object> AllMembers(ApiClient& api, const std::string& token,
                                            const std::string& group_id, int limit = 200);

// Every message of `conv_id` after `after_seq` through REST history pages
// (ascending). A recorded failure on anything but 200.
std::vector<boost::json::object> History(ApiClient& api, const std::string& token,
                                         const std::string& conv_id, int64_t after_seq = 0);

// The conversation array of a GET /conversations answer (protocol.md: a JSON
// array); a recorded failure otherwise.
boost::json::array ConversationList(const ApiResponse& r);
// The listed entry of `conv_id`, or an empty object with a recorded failure.
boost::json::object FindConv(const boost::json::array& list, const std::string& conv_id);
// The conv_ids of a listing, in order.
std::vector<std::string> ConvIds(const boost::json::array& list);

// GET /search/messages with these (unencoded) parameters; `conv_id` and
// `limit` are left out when empty / 0.
ApiResponse Search(ApiClient& api, const std::string& token, const std::string& q,
                   const std::string& conv_id = "", int limit = 0);
// The msg_ids of a 200 search answer ({messages: [Message...]}), in order;
// a recorded failure for another answer.
std::vector<std::string> SearchIds(const ApiResponse& r);

// Polls `probe` (about every 20 ms) until it returns true or `deadline`
// passes; the result of the last probe. For state the server reaches
// asynchronously (search indexing), never as a stand-in for an event.
bool PollUntil(const std::function<bool()>& probe, std::chrono::milliseconds deadline);

// A `send` frame (no rid) of a text message to a group.
boost::json::object GroupTextSend(const std::string& group_id, const std::string& client_msg_id,
                                  const std::string& text);

// Pipelines `n` group text sends "<prefix>-<i>" (client_msg_id and text,
// i from 1) and waits for every reply; the replies in send order, or fewer
// with a recorded failure.
std::vector<boost::json::object> SendGroupMany(WsConn& ws, const std::string& group_id,
                                               const std::string& prefix, int n, int batch = 100);

// Registers `n` accounts "<prefix>_..." with `threads` parallel HTTP
// clients; with `login`, each one is also logged in (Account::session).
// Thread-safe. Records failures; the accounts in index order.
std::vector<Account> RegisterMany(uint16_t port, std::string_view prefix, int n, int threads,
                                  bool login);

// True when `m` is a system message whose body.event is `event` about
// `user` (any user when empty): body.user is `user`, or body.users (a bulk
// add) holds it.
bool IsSystemEvent(const boost::json::object& m, std::string_view event,
                   std::string_view user = "");
// The messages of `messages` for which IsSystemEvent holds.
std::vector<boost::json::object> SystemMessages(const std::vector<boost::json::object>& messages,
                                                std::string_view event, std::string_view user = "");

// The seqs of `messages`, in order.
std::vector<int64_t> Seqs(const std::vector<boost::json::object>& messages);

// Reads msg events of `conv_id` from `ws` until every seq of `want` has
// arrived or `timeout` passes; acks each one. Returns every seq received
// for `conv_id` in arrival order (duplicates included). Other frames stay
// buffered.
std::vector<int64_t> CollectSeqs(WsConn& ws, const std::string& conv_id,
                                 const std::set<int64_t>& want, Ms timeout);

// The hello entry of `conv_id`, or nullopt when not listed.
std::optional<boost::json::object> HelloConv(const WsConn& ws, const std::string& conv_id);

}  // namespace mpim::testing
