// The protocol's Message object and the parsing of a `send` (shared by the
// WebSocket `send` op and `POST /api/v1/messages`).
#pragma once

#include <boost/json/object.hpp>
#include <string>

#include "core/status.h"
#include "service/message_service.h"
#include "store/message_store.h"

namespace mpim::gateway {

// {"msg_id","conv_id","seq","from","to","type","body","ts","client_msg_id"
// [,"recalled":true]} as JSON text. The stored body (already valid JSON) is
// spliced in as is, without re-parsing.
std::string MessageObjectText(const store::Message& m);

// {"op":"msg","msg":<Message>}: encoded once per message, shared by every
// recipient connection.
std::string MessageEventText(const store::Message& m);

// {"messages":[...],"has_more":b} (sync replies and REST history), with the
// `op`/`rid`/`ok` prefix given (may be empty).
std::string MessagePageText(const std::string& prefix, const std::vector<store::Message>& messages,
                            bool has_more);

// Reads to, client_msg_id, type, body, qos and priority; checks the body's
// shape for the type (text: {"text": string}; custom: an object).
core::StatusOr<service::SendRequest> ParseSendRequest(const boost::json::object& frame);

}  // namespace mpim::gateway
