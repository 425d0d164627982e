#include "edge/h2_upstream.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "edge/h2_io.h"
#include "edge/log.h"

namespace mpim::edge::proxy {

namespace {

constexpr int32_t kStreamWindow = 64 << 10;
constexpr int32_t kConnectionWindow = 1 << 20;
constexpr size_t kReadChunk = 16 << 10;
constexpr size_t kWriteChunk = 64 << 10;

}  // namespace

// One HTTP/2 connection to an upstream, carrying many legs' streams.
class H2UpConn : public std::enable_shared_from_this<H2UpConn> {
 public:
  H2UpConn(ProxyServer::Impl& server, H2UpstreamPool& pool, const Executor& ex,
           std::shared_ptr<Upstream> upstream)
      : server_(server), pool_(pool), upstream_(std::move(upstream)), stream_(ex), timer_(ex) {}
  ~H2UpConn() {
    if (session_) nghttp2_session_del(session_);
  }

  // The edge stops: the socket closes (handlers end, aborted).
  void Shutdown() {
    broken_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    stream_.socket().close(ec);
  }

  // Usable for new streams: not broken, no GOAWAY.
  bool usable() const { return !broken_ && !goaway_; }

  void Connect() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(upstream_->host, ec);
    if (ec) return Broke(absl::UnavailableError("bad upstream address"));
    stream_.expires_after(server_.options().connect_timeout);
    stream_.async_connect(tcp::endpoint(address, upstream_->port),
                          [self = shared_from_this()](beast::error_code cec) {
                            if (cec) return self->Broke(absl::UnavailableError(cec.message()));
                            self->Connected();
                          });
  }

  // A leg's stream, now or once connected.
  void Add(std::shared_ptr<H2Leg> leg) {
    if (!session_) {
      waiting_.push_back(std::move(leg));
      return;
    }
    leg->Submit(*this);
    Flush();
  }

  nghttp2_session* session() { return session_; }
  void Track(int32_t id, std::shared_ptr<H2Leg> leg) { legs_[id] = std::move(leg); }

