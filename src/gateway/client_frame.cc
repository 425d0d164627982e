#include "gateway/client_frame.h"

#include <boost/json/parse.hpp>

namespace mpim::gateway {

core::Status DecodeClientFrame(std::string_view text, ClientFrame& out) {
  out = ClientFrame{};
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 32;
  boost::json::value v =
      boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) return absl::InvalidArgumentError("frame: invalid JSON");
  if (!v.is_object()) return absl::InvalidArgumentError("frame: must be a JSON object");
  out.fields = std::move(v.get_object());
  if (const boost::json::value* r = out.fields.if_contains("rid"); r && !r->is_null()) {
    if (!r->is_int64()) return absl::InvalidArgumentError("rid: must be an integer");
    out.rid = r->get_int64();
  }
  const boost::json::value* op = out.fields.if_contains("op");
  if (!op || !op->is_string()) return absl::InvalidArgumentError("op: required, a string");
  out.op = std::string(op->get_string());
  return absl::OkStatus();
}

}  // namespace mpim::gateway
