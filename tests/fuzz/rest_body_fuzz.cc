// Fuzz target: a REST request body through the JSON helpers every handler
// uses, and the send parser of POST /api/v1/messages.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/json.h"
#include "gateway/message_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto obj = mpim::gateway::ParseObject(body);
  if (!obj.ok()) return 0;
  (void)mpim::gateway::RequiredString(*obj, "username");
  (void)mpim::gateway::OptionalString(*obj, "display_name");
  (void)mpim::gateway::ParseSendRequest(*obj);
  if (auto id = mpim::gateway::RequiredString(*obj, "id"); id.ok()) {
    (void)mpim::gateway::ParseId(*id, "id");
  }
  return 0;
}
