// The edge's HTTP/2 upstreams (clusters with protocol = "h2": gRPC servers
// and other HTTP/2 services, docs/edge.md "HTTP/2 and gRPC"): per io thread
// one multiplexed cleartext HTTP/2 connection (prior knowledge) to each
// upstream, opened on demand (within edge.connect_timeout_ms) and again
// after it broke or the upstream sent GOAWAY; nghttp2 in client mode.
//
// A client's HTTP/2 stream is joined to a stream upstream (an H2Leg): its
// headers as they came (hop-by-hop fields dropped, X-Forwarded-For/-Proto
// added), its DATA as it comes, its trailers; the upstream's headers, DATA
// and trailers back. Flow control is end to end: the client's window opens
// only as the upstream takes its bytes, the upstream's only as the client
// takes the answer's, so a slow side slows the other instead of filling
// the edge's memory. The answer's headers must come within
// edge.upstream_timeout_ms (else 504); after them a stream may last (gRPC
// streaming). A connection that fails before the request went out is
// reported to the cluster (no new clients until its health check passes)
// and the stream goes to another upstream within the cluster's retries and
// retry budget; a stream the upstream refused unprocessed (REFUSED_STREAM,
// or beyond GOAWAY's last stream) too. Outcomes feed the upstream's breaker
// (5xx and broken streams count as failures; gRPC's own statuses ride in
// trailers and are the application's).
//
// Everything on the io thread of the client connection.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "edge/proxy_internal.h"

struct nghttp2_session;

namespace mpim::edge::proxy {

using H2Fields = std::vector<std::pair<std::string, std::string>>;

struct H2LegRequest {
  std::string method, scheme, authority, path;
  H2Fields fields;   // names in lower case, no pseudo-headers
  bool end = false;  // no body follows
};

class H2UpConn;

class H2Leg : public std::enable_shared_from_this<H2Leg> {
 public:
  // The client's side of the joined stream.
  class Client {
   public:
    virtual void LegHeaders(int status, H2Fields fields, bool end) = 0;
    virtual void LegData(std::string_view data) = 0;
    virtual void LegTrailers(H2Fields trailers) = 0;  // the answer's end, with trailers
    virtual void LegEnd() = 0;                        // the answer's end, without
    // No answer (`answer_began` false: the client gets the edge's error),
    // or the stream broke after it began (the client's is reset).
    virtual void LegFailed(const absl::Status& error, unsigned status, bool answer_began) = 0;
    // The upstream took `n` of the client's body bytes.
    virtual void LegConsumed(size_t n) = 0;

   protected:
    ~Client() = default;
  };

  H2Leg(ProxyServer::Impl& server, Exchange& exchange, H2LegRequest request, Client& client,
        std::shared_ptr<void> hold);
  ~H2Leg();

  // From the client: body bytes (false: not taken, the leg is over),
  // trailers, its end, answer bytes it took.
  bool Send(std::string_view data);
  void AddTrailer(std::string_view name, std::string_view value);
  void End();
  void Consumed(size_t n);
  // The client is gone: the upstream's stream is reset.
  void Cancel();

  const Upstream* upstream() const { return picked_upstream_.get(); }

 private:
  friend class H2UpConn;
  friend class H2UpstreamPool;

  // To an upstream the exchange chooses (again, after a failure).
  void Go(Picked picked);
  void Fail(const absl::Status& error, unsigned status);
  void Resume();
  // From the connection.
  void Submit(H2UpConn& conn);
  void ConnectFailed();
  void OnHeaders(bool end);
  bool OnData(std::string_view data);  // false: nobody takes it
  void OnClose(uint32_t error_code, bool unprocessed);
  void Outcome(bool ok);

  ProxyServer::Impl& server_;
  Exchange& exchange_;
  H2LegRequest request_;
  Client* client_;
  std::shared_ptr<void> hold_;  // the client's stream, while this leg is live
  Cluster* cluster_;
  H2UpstreamPool* pool_ = nullptr;
  Picked picked_;
  std::shared_ptr<Upstream> picked_upstream_;
  InFlight load_;
  std::shared_ptr<H2UpConn> conn_;
  int32_t stream_id_ = -1;
  Clock::time_point sent_at_;
  // The client's body not yet taken by the upstream, and whether it ended.
  std::string pending_;
  size_t pending_sent_ = 0;
  bool ended_ = false;
  H2Fields client_trailers_;
  bool deferred_ = false;
  // The answer as it comes.
  int status_ = 0;
  H2Fields fields_;
  bool answered_ = false;
  bool done_ = false;  // closed, failed or cancelled
};

// Per io thread: the connections to each HTTP/2 upstream.
class H2UpstreamPool {
 public:
  H2UpstreamPool(ProxyServer::Impl& server, Executor ex) : server_(server), ex_(std::move(ex)) {}
  ~H2UpstreamPool();

  // A leg for `request`, routed by `exchange` (prepared), on its way.
  std::shared_ptr<H2Leg> Open(Exchange& exchange, H2LegRequest request, H2Leg::Client& client,
                              std::shared_ptr<void> hold);

  // The connection for `upstream`'s address (a new one when none is usable).
  std::shared_ptr<H2UpConn> Get(const std::shared_ptr<Upstream>& upstream);
  void Forget(H2UpConn* conn);
  void Clear();

 private:
  ProxyServer::Impl& server_;
  Executor ex_;
  std::unordered_map<std::string, std::shared_ptr<H2UpConn>> conns_;
};

}  // namespace mpim::edge::proxy
