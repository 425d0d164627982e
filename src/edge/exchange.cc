#include <boost/asio/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "edge/log.h"
#include "edge/proxy_internal.h"

namespace mpim::edge::proxy {

void LogAccess(const std::string& client, std::string_view method, std::string_view path,
               unsigned status, const std::string& route, const Upstream* upstream, int attempts,
               Clock::time_point started) {
  static const core::Logger log("edge.access");
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  log.Info("request", {{"client", client},
                       {"method", method.empty() ? "-" : std::string(method)},
                       {"path", path.empty() ? "-" : std::string(path)},
                       {"status", static_cast<int64_t>(status)},
                       {"route", route},
                       {"upstream", upstream ? upstream->address : "-"},
                       {"attempts", static_cast<int64_t>(attempts + 1)},
                       {"duration_us", static_cast<int64_t>(us)}});
}

Exchange::~Exchange() {
  if (picked_) cluster_->upstreams->Release(picked_);  // the client left mid-exchange
}

bool Exchange::Route(const Request& req) {
  table_ = server_.router().Current();
  const edge::Route* route =
      table_ ? table_->Match(req[http::field::host], req.target(),
                             [&req](const std::string& name) { return req[name]; })
             : nullptr;
  if (!route) {
    route_name_ = "none";
    cluster_ = nullptr;
    return false;
  }
  route_name_ = route->spec.name;
  cluster_ = route->cluster.get();
  return true;
}

void Exchange::Prepare(const Request& req) {
  const HashKey& hk = cluster_->hash_key;
  std::string_view header_value;
  if (!hk.header().empty()) header_value = req[hk.header()];
  key_ = hk.Of(req.target(), header_value, client_ip_);
  sticky_.reset();
  if (!cluster_->spec.sticky_cookie.empty()) {
    if (auto v = CookieValue(req[http::field::cookie], cluster_->spec.sticky_cookie)) {
      sticky_ = std::string(*v);
    }
  }
  cluster_->budget->RecordRequest();
  attempts_ = 0;
  upstream_.reset();
  avoid_ = nullptr;
  fresh_retry_done_ = false;
}

Picked Exchange::Choose() {
  Upstreams& set = *cluster_->upstreams;
  Picked picked;
  if (sticky_ && !avoid_) picked = set.PickSticky(*sticky_);
  if (!picked) {
    const Location* where =
        cluster_->spec.zones.empty() || !server_.options().geoip ? nullptr : client_.Where();
    picked = set.Pick(key_, avoid_.get(), where);
  }
  if (picked) upstream_ = picked.upstream;
  return picked;
}

Picked Exchange::Retarget(const std::shared_ptr<Upstream>& failed) {
  if (!MayRetry()) return Picked();
  ++attempts_;
  server_.retries(*cluster_).Inc();
  avoid_ = failed;
  return Choose();
}

absl::Status Exchange::NoneChosen(const Picked& p) const {
  if (p.circuit_open) {
    return absl::UnavailableError("every upstream of " + cluster_->spec.name +
                                  " is refused by its circuit breaker");
  }
  return absl::UnavailableError("no upstream of " + cluster_->spec.name + " is known");
}

void Exchange::Run(Request req, bool upgrade) {
  Prepare(req);
  req_ = std::move(req);
  upgrade_ = upgrade;

  DropHopByHop(req_.base(), upgrade_);
  req_.erase(http::field::expect);
  std::string forwarded_for(req_["X-Forwarded-For"]);
  req_.set("X-Forwarded-For",
           forwarded_for.empty() ? client_ip_ : forwarded_for + ", " + client_ip_);
  req_.set("X-Forwarded-Proto", tls_ ? "https" : "http");
  if (req_.find(http::field::host) != req_.end()) {
    req_.set("X-Forwarded-Host", req_[http::field::host]);
  }
  if (!req_.body().empty() || req_.method() == http::verb::post ||
      req_.method() == http::verb::put || req_.method() == http::verb::patch) {
    req_.content_length(req_.body().size());
  }
  Attempt();
}

void Exchange::Cancel() {
  boost::system::error_code ec;
  if (up_) up_->stream.socket().close(ec);
}

void Exchange::TimedOut() {
  timed_out_ = true;
  Cancel();
}

void Exchange::Refuse(absl::Status error, unsigned status) {
  load_.Release();
  client_.Refuse(net::HttpResponse::Error(error), status);
}

void Exchange::Attempt() {
  picked_ = Choose();
  if (!picked_) return Refuse(NoneChosen(picked_), picked_.circuit_open ? 503 : 502);
  load_ = InFlight(upstream_);
  up_ = server_.conn_pool(ex_).Take(upstream_->address);
  up_reused_ = up_ != nullptr;
  if (up_) return Send();
  Connect();
}

void Exchange::Connect() {
  up_ = std::make_unique<UpConn>(ex_);
  up_reused_ = false;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(upstream_->host, ec);
  if (ec) return ConnectFailed();
  timed_out_ = false;
  if (!client_.UpstreamDeadline(server_.options().connect_timeout)) {
    up_->stream.expires_after(server_.options().connect_timeout);
  }
  up_->stream.async_connect(tcp::endpoint(address, upstream_->port),
                            [self = client_.Hold(), this](beast::error_code cec) {
                              if (cec) return ConnectFailed();
                              boost::system::error_code ignored;
                              up_->stream.socket().set_option(tcp::no_delay(true), ignored);
                              Send();
                            });
}

void Exchange::ConnectFailed() {
  server_.Error(*cluster_, *upstream_, "connect").Inc();
  Outcome(false);
  cluster_->upstreams->ReportFailure(upstream_);
  up_.reset();
  // Nothing was sent: any request may go elsewhere.
  if (MayRetry()) return Retry();
  Refuse(absl::UnavailableError("no upstream of " + cluster_->spec.name + " could be reached"),
         502);
}

// The breaker's permit back with the exchange's outcome.
void Exchange::Outcome(bool ok) {
  if (picked_) cluster_->upstreams->Record(picked_, ok);
  picked_ = Picked();
}

// Another attempt is allowed by the cluster's retries and retry budget.
bool Exchange::MayRetry() {
  if (attempts_ >= cluster_->spec.retries) return false;
  if (!cluster_->budget->TryRetry()) {
    server_.retries_refused(*cluster_).Inc();
    return false;
  }
  return true;
}

void Exchange::Retry() {
  ++attempts_;
  server_.retries(*cluster_).Inc();
  avoid_ = upstream_;
  Attempt();
}

void Exchange::Send() {
  SentTo(upstream_).Inc();
  timed_out_ = false;
  if (!client_.UpstreamDeadline(server_.options().upstream_timeout)) {
    up_->stream.expires_after(server_.options().upstream_timeout);
  }
  head_.clear();
  AppendHead(head_, req_.base());
  const std::array<asio::const_buffer, 2> out = {asio::buffer(head_), asio::buffer(req_.body())};
  asio::async_write(up_->stream, out, [self = client_.Hold(), this](beast::error_code ec, size_t) {
    if (ec) return Broken(timed_out_ ? beast::error_code(beast::error::timeout) : ec, false);
    ReadResponse();
  });
}

void Exchange::ReadResponse() {
  resp_parser_.emplace();
  resp_parser_->header_limit(kMaxResponseHeaderBytes);
  resp_parser_->body_limit(server_.options().max_response_bytes);
  if (req_.method() == http::verb::head) resp_parser_->skip(true);
  http::async_read(up_->stream, up_->buffer, *resp_parser_,
                   [self = client_.Hold(), this](beast::error_code ec, size_t) {
                     if (ec) {
                       return Broken(timed_out_ ? beast::error_code(beast::error::timeout) : ec,
                                     resp_parser_->got_some());
                     }
                     OnResponse();
                   });
}

// The exchange with the upstream failed after the connection was up.
void Exchange::Broken(beast::error_code ec, bool answer_began) {
  up_.reset();
  if (ec == beast::error::timeout) {
    server_.Error(*cluster_, *upstream_, "timeout").Inc();
    Outcome(false);
    return Refuse(absl::UnavailableError("the upstream did not answer in time"), 504);
  }
  server_.Error(*cluster_, *upstream_, "broken").Inc();
  if (ec == http::error::body_limit || ec == http::error::header_limit) {
    if (picked_) cluster_->upstreams->Release(picked_);  // says nothing of its health
    picked_ = Picked();
    return Refuse(absl::UnavailableError("the upstream's answer is too large"), 502);
  }
  if (!answer_began && up_reused_ && !fresh_retry_done_) {
    // A pooled connection the upstream closed as it was taken: the same
    // upstream again, on a fresh connection, with the same permit.
    fresh_retry_done_ = true;
    server_.retries(*cluster_).Inc();
    return Connect();
  }
  Outcome(false);
  if (!answer_began && (Idempotent(req_.method()) || upgrade_) && MayRetry()) {
    cluster_->upstreams->ReportFailure(upstream_);
    return Retry();
  }
  Refuse(absl::UnavailableError("the upstream closed the connection before answering"), 502);
}

void Exchange::OnResponse() {
  Response resp = resp_parser_->release();
  const unsigned code = resp.result_int();
  Outcome(code != 500 && code != 502 && code != 503 && code != 504);
  // An answer from an upstream the client's sticky cookie did not name sets it.
  const std::string& cookie = cluster_->spec.sticky_cookie;
  const bool stick = !cookie.empty() && !(sticky_ && *sticky_ == upstream_->sticky_id);
  auto set_cookie = [&] {
    if (stick) {
      resp.insert(http::field::set_cookie,
                  cookie + "=" + upstream_->sticky_id + "; Path=/; HttpOnly; SameSite=Lax");
    }
  };
  if (upgrade_ && resp.result() == http::status::switching_protocols) {
    set_cookie();
    return client_.Upgraded(std::move(resp), std::move(up_), std::move(load_));
  }
  if (resp.keep_alive() && !upgrade_)
    server_.conn_pool(ex_).Put(upstream_->address, std::move(up_));
  up_.reset();
  load_.Release();
  DropHopByHop(resp.base(), false);
  set_cookie();
  if (req_.method() != http::verb::head && code >= 200 && code != 204 && code != 304) {
    resp.content_length(resp.body().size());
  }
  client_.Answer(std::move(resp));
}

}  // namespace mpim::edge::proxy