  // As H2Session::Flush: not while nghttp2 is in a call of this session.
  void Flush() {
    if (broken_ || writing_ || busy_ || !session_) return;
    wbuf_.clear();
    busy_ = true;
    const ssize_t n = TakeH2Output(session_, wbuf_, kWriteChunk);
    busy_ = false;
    if (n < 0) return Broke(absl::UnavailableError(nghttp2_strerror(static_cast<int>(n))));
    if (wbuf_.empty()) {
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
        Broke(absl::UnavailableError("the upstream closed the connection"));
      }
      return;
    }
    writing_ = true;
    stream_.expires_never();
    asio::async_write(stream_.socket(), asio::buffer(wbuf_),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->Broke(absl::UnavailableError(ec.message()));
                        self->Flush();
                      });
  }

  // The body read callback of every leg's request.
  static ssize_t ReadBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    H2Leg& leg = *static_cast<H2Leg*>(source->ptr);
    const size_t n = std::min(length, leg.pending_.size() - leg.pending_sent_);
    std::memcpy(buf, leg.pending_.data() + leg.pending_sent_, n);
    leg.pending_sent_ += n;
    if (leg.pending_sent_ == leg.pending_.size()) {
      leg.pending_.clear();
      leg.pending_sent_ = 0;
      if (leg.ended_) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!leg.client_trailers_.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          std::vector<nghttp2_nv> nv;
          for (const auto& [name, value] : leg.client_trailers_) nv.push_back(H2Nv(name, value));
          nghttp2_submit_trailer(session, id, nv.data(), nv.size());
        }
      }
    }
    if (n > 0 && leg.client_) leg.client_->LegConsumed(n);
    if (n == 0 && !(*flags & NGHTTP2_DATA_FLAG_EOF)) {
      leg.deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

 private:
  void Connected() {
    boost::system::error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&session_, Callbacks(), this, opt);
    nghttp2_option_del(opt);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& leg : waiting) {
      if (!leg->done_) leg->Submit(*this);
    }
    Tick();
    Flush();
    Read();
  }

  void Read() {
    if (broken_) return;
    if (!rbuf_) rbuf_.reset(new uint8_t[kReadChunk]);
    stream_.socket().async_read_some(
        asio::buffer(rbuf_.get(), kReadChunk),
        [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (self->broken_) return;
          if (ec) return self->Broke(absl::UnavailableError("the upstream closed the connection"));
          self->busy_ = true;
          const ssize_t rv = nghttp2_session_mem_recv(self->session_, self->rbuf_.get(), n);
          self->busy_ = false;
          if (rv < 0) {
            return self->Broke(absl::UnavailableError(std::string("HTTP/2 error from upstream: ") +
                                                      nghttp2_strerror(static_cast<int>(rv))));
          }
          self->Flush();
          self->Read();
        });
  }

  // Answers not begun within edge.upstream_timeout_ms fail (504); a
  // connection without streams for edge.idle_timeout_ms closes.
  void Tick() {
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->broken_) return;
      const auto now = Clock::now();
      std::vector<std::shared_ptr<H2Leg>> late;
      for (auto& [id, leg] : self->legs_) {
        if (!leg->answered_ && now - leg->sent_at_ >= self->server_.options().upstream_timeout) {
          late.push_back(leg);
        }
      }
      for (auto& leg : late) {
        nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, leg->stream_id_,
                                  NGHTTP2_CANCEL);
        self->legs_.erase(leg->stream_id_);
        self->server_.Error(*leg->cluster_, *self->upstream_, "timeout").Inc();
        leg->Outcome(false);
        leg->Fail(absl::DeadlineExceededError("the upstream did not answer in time"), 504);
      }
      if (self->legs_.empty()) {
        if (now - self->idle_since_ >= self->server_.options().idle_timeout) {
          self->goaway_ = true;
          self->pool_.Forget(self.get());
          nghttp2_session_terminate_session(self->session_, NGHTTP2_NO_ERROR);
        }
      } else {
        self->idle_since_ = now;
      }
      self->Flush();
      if (!self->broken_) self->Tick();
    });
  }

  // The connection is done: streams that were not sent go elsewhere (or
  // fail), the others fail.
  void Broke(const absl::Status& why) {
    if (broken_) return;
    broken_ = true;
    pool_.Forget(this);
    boost::system::error_code ec;
    timer_.cancel();
    stream_.socket().close(ec);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& leg : waiting) {
      if (!leg->done_) leg->ConnectFailed();
    }
    auto legs = std::move(legs_);
    legs_.clear();
    for (auto& [id, leg] : legs) {
      server_.Error(*leg->cluster_, *upstream_, "broken").Inc();
      leg->Outcome(false);
      leg->Fail(why, 502);
    }
    Log().Debug("HTTP/2 upstream connection ended",
                {{"upstream", upstream_->address}, {"why", std::string(why.message())}});
  }

  static const nghttp2_session_callbacks* Callbacks() {
    static const nghttp2_session_callbacks* callbacks = NewH2Callbacks(
        {.header = OnHeader, .frame = OnFrame, .data = OnData, .stream_close = OnStreamClose});
    return callbacks;
  }
  static H2UpConn& Of(void* user) { return *static_cast<H2UpConn*>(user); }
  std::shared_ptr<H2Leg> Find(int32_t id) {
    auto it = legs_.find(id);
    return it == legs_.end() ? nullptr : it->second;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_data,
                      size_t name_len, const uint8_t* value_data, size_t value_len, uint8_t,
                      void* user) {
    std::shared_ptr<H2Leg> leg = Of(user).Find(frame->hd.stream_id);
    if (!leg || frame->hd.type != NGHTTP2_HEADERS) return 0;
    const std::string_view name(reinterpret_cast<const char*>(name_data), name_len);
    const std::string_view value(reinterpret_cast<const char*>(value_data), value_len);
    if (name == ":status") {
      leg->status_ = 0;
      for (char c : value) leg->status_ = leg->status_ * 10 + (c - '0');
      leg->fields_.clear();
      return 0;
    }
    leg->fields_.emplace_back(name, value);
    return 0;
  }

  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    H2UpConn& self = Of(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self.goaway_ = true;
      self.pool_.Forget(&self);
      return 0;
    }
    // Held through the call: the client's side may cancel it on the way.
    std::shared_ptr<H2Leg> leg = self.Find(frame->hd.stream_id);
    if (!leg) return 0;
    const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_DATA) {
      if (end && leg->client_) leg->client_->LegEnd();
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (leg->answered_) {
      // Trailers.
      H2Fields trailers = std::move(leg->fields_);
      leg->fields_.clear();
      if (leg->client_) leg->client_->LegTrailers(std::move(trailers));
      return 0;
    }
    if (leg->status_ >= 100 && leg->status_ < 200) return 0;  // informational
    leg->OnHeaders(end);
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    H2UpConn& self = Of(user);
    // The connection's window opens at once, the stream's as the client
    // takes the bytes: a slow client holds back its own stream only.
    nghttp2_session_consume_connection(self.session_, len);
    std::shared_ptr<H2Leg> leg = self.Find(id);
    if (!leg || !leg->OnData(std::string_view(reinterpret_cast<const char*>(data), len))) {
      nghttp2_session_consume_stream(self.session_, id, len);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    H2UpConn& self = Of(user);
    auto it = self.legs_.find(id);
    if (it == self.legs_.end()) return 0;
    std::shared_ptr<H2Leg> leg = std::move(it->second);
    self.legs_.erase(it);
    if (self.legs_.empty()) self.idle_since_ = Clock::now();
    leg->OnClose(error_code, error_code == NGHTTP2_REFUSED_STREAM);
    return 0;
  }

  ProxyServer::Impl& server_;
  H2UpstreamPool& pool_;
  std::shared_ptr<Upstream> upstream_;
  PlainStream stream_;
  asio::steady_timer timer_;
  nghttp2_session* session_ = nullptr;
  std::vector<std::shared_ptr<H2Leg>> waiting_;  // until connected
  std::map<int32_t, std::shared_ptr<H2Leg>> legs_;
  std::unique_ptr<uint8_t[]> rbuf_;
  std::string wbuf_;
  bool writing_ = false;
  bool busy_ = false;  // in nghttp2_session_mem_recv or _mem_send
  bool broken_ = false;
  bool goaway_ = false;
  Clock::time_point idle_since_ = Clock::now();
};

