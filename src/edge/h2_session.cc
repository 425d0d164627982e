// The edge's HTTP/2 client connections (docs/edge.md "HTTP/2 and gRPC"):
// nghttp2 in server mode over the client's stream, in cleartext (after the
// connection preface was seen: prior knowledge) or over TLS (ALPN h2).
//
// Each request stream is read whole (headers within server.max_header_bytes,
// body within server.max_body_bytes), then
//   - answered by the edge itself (its endpoints, its refusals: the same
//     error bodies and statuses as over HTTP/1.1), or
//   - for a cluster of HTTP/1.1 upstreams, sent through an Exchange (pooled
//     keep-alive connections, retries, breakers: as an HTTP/1.1 client's);
//     the answer goes back on the stream;
//   - for a cluster with protocol "h2" (gRPC and other HTTP/2 upstreams),
//     joined to a stream on a multiplexed connection to the upstream
//     (h2_upstream.cc) as soon as its headers are in: DATA both ways as it
//     comes, with HTTP/2 flow control end to end, and trailers.
// Streams are concurrent (up to kMaxStreams per connection), each with its
// own exchange. Timeouts: a request not whole within server.request_timeout_ms
// is reset (CANCEL); a connection with no stream open for
// server.idle_timeout_ms (request_timeout_ms before its first) is closed
// with GOAWAY. On drain the edge sends GOAWAY, finishes the streams it took
// and closes.

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <map>

#include "absl/strings/ascii.h"
#include "edge/h2_io.h"
#include "edge/h2_upstream.h"
#include "edge/log.h"
#include "edge/proxy_internal.h"

namespace mpim::edge::proxy {

namespace {

constexpr uint32_t kMaxStreams = 128;
constexpr int32_t kStreamWindow = 64 << 10;
constexpr int32_t kConnectionWindow = 1 << 20;
constexpr size_t kReadChunk = 16 << 10;
constexpr size_t kWriteChunk = 64 << 10;

// Fields that belong to one HTTP/1.1 connection and are not sent in HTTP/2
// (RFC 9113 section 8.2.2).
bool ConnectionSpecific(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade";
}

std::string Lower(beast::string_view name) {
  std::string lower(name.data(), name.size());
  absl::AsciiStrToLower(&lower);
  return lower;
}

template <class Stream>
class H2Session final : public Conn {
 public:
  H2Session(std::shared_ptr<ProxyServer::Impl> server, Stream stream, beast::flat_buffer buffer,
            std::string client_ip, std::shared_ptr<void> slot)
      : server_(std::move(server)),
        client_(std::move(stream)),
        buffer_(std::move(buffer)),
        client_ip_(std::move(client_ip)),
        slot_(std::move(slot)),
        timer_(client_.get_executor()) {
    boost::system::error_code ec;
    RawSocket(client_).set_option(tcp::no_delay(true), ec);
    server_->connections(Kind()).Add(1);
  }
  ~H2Session() override {
    if (session_) nghttp2_session_del(session_);
    server_->connections(Kind()).Add(-1);
    if (registered_) server_->Remove(this);
  }

  void Start() {
    server_->Add(shared_from_this());
    registered_ = true;
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, 256 << 10);
    const int rv = nghttp2_session_server_new2(&session_, Callbacks(), this, opt);
    nghttp2_option_del(opt);
    if (rv != 0) return Close();
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, server_->options().max_header_bytes},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    last_active_ = Clock::now();
    Tick();
    // The bytes read before this session began (the preface, maybe more).
    if (buffer_.size() != 0) {
      if (!Receive(static_cast<const uint8_t*>(buffer_.data().data()), buffer_.size())) return;
      buffer_.clear();
    }
    Flush();
    Read();
  }

  void CloseIfIdle() override {
    if (!session_ || closed_) return;
    if (!goaway_sent_) {
      goaway_sent_ = true;
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
    }
    Flush();
  }
  void CloseNow() override { Close(); }
  asio::any_io_executor executor() override { return client_.get_executor(); }

