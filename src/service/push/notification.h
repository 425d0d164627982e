// The notification's JSON (protocol.md section 4), shared by the providers:
// {"conv_id":"p:1001:1002","seq":7,"msg_id":"...","from":"1001",
//  "preview":"...","badge":3}; ids as decimal strings, preview only when set.
#pragma once

#include <string>
#include <string_view>

#include "service/push/provider.h"

namespace mpim::service::push {

std::string NotificationJson(const Notification& n);

// The start of a text body for `preview`: at most `max_chars` UTF-8
// characters (never a split character), an ellipsis appended when cut.
std::string PreviewOf(std::string_view body, size_t max_chars = 100);

}  // namespace mpim::service::push
