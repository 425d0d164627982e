#include "net/http.h"

#include <strings.h>

namespace mpim::net {

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

std::optional<std::string_view> HttpRequest::Query(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view HttpRequest::Param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), {}};
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body), {}};
}

HttpResponse HttpResponse::NoContent() { return HttpResponse{204, "", "", {}}; }

HttpResponse HttpResponse::Error(const core::Status& status) {
  HttpResponse r = Json(core::HttpStatusFor(status), core::ErrorBodyJson(status));
  if (auto retry = core::RetryAfterMs(status)) {
    r.headers.emplace_back("Retry-After", std::to_string((*retry + 999) / 1000));
  }
  return r;
}

HttpResponder& HttpResponder::operator=(HttpResponder&& other) noexcept {
  if (this != &other) {
    if (fn_) fn_(HttpResponse::Error(absl::InternalError("handler dropped its responder")));
    fn_ = std::move(other.fn_);
    other.fn_ = nullptr;
  }
  return *this;
}

HttpResponder::~HttpResponder() {
  if (fn_) fn_(HttpResponse::Error(absl::InternalError("handler dropped its responder")));
}

void HttpResponder::operator()(HttpResponse response) {
  if (!fn_) return;
  Fn fn = std::move(fn_);
  fn_ = nullptr;
  fn(std::move(response));
}

}  // namespace mpim::net