  // A request stream: its request as it comes in, then its way upstream.
  class H2Stream final : public Exchange::Client,
                         public H2Leg::Client,
                         public std::enable_shared_from_this<H2Stream> {
   public:
    H2Stream(H2Session* session, int32_t id)
        : session(session->Self()),
          id(id),
          exchange(*session->server_, *this, session->client_.get_executor(), session->client_ip_,
                   kIsTls<Stream>, session->sent_) {
      req.version(11);
    }

    // Exchange::Client
    std::shared_ptr<void> Hold() override { return this->shared_from_this(); }
    const Location* Where() override { return session->Where(); }
    // Each entry keeps this stream alive through it: what it sends may
    // close the stream (and drop the session's reference) on the way.
    void Answer(Response res) override {
      auto keep = this->shared_from_this();
      upstream_deadline.reset();
      session->Respond(*this, std::move(res), true);
    }
    void Refuse(const net::HttpResponse& r, unsigned status) override {
      auto keep = this->shared_from_this();
      upstream_deadline.reset();
      session->RespondLocal(*this, r, status);
    }
    // The session's tick keeps the exchange's deadline: no timer of the
    // upstream connection's armed and cancelled per read and write.
    bool UpstreamDeadline(std::chrono::milliseconds d) override {
      upstream_deadline = Clock::now() + d;
      session->WakeBy(*upstream_deadline);
      return true;
    }
    void Upgraded(Response, std::unique_ptr<UpConn>, InFlight) override {}  // never asked

    // H2Leg::Client: the upstream's side of a joined stream.
    void LegHeaders(int status, H2Fields fields, bool end) override {
      auto keep = this->shared_from_this();
      session->LegHeaders(*this, status, std::move(fields), end);
    }
    void LegData(std::string_view data) override {
      auto keep = this->shared_from_this();
      session->LegData(*this, data);
    }
    void LegTrailers(H2Fields trailers) override {
      auto keep = this->shared_from_this();
      session->LegTrailers(*this, std::move(trailers));
    }
    void LegEnd() override {
      auto keep = this->shared_from_this();
      session->LegEnd(*this);
    }
    void LegFailed(const absl::Status& error, unsigned status, bool answer_began) override {
      auto keep = this->shared_from_this();
      session->LegFailed(*this, error, status, answer_began);
    }
    void LegConsumed(size_t n) override {
      auto keep = this->shared_from_this();
      session->Consumed(*this, n);
    }

    std::shared_ptr<H2Session> session;
    const int32_t id;
    Request req;
    size_t header_bytes = 0;
    bool headers_done = false;
    bool request_done = false;  // END_STREAM from the client
    bool too_large = false;     // body over the limit: 413 at its end
    bool closed = false;        // nghttp2 closed the stream
    bool answered = false;      // a response was submitted
    Clock::time_point started = Clock::now();
    // The exchange's phase upstream (connect, or request and answer) ends by then.
    std::optional<Clock::time_point> upstream_deadline;
    std::string method, path, route_name = "none";
    bool routed = false;
    bool proxied = false;
    Exchange exchange;
    // A joined stream (h2 cluster): the leg upstream, and what is on its way
    // to the client: body bytes not yet sent, the upstream's trailers.
    std::shared_ptr<H2Leg> leg;
    std::string out;  // the answer's body (whole, or what came so far)
    size_t out_sent = 0;
    bool out_end = false;  // no more body will come
    std::optional<H2Fields> trailers;
    bool deferred = false;  // nghttp2 waits for more of `out`
  };

 private:
  friend class H2Stream;
  std::shared_ptr<H2Session> Self() {
    return std::static_pointer_cast<H2Session>(shared_from_this());
  }
  static const char* Kind() { return kIsTls<Stream> ? "h2" : "h2c"; }
  const ProxyOptions& options() const { return server_->options(); }

  const Location* Where() {
    if (!location_) location_ = options().geoip->Lookup(client_ip_);
    return &*location_;
  }

  // --- the connection ---

  void Read() {
    if (closed_ || reading_) return;
    if (!nghttp2_session_want_read(session_)) return;
    if (!rbuf_) rbuf_.reset(new uint8_t[kReadChunk]);
    reading_ = true;
    client_.async_read_some(asio::buffer(rbuf_.get(), kReadChunk),
                            [self = Self()](beast::error_code ec, size_t n) {
                              self->reading_ = false;
                              if (ec) return self->Close();
                              self->last_active_ = Clock::now();
                              if (!self->Receive(self->rbuf_.get(), n)) return;
                              self->Flush();
                              self->Read();
                            });
  }

  // Feeds bytes to nghttp2; false (and closed) on a connection error.
  bool Receive(const uint8_t* data, size_t n) {
    busy_ = true;
    const ssize_t rv = nghttp2_session_mem_recv(session_, data, n);
    busy_ = false;
    if (rv < 0) {
      Log().Debug("HTTP/2 connection error",
                  {{"client", client_ip_}, {"error", nghttp2_strerror(static_cast<int>(rv))}});
      // nghttp2 has queued GOAWAY for most errors: sent before closing.
      Flush();
      if (!writing_) Close();
      return false;
    }
    return true;
  }

