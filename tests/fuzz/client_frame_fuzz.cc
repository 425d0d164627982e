// Fuzz target: one WebSocket text frame from a client, through the decoder
// and, for sends, the send parser and the traceparent a send may carry (the
// raw bytes as a traceparent too: HTTP's header takes any value). Also the
// bytes as a bus envelope (gateway/envelope.h), read by every gateway.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/trace.h"
#include "gateway/client_frame.h"
#include "gateway/envelope.h"
#include "gateway/message_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  mpim::gateway::ClientFrame frame;
  if (mpim::gateway::DecodeClientFrame(text, frame).ok()) {
    (void)mpim::gateway::ParseSendRequest(frame.fields);
    if (const auto* tp = frame.fields.if_contains("traceparent"); tp && tp->is_string()) {
      auto parsed = mpim::core::trace::SpanContext::Parse(std::string_view(tp->get_string()));
      if (parsed && parsed->Traceparent().size() != 55) __builtin_trap();
    }
  }
  if (auto parsed = mpim::core::trace::SpanContext::Parse(text)) {
    // What parses formats back to a version-00 traceparent that parses the same.
    auto again = mpim::core::trace::SpanContext::Parse(parsed->Traceparent());
    if (!again || !(*again == *parsed)) __builtin_trap();
  }
  if (auto envelope = mpim::gateway::Envelope::Decode(text)) {
    // What decodes encodes to bytes that decode the same.
    auto again = mpim::gateway::Envelope::Decode(envelope->Encode());
    if (!again || again->conns != envelope->conns || again->msgs.size() != envelope->msgs.size() ||
        !(again->trace == envelope->trace)) {
      __builtin_trap();
    }
  }
  return 0;
}
