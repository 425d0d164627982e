// What the edge's nghttp2 users share (h2_session.cc: HTTP/2 clients;
// h2_upstream.cc: HTTP/2 upstreams; grpc_health.cc: gRPC health checks):
// name/value pairs that point into strings the caller keeps (nghttp2 copies
// them on submit), a callbacks table made once, and the loop that takes
// what a session has to send into one buffer for one write.
#pragma once

#include <nghttp2/nghttp2.h>

#include <string>
#include <string_view>

namespace mpim::edge {

inline nghttp2_nv H2Nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

struct H2CallbackSet {
  nghttp2_on_begin_headers_callback begin_headers = nullptr;
  nghttp2_on_header_callback header = nullptr;
  nghttp2_on_frame_recv_callback frame = nullptr;
  nghttp2_on_data_chunk_recv_callback data = nullptr;
  nghttp2_on_stream_close_callback stream_close = nullptr;
};

// A callbacks table (never freed: one per kind of session, made once).
inline const nghttp2_session_callbacks* NewH2Callbacks(const H2CallbackSet& set) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  if (set.begin_headers)
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, set.begin_headers);
  if (set.header) nghttp2_session_callbacks_set_on_header_callback(cb, set.header);
  if (set.frame) nghttp2_session_callbacks_set_on_frame_recv_callback(cb, set.frame);
  if (set.data) nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, set.data);
  if (set.stream_close)
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, set.stream_close);
  return cb;
}

// Appends what `session` has to send to `out`, up to about `limit` bytes;
// 0, or nghttp2's error.
inline ssize_t TakeH2Output(nghttp2_session* session, std::string& out, size_t limit) {
  while (out.size() < limit) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session, &data);
    if (n <= 0) return n;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace mpim::edge