  // What nghttp2 has to send, written. Not while nghttp2 is in a call of
  // this session (a callback's chain may reach here through the other
  // side of a joined stream): the caller of mem_recv flushes after it, and
  // mem_send's loop takes what callbacks queue meanwhile.
  void Flush() {
    if (closed_ || writing_ || busy_) return;
    wbuf_.clear();
    busy_ = true;
    const ssize_t n = TakeH2Output(session_, wbuf_, kWriteChunk);
    busy_ = false;
    if (n < 0) return Close();
    if (wbuf_.empty()) {
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) Close();
      if (goaway_sent_ && streams_.empty()) Close();
      return;
    }
    writing_ = true;
    asio::async_write(client_, asio::buffer(wbuf_), [self = Self()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->Close();
      self->Flush();
      self->Read();  // a read paused while nghttp2 had no use for it
    });
  }

  // Flush once the handlers ready now have run: answers that come from
  // upstreams together go to the client in one write (one system call for
  // many streams' frames instead of one each).
  void FlushSoon() {
    if (flush_posted_ || closed_) return;
    flush_posted_ = true;
    asio::post(client_.get_executor(), [self = Self()] {
      self->flush_posted_ = false;
      self->Flush();
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    RawSocket(client_).close(ec);
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) Abandon(*s);
  }

  // The client is gone or reset the stream: its upstream side ends too.
  void Abandon(H2Stream& s) {
    s.closed = true;
    s.exchange.Cancel();
    if (s.leg) {
      s.leg->Cancel();
      s.leg.reset();
    }
  }

  // Timeouts, checked every tick: requests not whole in time are reset; a
  // connection without streams closes after its idle time.
  // Streams' upstream deadlines too: the tick comes earlier for one that
  // passes before it (WakeBy).
  void Tick() {
    const auto period = std::clamp<std::chrono::milliseconds>(
        std::min(options().request_timeout, options().idle_timeout) / 4,
        std::chrono::milliseconds(25), std::chrono::milliseconds(1000));
    Clock::time_point next = Clock::now() + period;
    for (auto& [id, s] : streams_) {
      if (s->upstream_deadline) next = std::min(next, *s->upstream_deadline);
    }
    ArmAt(next);
  }

  void ArmAt(Clock::time_point when) {
    tick_at_ = when;
    timer_.expires_at(when);  // a wait pending ends with operation_aborted
    timer_.async_wait([self = Self()](boost::system::error_code ec) {
      if (ec || self->closed_) return;
      self->Expire();
      if (!self->closed_) self->Tick();
    });
  }

  // A stream's deadline before the next tick brings the tick forward.
  void WakeBy(Clock::time_point deadline) {
    if (closed_ || deadline >= tick_at_) return;
    ArmAt(deadline);
  }

  void Expire() {
    const auto now = Clock::now();
    if (streams_.empty()) {
      const auto limit = served_any_ ? options().idle_timeout : options().request_timeout;
      if (now - last_active_ >= limit) {
        goaway_sent_ = true;
        nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
        Flush();
        if (!writing_) Close();
      }
      return;
    }
    last_active_ = now;  // streams open: not idle
    bool reset = false;
    std::vector<std::shared_ptr<H2Stream>> late;
    for (auto& [id, s] : streams_) {
      if (s->upstream_deadline && now >= *s->upstream_deadline) {
        s->upstream_deadline.reset();
        late.push_back(s);
      }
      if (!s->request_done && !s->leg && now - s->started >= options().request_timeout) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        reset = true;
      }
    }
    if (reset) Flush();
    for (auto& s : late) s->exchange.TimedOut();  // 504, or a failed connection
  }

  // --- nghttp2's callbacks ---

  static const nghttp2_session_callbacks* Callbacks() {
    static const nghttp2_session_callbacks* callbacks =
        NewH2Callbacks({.begin_headers = OnBeginHeaders,
                        .header = OnHeader,
                        .frame = OnFrame,
                        .data = OnData,
                        .stream_close = OnStreamClose});
    return callbacks;
  }

  static H2Session& Of(void* user) { return *static_cast<H2Session*>(user); }
  H2Stream* Find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Session& self = Of(user);
    if (self.goaway_sent_) {
      nghttp2_submit_rst_stream(self.session_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    self.served_any_ = true;
    self.streams_.emplace(frame->hd.stream_id,
                          std::make_shared<H2Stream>(&self, frame->hd.stream_id));
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_data,
                      size_t name_len, const uint8_t* value_data, size_t value_len, uint8_t,
                      void* user) {
    H2Session& self = Of(user);
    H2Stream* s = self.Find(frame->hd.stream_id);
    if (!s) return 0;
    const std::string_view name(reinterpret_cast<const char*>(name_data), name_len);
    const std::string_view value(reinterpret_cast<const char*>(value_data), value_len);
    s->header_bytes += name_len + value_len + 32;
    if (s->headers_done) {
      // Trailers from the client (gRPC sends none; others rarely): passed
      // on to an h2 upstream, dropped for HTTP/1.1.
      if (s->leg) s->leg->AddTrailer(name, value);
      return 0;
    }
    if (name == ":method") {
      s->method = value;
      const http::verb verb = http::string_to_verb(value);
      if (verb == http::verb::unknown) {
        s->req.method_string(value);
      } else {
        s->req.method(verb);
      }
    } else if (name == ":path") {
      s->req.target(value);
      s->path = PathOf(value);
    } else if (name == ":authority") {
      if (s->req.find(http::field::host) == s->req.end()) s->req.set(http::field::host, value);
    } else if (name == ":scheme" || name == ":protocol") {
      // The edge says the scheme upstream (X-Forwarded-Proto).
    } else if (name == "cookie") {
      // Split into several fields in HTTP/2 (RFC 9113 section 8.2.3): one
      // for HTTP/1.1.
      auto it = s->req.find(http::field::cookie);
      if (it == s->req.end()) {
        s->req.insert(http::field::cookie, value);
      } else {
        s->req.set(http::field::cookie, std::string(it->value()) + "; " + std::string(value));
      }
    } else if (name == "host") {
      s->req.set(http::field::host, value);
    } else {
      s->req.insert(name, value);
    }
    return 0;
  }

  static int OnData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    H2Session& self = Of(user);
    // The connection's window opens at once; a joined stream's as its
    // upstream takes the bytes (a slow upstream holds back its stream only).
    nghttp2_session_consume_connection(session, len);
    H2Stream* s = self.Find(id);
    if (s && s->leg && s->leg->Send(std::string_view(reinterpret_cast<const char*>(data), len))) {
      return 0;
    }
    nghttp2_session_consume_stream(session, id, len);
    if (!s || s->leg) return 0;
    if (s->too_large) return 0;
    std::string& body = s->req.body();
    if (body.size() + len > self.options().max_body_bytes) {
      s->too_large = true;
      body.clear();
      body.shrink_to_fit();
      return 0;
    }
    body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    H2Session& self = Of(user);
    H2Stream* s = self.Find(frame->hd.stream_id);
    if (!s) return 0;
    const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->headers_done) {
      s->headers_done = true;
      s->request_done = end;
      self.Dispatch(*s);
      return 0;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end &&
        !s->request_done) {
      s->request_done = true;
      if (s->leg) {
        s->leg->End();
      } else if (!s->answered && !s->routed) {
        self.Dispatch(*s);
      }
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    H2Session& self = Of(user);
    auto it = self.streams_.find(id);
    if (it == self.streams_.end()) return 0;
    std::shared_ptr<H2Stream> s = std::move(it->second);
    self.streams_.erase(it);
    self.last_active_ = Clock::now();
    self.Abandon(*s);
    return 0;
  }

  // --- requests ---

  // A stream's headers are in (and its body too when `request_done`):
  // local answer, refusal, or on its way to the route's cluster.
  void Dispatch(H2Stream& s) {
    if (s.req.method() == http::verb::connect) {
      return RespondLocal(
          s, net::HttpResponse::Error(absl::UnimplementedError("CONNECT is not supported")), 501);
    }
    if (options().local) {
      if (auto local = options().local(s.path)) {
        s.route_name = "local";
        if (s.request_done) RespondLocal(s, *local, 0);
        return;
      }
    }
    if (!s.request_done) {
      // Routed now: an h2 cluster takes the stream at once; an HTTP/1.1
      // one once the body is whole.
      if (!s.exchange.Route(s.req)) return;  // 404 at the end of the body
      s.route_name = s.exchange.route_name();
      if (s.exchange.cluster()->spec.protocol != "h2") return;
    }
    if (s.too_large) {
      return RespondLocal(
          s,
          net::HttpResponse::Error(core::PayloadTooLargeError(
              "request body exceeds " + std::to_string(options().max_body_bytes) + " bytes")),
          0);
    }
    if (int64_t retry_ms = server_->RateLimit(client_ip_); retry_ms > 0) {
      return RespondLocal(s,
                          net::HttpResponse::Error(core::RateLimitedError(
                              "too many requests from this address", retry_ms)),
                          0);
    }
    if (!s.exchange.cluster() && !s.exchange.Route(s.req)) {
      return RespondLocal(
          s, net::HttpResponse::Error(absl::NotFoundError("no route for this request")), 0);
    }
    s.route_name = s.exchange.route_name();
    s.routed = true;
    s.proxied = true;
    if (s.exchange.cluster()->spec.protocol == "h2") return Join(s);
    s.exchange.Run(std::move(s.req), false);
  }

  // An answer for a stream (from an HTTP/1.1 upstream, or the edge's own).
  void Respond(H2Stream& s, Response res, bool proxied) {
    if (s.closed || closed_ || s.answered) return;
    s.proxied = proxied;
    s.out = std::move(res.body());
    s.out_sent = 0;
    s.out_end = true;
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& f : res) {
      std::string name = Lower(f.name_string());
      if (!ConnectionSpecific(name)) fields.emplace_back(std::move(name), std::string(f.value()));
    }
    Submit(s, res.result_int(), fields);
  }

  void RespondLocal(H2Stream& s, const net::HttpResponse& r, unsigned status_override) {
    Response res;
    res.result(status_override != 0 ? status_override : r.status);
    res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = r.body;
    res.content_length(res.body().size());
    Respond(s, std::move(res), false);
  }

  // HEADERS (:status and `fields`, names in lower case; nghttp2 copies
  // them), then the body from s.out as it comes (none when there is none
  // and none will come, or for HEAD).
  void Submit(H2Stream& s, unsigned status, const H2Fields& fields) {
    s.answered = true;
    const std::string code = std::to_string(status);
    std::vector<nghttp2_nv> nv;
    nv.reserve(fields.size() + 1);
    nv.push_back(H2Nv(":status", code));
    for (const auto& [name, value] : fields) {
      if (!ConnectionSpecific(name)) nv.push_back(H2Nv(name, value));
    }
    Finish(s, status);
    nghttp2_data_provider provider;
    provider.source.ptr = &s;
    provider.read_callback = ReadBody;
    const bool body = s.method != "HEAD" && !(s.out_end && s.out.empty() && !s.trailers);
    nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), body ? &provider : nullptr);
    FlushSoon();
  }

  // The answer is on its way: counted and logged.
  void Finish(H2Stream& s, unsigned status) {
    metrics_.Answered(*server_, s.route_name, status).Inc();
    if (s.proxied) {
      metrics_.Duration(*server_, s.route_name)
          .Observe(std::chrono::duration<double>(Clock::now() - s.started).count());
    }
    if (options().access_log) {
      const Upstream* upstream = s.leg ? s.leg->upstream() : s.exchange.upstream();
      LogAccess(client_ip_, s.method, s.path, status, s.route_name, s.routed ? upstream : nullptr,
                s.routed && !s.leg ? s.exchange.attempts() : 0, s.started);
    }
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    H2Stream& s = *static_cast<H2Stream*>(source->ptr);
    const size_t n = std::min(length, s.out.size() - s.out_sent);
    std::memcpy(buf, s.out.data() + s.out_sent, n);
    s.out_sent += n;
    if (s.out_sent == s.out.size()) {
      s.out.clear();
      s.out_sent = 0;
      if (s.out_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s.trailers) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          SubmitTrailers(session, s);
        }
      }
    }
    if (n > 0 && s.leg) s.leg->Consumed(n);  // the upstream's window opens again
    if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF)) {
      s.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  static void SubmitTrailers(nghttp2_session* session, H2Stream& s) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [name, value] : *s.trailers) nv.push_back(H2Nv(name, value));
    nghttp2_submit_trailer(session, s.id, nv.data(), nv.size());
  }

  // --- streams joined to an h2 upstream ---

  void Join(H2Stream& s) {
    auto& pool = server_->h2_pool(client_.get_executor());
    H2LegRequest request;
    request.method = s.method;
    request.path = std::string(s.req.target());
    request.authority = std::string(s.req[http::field::host]);
    request.scheme = kIsTls<Stream> ? "https" : "http";
    for (const auto& f : s.req) {
      if (f.name() == http::field::host) continue;
      std::string name = Lower(f.name_string());
      if (ConnectionSpecific(name) || name == "te") continue;
      request.fields.emplace_back(std::move(name), std::string(f.value()));
    }
    if (!s.req[http::field::te].empty()) request.fields.emplace_back("te", "trailers");
    std::string forwarded_for(s.req["X-Forwarded-For"]);
    std::erase_if(request.fields, [](const auto& f) {
      return f.first == "x-forwarded-for" || f.first == "x-forwarded-proto";
    });
    request.fields.emplace_back(
        "x-forwarded-for", forwarded_for.empty() ? client_ip_ : forwarded_for + ", " + client_ip_);
    request.fields.emplace_back("x-forwarded-proto", kIsTls<Stream> ? "https" : "http");
    request.end = s.request_done;
    s.exchange.Prepare(s.req);
    s.leg = pool.Open(s.exchange, std::move(request), s, s.shared_from_this());
  }

  void LegHeaders(H2Stream& s, int status, H2Fields fields, bool end) {
    if (s.closed || closed_ || s.answered) return;
    s.out_end = end;
    Submit(s, static_cast<unsigned>(status), fields);
  }

  void LegData(H2Stream& s, std::string_view data) {
    if (s.closed || closed_) return;
    s.out.append(data);
    Resume(s);
  }

  void LegTrailers(H2Stream& s, H2Fields trailers) {
    if (s.closed || closed_) return;
    s.trailers = std::move(trailers);
    s.out_end = true;
    Resume(s);
  }

  void LegEnd(H2Stream& s) {
    if (s.closed || closed_) return;
    s.out_end = true;
    Resume(s);
  }

  void Resume(H2Stream& s) {
    if (s.deferred) {
      s.deferred = false;
      nghttp2_session_resume_data(session_, s.id);
    }
    FlushSoon();
  }

  // The upstream side failed: before the answer began the client gets the
  // edge's error (502/503/504, which gRPC clients read as UNAVAILABLE);
  // after, the stream is reset.
  void LegFailed(H2Stream& s, const absl::Status& error, unsigned status, bool answer_began) {
    if (s.closed || closed_) return;
    if (!answer_began && !s.answered) {
      return RespondLocal(s, net::HttpResponse::Error(absl::UnavailableError(error.message())),
                          status);
    }
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
    FlushSoon();
  }

  // The upstream took `n` of the client's body bytes: the client's window
  // opens again.
  void Consumed(H2Stream& s, size_t n) {
    if (s.closed || closed_) return;
    nghttp2_session_consume_stream(session_, s.id, n);
    FlushSoon();
  }

  std::shared_ptr<ProxyServer::Impl> server_;
  Stream client_;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  std::shared_ptr<void> slot_;
  asio::steady_timer timer_;
  Clock::time_point tick_at_;  // when timer_ fires next
  nghttp2_session* session_ = nullptr;
  SentCounters sent_;  // the streams' exchanges count with it
  std::map<int32_t, std::shared_ptr<H2Stream>> streams_;
  std::unique_ptr<uint8_t[]> rbuf_;
  std::string wbuf_;
  bool registered_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool busy_ = false;          // in nghttp2_session_mem_recv or _mem_send
  bool flush_posted_ = false;  // FlushSoon's handler is on its way
  bool closed_ = false;
  bool goaway_sent_ = false;
  bool served_any_ = false;
  Clock::time_point last_active_;
  std::optional<Location> location_;
  AnswerMetrics metrics_;
};

}  // namespace

void StartH2(std::shared_ptr<ProxyServer::Impl> server, PlainStream stream,
             beast::flat_buffer buffer, std::string ip, std::shared_ptr<void> slot) {
  std::make_shared<H2Session<PlainStream>>(std::move(server), std::move(stream), std::move(buffer),
                                           std::move(ip), std::move(slot))
      ->Start();
}

void StartH2(std::shared_ptr<ProxyServer::Impl> server, TlsStream stream, beast::flat_buffer buffer,
             std::string ip, std::shared_ptr<void> slot) {
  std::make_shared<H2Session<TlsStream>>(std::move(server), std::move(stream), std::move(buffer),
                                         std::move(ip), std::move(slot))
      ->Start();
}

}  // namespace mpim::edge::proxy