// --- H2Leg ---

H2Leg::H2Leg(ProxyServer::Impl& server, Exchange& exchange, H2LegRequest request, Client& client,
             std::shared_ptr<void> hold)
    : server_(server),
      exchange_(exchange),
      request_(std::move(request)),
      client_(&client),
      hold_(std::move(hold)),
      cluster_(exchange.cluster()) {
  ended_ = request_.end;
}

H2Leg::~H2Leg() {
  if (picked_) cluster_->upstreams->Release(picked_);
}

void H2Leg::Go(Picked picked) {
  if (!picked) {
    return Fail(exchange_.NoneChosen(picked), picked.circuit_open ? 503 : 502);
  }
  picked_ = std::move(picked);
  picked_upstream_ = picked_.upstream;
  load_ = InFlight(picked_upstream_);
  conn_ = pool_->Get(picked_upstream_);
  conn_->Add(shared_from_this());
}

void H2Leg::Submit(H2UpConn& conn) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(request_.fields.size() + 4);
  nv.push_back(H2Nv(":method", request_.method));
  nv.push_back(H2Nv(":scheme", request_.scheme));
  nv.push_back(H2Nv(":authority", request_.authority));
  nv.push_back(H2Nv(":path", request_.path));
  for (const auto& [name, value] : request_.fields) nv.push_back(H2Nv(name, value));
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = H2UpConn::ReadBody;
  const bool body = !(ended_ && pending_.empty() && client_trailers_.empty());
  const int32_t id = nghttp2_submit_request(conn.session(), nullptr, nv.data(), nv.size(),
                                            body ? &provider : nullptr, this);
  if (id < 0) {
    Outcome(false);
    return Fail(absl::UnavailableError(std::string("HTTP/2 upstream refused the stream: ") +
                                       nghttp2_strerror(id)),
                502);
  }
  stream_id_ = id;
  sent_at_ = Clock::now();
  exchange_.SentTo(picked_upstream_).Inc();
  conn.Track(id, shared_from_this());
}

void H2Leg::ConnectFailed() {
  server_.Error(*cluster_, *picked_upstream_, "connect").Inc();
  Outcome(false);
  cluster_->upstreams->ReportFailure(picked_upstream_);
  conn_.reset();
  Go(exchange_.Retarget(picked_upstream_));
}

void H2Leg::OnHeaders(bool end) {
  answered_ = true;
  if (end) Outcome(status_ < 500 || status_ > 504 || status_ == 501);
  H2Fields fields = std::move(fields_);
  fields_.clear();
  if (client_) client_->LegHeaders(status_, std::move(fields), end);
}

bool H2Leg::OnData(std::string_view data) {
  if (!client_) return false;
  client_->LegData(data);  // consumed upstream when the client takes it
  return true;
}

