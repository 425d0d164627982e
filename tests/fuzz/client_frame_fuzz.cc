// Fuzz target: one WebSocket text frame from a client, through the decoder
// and, for sends, the send parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/client_frame.h"
#include "gateway/message_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  mpim::gateway::ClientFrame frame;
  if (mpim::gateway::DecodeClientFrame(text, frame).ok()) {
    (void)mpim::gateway::ParseSendRequest(frame.fields);
  }
  return 0;
}
