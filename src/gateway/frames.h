// The text of every frame the server writes to a WebSocket session
// (docs/protocol.md section 3), in one place. Message objects and pages are
// in gateway/message_json.h. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/conversation_store.h"

namespace mpim::gateway::frames {

// A JSON string literal for `s` (quotes and escapes included).
std::string Quoted(std::string_view s);

// `"op":"reply",` and `"rid":N,` when there is a rid: the start of a reply
// object without its brace.
std::string ReplyPrefix(std::optional<int64_t> rid);
// {"op":"reply","rid":N,"ok":true[,<fields>]}; `fields` is JSON members
// text without braces (may be empty).
std::string ReplyOk(std::optional<int64_t> rid, std::string_view fields);
// `"op":"reply",["rid":N,]"ok":true,`: the start of an ok reply whose
// fields follow (sync pages).
std::string ReplyOkPrefix(std::optional<int64_t> rid);
// {"op":"reply"[,"rid":N],"ok":false,"error":{"code","message"[,...]}}.
std::string ReplyError(std::optional<int64_t> rid, const core::Status& status);

// The hello fields: "user_id","session_id","conversations":[...].
std::string HelloFields(int64_t user_id, int64_t session_id,
                        const std::vector<store::PendingConversation>& pending);
// {"op":"hello",<fields>}.
std::string Hello(std::string_view fields);
// The fields of a send's reply: "msg_id","conv_id","seq","ts".
std::string SendResultFields(int64_t msg_id, std::string_view conv_id, int64_t seq, int64_t ts);
// The fields of a ping's reply ("ts") and a read's ("read_seq").
std::string PingFields(int64_t now_ms);
std::string ReadFields(int64_t read_seq);

std::string Presence(int64_t user, bool online, int64_t last_seen);  // last_seen 0: omitted
std::string Receipt(std::string_view conv_id, int64_t reader, int64_t read_seq);
std::string Typing(std::string_view conv_id, int64_t user);
std::string Conv(std::string_view conv_id, std::string_view event);
std::string Recall(std::string_view conv_id, int64_t seq, int64_t msg_id);
std::string Kick(std::string_view reason);

}  // namespace mpim::gateway::frames