void H2Leg::OnClose(uint32_t error_code, bool unprocessed) {
  if (done_) return;
  if (error_code == NGHTTP2_NO_ERROR && answered_) {
    Outcome(status_ < 500 || status_ > 504 || status_ == 501);
    done_ = true;
    load_.Release();
    hold_.reset();
    client_ = nullptr;
    return;
  }
  Outcome(false);
  if (unprocessed && !answered_ && pending_sent_ == 0) {
    // Refused unprocessed: safe to send elsewhere.
    conn_.reset();
    stream_id_ = -1;
    return Go(exchange_.Retarget(picked_upstream_));
  }
  server_.Error(*cluster_, *picked_upstream_, "broken").Inc();
  Fail(absl::UnavailableError("the upstream reset the stream"), 502);
}

void H2Leg::Outcome(bool ok) {
  if (picked_) cluster_->upstreams->Record(picked_, ok);
  picked_ = Picked();
}

void H2Leg::Fail(const absl::Status& error, unsigned status) {
  if (done_) return;
  done_ = true;
  load_.Release();
  Client* client = client_;
  client_ = nullptr;
  auto hold = std::move(hold_);
  if (client) client->LegFailed(error, status, answered_);
}

bool H2Leg::Send(std::string_view data) {
  if (done_) return false;
  pending_.append(data);
  Resume();
  return true;
}

void H2Leg::AddTrailer(std::string_view name, std::string_view value) {
  client_trailers_.emplace_back(name, value);
}

void H2Leg::End() {
  ended_ = true;
  Resume();
}

void H2Leg::Resume() {
  if (!conn_ || !conn_->session() || stream_id_ < 0 || done_) return;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn_->session(), stream_id_);
  }
  conn_->Flush();
}

void H2Leg::Consumed(size_t n) {
  if (!conn_ || !conn_->session() || stream_id_ < 0 || done_) return;
  nghttp2_session_consume_stream(conn_->session(), stream_id_, n);
  conn_->Flush();
}

void H2Leg::Cancel() {
  client_ = nullptr;
  hold_.reset();
  if (done_) return;
  done_ = true;
  load_.Release();
  if (conn_ && conn_->session() && stream_id_ >= 0) {
    nghttp2_submit_rst_stream(conn_->session(), NGHTTP2_FLAG_NONE, stream_id_, NGHTTP2_CANCEL);
    conn_->Flush();
  }
}

// --- the pool ---

H2UpstreamPool::~H2UpstreamPool() = default;

void H2PoolDeleter::operator()(H2UpstreamPool* p) const { delete p; }

std::shared_ptr<H2Leg> H2UpstreamPool::Open(Exchange& exchange, H2LegRequest request,
                                            H2Leg::Client& client, std::shared_ptr<void> hold) {
  auto leg =
      std::make_shared<H2Leg>(server_, exchange, std::move(request), client, std::move(hold));
  leg->pool_ = this;
  leg->Go(exchange.Choose());
  return leg;
}

std::shared_ptr<H2UpConn> H2UpstreamPool::Get(const std::shared_ptr<Upstream>& upstream) {
  auto& conn = conns_[upstream->address];
  if (conn && conn->usable()) return conn;
  conn = std::make_shared<H2UpConn>(server_, *this, ex_, upstream);
  conn->Connect();
  return conn;
}

void H2UpstreamPool::Forget(H2UpConn* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->second.get() == conn) {
      conns_.erase(it);
      return;
    }
  }
}

void H2UpstreamPool::Clear() {
  for (auto& [address, conn] : conns_) conn->Shutdown();
  conns_.clear();
}

}  // namespace mpim::edge::proxy

namespace mpim::edge {

void ProxyServer::Impl::MakeH2Pools() {
  for (size_t i = 0; i < pool_.size(); ++i) {
    h2_pools_.emplace(&pool_.At(i), std::unique_ptr<H2UpstreamPool, H2PoolDeleter>(
                                        new H2UpstreamPool(*this, pool_.At(i).get_executor())));
  }
}

void ProxyServer::Impl::ClearPools() {
  for (auto& [io, p] : conn_pools_) p->Clear();
  for (auto& [io, p] : h2_pools_) p->Clear();
}

ProxyServer::Impl::~Impl() = default;

}  // namespace mpim::edge

namespace mpim::edge::proxy {}  // namespace mpim::edge::proxy
