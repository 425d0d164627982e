#include "support/otlp_receiver.h"

#include <boost/json.hpp>
#include <condition_variable>
#include <mutex>
#include <set>

#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/router.h"

namespace mpim::testing {
namespace {

namespace json = boost::json;

bool IsHex(const json::value* v, size_t digits) {
  if (!v || !v->is_string()) return false;
  const json::string& s = v->get_string();
  if (s.size() != digits) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool Nanos(const json::value* v, int64_t& out) {
  if (!v || !v->is_string()) return false;  // 64-bit integers are strings in OTLP JSON
  try {
    out = std::stoll(std::string(v->get_string()));
  } catch (...) {
    return false;
  }
  return true;
}

// attributes: [{key, value: {stringValue|intValue|doubleValue|boolValue}}]
bool Attributes(const json::value* v, std::map<std::string, std::string>& out) {
  if (!v) return true;
  if (!v->is_array()) return false;
  for (const json::value& a : v->get_array()) {
    if (!a.is_object()) return false;
    const auto* key = a.get_object().if_contains("key");
    const auto* value = a.get_object().if_contains("value");
    if (!key || !key->is_string() || !value || !value->is_object()) return false;
    const json::object& o = value->get_object();
    std::string text;
    if (const auto* s = o.if_contains("stringValue"); s && s->is_string()) {
      text = std::string(s->get_string());
    } else if (const auto* i = o.if_contains("intValue"); i && i->is_string()) {
      text = std::string(i->get_string());
    } else if (const auto* d = o.if_contains("doubleValue"); d && d->is_number()) {
      text = std::to_string(d->to_number<double>());
    } else if (const auto* b = o.if_contains("boolValue"); b && b->is_bool()) {
      text = b->get_bool() ? "true" : "false";
    } else {
      return false;
    }
    out[std::string(key->get_string())] = text;
  }
  return true;
}

bool ParseRequest(const std::string& body, std::vector<ReceivedSpan>& out) {
  boost::system::error_code ec;
  json::value root = json::parse(body, ec);
  if (ec || !root.is_object()) return false;
  const auto* resource_spans = root.get_object().if_contains("resourceSpans");
  if (!resource_spans || !resource_spans->is_array()) return false;
  for (const json::value& rs : resource_spans->get_array()) {
    if (!rs.is_object()) return false;
    std::map<std::string, std::string> resource;
    if (const auto* r = rs.get_object().if_contains("resource")) {
      if (!r->is_object() || !Attributes(r->get_object().if_contains("attributes"), resource)) {
        return false;
      }
    }
    const auto* scopes = rs.get_object().if_contains("scopeSpans");
    if (!scopes || !scopes->is_array()) return false;
    for (const json::value& ss : scopes->get_array()) {
      if (!ss.is_object()) return false;
      const auto* spans = ss.get_object().if_contains("spans");
      if (!spans || !spans->is_array()) return false;
      for (const json::value& sv : spans->get_array()) {
        if (!sv.is_object()) return false;
        const json::object& s = sv.get_object();
        ReceivedSpan span;
        span.resource = resource;
        if (!IsHex(s.if_contains("traceId"), 32) || !IsHex(s.if_contains("spanId"), 16)) {
          return false;
        }
        span.trace_id = std::string(s.at("traceId").get_string());
        span.span_id = std::string(s.at("spanId").get_string());
        if (const auto* p = s.if_contains("parentSpanId")) {
          if (!IsHex(p, 16)) return false;
          span.parent_span_id = std::string(p->get_string());
        }
        const auto* name = s.if_contains("name");
        const auto* kind = s.if_contains("kind");
        if (!name || !name->is_string() || !kind || !kind->is_int64()) return false;
        span.name = std::string(name->get_string());
        span.kind = static_cast<int>(kind->get_int64());
        if (!Nanos(s.if_contains("startTimeUnixNano"), span.start_ns) ||
            !Nanos(s.if_contains("endTimeUnixNano"), span.end_ns) || span.end_ns < span.start_ns) {
          return false;
        }
        if (!Attributes(s.if_contains("attributes"), span.attributes)) return false;
        if (const auto* st = s.if_contains("status"); st && st->is_object()) {
          const auto* code = st->get_object().if_contains("code");
          span.error = code && code->is_int64() && code->get_int64() == 2;
        }
        out.push_back(std::move(span));
      }
    }
  }
  return true;
}

}  // namespace

std::string ReceivedSpan::Attr(const std::string& key) const {
  auto it = attributes.find(key);
  return it == attributes.end() ? "" : it->second;
}

std::string ReceivedSpan::Resource(const std::string& key) const {
  auto it = resource.find(key);
  return it == resource.end() ? "" : it->second;
}

struct OtlpReceiver::Impl {
  net::IoPool pool{1};
  net::Router router;
  std::unique_ptr<net::HttpServer> server;
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  std::vector<ReceivedSpan> spans;
  size_t requests = 0;
  size_t bad = 0;
  Policy policy;
};

OtlpReceiver::OtlpReceiver() : impl_(std::make_unique<Impl>()) {
  Impl* impl = impl_.get();
  impl->router.Add("POST", "/v1/traces", [impl](net::HttpRequest req, net::HttpResponder respond) {
    std::vector<ReceivedSpan> got;
    const bool json = req.Header("content-type").starts_with("application/json");
    const bool ok = json && ParseRequest(req.body, got);
    int status = ok ? 200 : 400;
    {
      std::lock_guard lock(impl->mu);
      if (ok && impl->policy) status = impl->policy(impl->requests);
      ++impl->requests;
      if (!ok) ++impl->bad;
      if (status == 200) impl->spans.insert(impl->spans.end(), got.begin(), got.end());
    }
    impl->cv.notify_all();
    respond(net::HttpResponse::Json(status, "{}"));
  });
  impl->server = std::make_unique<net::HttpServer>(
      impl->pool, impl->router, net::HttpServerOptions{.port = 0, .max_body_bytes = 64 << 20});
  impl->pool.Start();
  if (!impl->server->Start().ok()) std::abort();
}

OtlpReceiver::~OtlpReceiver() {
  impl_->server->StartDrain();
  impl_->server->WaitDrained(std::chrono::seconds(2));
  impl_->server->CloseAll();
  impl_->pool.Stop();
  impl_->server.reset();
}

std::string OtlpReceiver::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(impl_->server->port());
}

void OtlpReceiver::SetPolicy(Policy policy) {
  std::lock_guard lock(impl_->mu);
  impl_->policy = std::move(policy);
}

std::vector<ReceivedSpan> OtlpReceiver::Spans() const {
  std::lock_guard lock(impl_->mu);
  return impl_->spans;
}

std::vector<ReceivedSpan> OtlpReceiver::Trace(const std::string& trace_id) const {
  std::vector<ReceivedSpan> out;
  for (ReceivedSpan& s : Spans()) {
    if (s.trace_id == trace_id) out.push_back(std::move(s));
  }
  return out;
}

size_t OtlpReceiver::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->requests;
}

size_t OtlpReceiver::bad_requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bad;
}

bool OtlpReceiver::WaitFor(const std::function<bool(const std::vector<ReceivedSpan>&)>& pred,
                           std::chrono::milliseconds deadline) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, deadline, [&] { return pred(impl_->spans); });
}

std::string CheckConnected(const std::vector<ReceivedSpan>& spans,
                           const std::string& remote_parent) {
  if (spans.empty()) return "no spans";
  std::set<std::string> ids;
  for (const ReceivedSpan& s : spans) {
    if (s.trace_id != spans.front().trace_id) return "two trace ids";
    if (!ids.insert(s.span_id).second) return "span id " + s.span_id + " twice";
  }
  int roots = 0;
  for (const ReceivedSpan& s : spans) {
    if (ids.count(s.parent_span_id)) continue;
    if (remote_parent.empty() ? s.parent_span_id.empty() : s.parent_span_id == remote_parent) {
      ++roots;
      continue;
    }
    return "span \"" + s.name + "\" (" + s.Role() +
           ") has a parent not in the trace: " + s.parent_span_id;
  }
  if (roots != 1) return std::to_string(roots) + " roots";
  return "";
}

}  // namespace mpim::testing
