// MPIM configuration: one struct, filled from four sources.
//
// Precedence, lowest first: built-in defaults < TOML file (--config) <
// environment (MPIM_<SECTION>_<KEY>, e.g. MPIM_LIMITS_SEND_PER_SEC) <
// command-line flags (--listen, --data-dir, --set section.key=value).
// The defaults give a working all-in-one server with no file at all.
//
// Every key is declared once, in the schema in config.cc, with its type,
// default, range and help text; loading, validation, `mpim config show` and
// `mpim config example` are all driven by that one table. An unknown key, a
// value of the wrong type or a value out of range stops start-up with an
// error naming the key and the problem.
//
// To add a key: add the field to the struct below, then one entry to the
// schema in config.cc (section, key, help, range); docs/configuration.md
// lists the keys.
//
// Thread-safety: LoadConfig is a pure function; a loaded Config is a plain
// value, read-only after start-up.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mpim::core {

struct ServerConfig {
  std::string role = "all";  // all | gateway | logic | task | edge
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  int64_t node_id = 0;                 // snowflake node id, 0..1023
  int64_t io_threads = 0;              // 0: one per core
  int64_t drain_timeout_ms = 10000;    // SIGTERM: in-flight work gets this long
  int64_t request_timeout_ms = 30000;  // whole HTTP request (headers and body) must arrive in this
  int64_t idle_timeout_ms = 60000;     // keep-alive connection idle this long is closed
  int64_t max_header_bytes = 16384;    // 431 above
  int64_t max_body_bytes = 1048576;    // 413 above (HTTP request bodies)
  // Connections whose request headers are still arriving, server-wide
  // (slow or idle new clients); over it new connections are closed. 0: none.
  int64_t max_pending_requests = 10000;
  // Peers (IPs or CIDR networks) whose X-Forwarded-For names the client:
  // the edges or other reverse proxies in front of this node.
  std::vector<std::string> trusted_proxies;
};

struct WebConfig {
  // Directory of the web client served at `/`. Empty: the copy installed
  // next to the binary (<bin>/../share/mpim/web), if any. "off": none.
  std::string root;
};

struct GatewayConfig {
  int64_t auth_timeout_ms = 10000;   // WebSocket must authenticate within this (else 4001)
  int64_t ping_interval_ms = 25000;  // server WebSocket pings
  int64_t idle_timeout_ms = 60000;   // silent WebSocket closed after this
  int64_t fanout_coalesce_ms = 0;    // large fan-outs may wait this long to share writes
  int64_t ack_timeout_ms = 10000;    // unacked qos 1 messages re-sent after this
  int64_t gap_wait_ms = 250;         // a seq gap is held this long, then filled from the store
  int64_t send_queue_max_bytes = 4194304;  // per session: queued + unacked bytes (else 4008)
  int64_t rate_limit_close_after = 100;    // refused sends within 10 s before close 4029
  int64_t max_subscriptions = 1000;        // presence.sub per session
  // WebSockets waiting for an auth frame, server-wide; over it 1013. 0: none.
  int64_t max_unauthenticated = 10000;
};

struct GroupsConfig {
  int64_t fanout_threshold = 500;  // larger groups are fanned out by a background job
  int64_t fanout_batch = 1000;     // members per page of a fan-out job
};

struct MessagesConfig {
  int64_t recall_window_ms = 120000;  // senders may recall this long after sending
};

struct StoreConfig {
  std::string engine = "sqlite";
  std::string sqlite_synchronous = "normal";  // normal: survives kill -9; full: power cut
  int64_t sqlite_reader_threads = 2;
  int64_t sqlite_batch_max = 1024;       // group commit: appends per transaction at most
  int64_t sqlite_batch_delay_us = 1000;  // group commit: wait this long to fill a batch
  std::string mysql_url;                 // mysql://USER:PASS@HOST:PORT/DB (engine mysql)
  int64_t mysql_pool_size = 8;           // reader connections (and threads) of the mysql store
  int64_t mysql_batch_max = 512;         // group commit: writes per transaction at most
  int64_t mysql_timeout_ms = 5000;       // connect, read and write timeout of one call
};

// Which implementation of each pluggable part runs (core/engines.h lists
// the names). cluster.md section 2 names these keys.
struct CacheConfig {
  std::string engine = "local";
  std::string redis_url;               // redis://[:PASS@]HOST:PORT[/DB] (engine redis)
  std::string redis_prefix = "mpim:";  // every Redis key and channel starts with it
  int64_t redis_timeout_ms = 1000;     // one Redis command (and a connect); then unavailable
  int64_t ttl_ms = 300000;             // shared entries in Redis live this long, plus jitter
  int64_t local_ttl_ms = 5000;         // engine redis: entries in a node's memory live this long
  int64_t null_ttl_ms = 10000;         // "not found" answers are kept this long (0: never)
  int64_t warmup_groups = 100;         // most active groups loaded into the caches at start
};

struct RouteConfig {
  std::string engine = "memory";
  std::string redis_url;               // engine redis
  std::string redis_prefix = "mpim:";  // every Redis key and channel starts with it
  int64_t redis_timeout_ms = 1000;     // one Redis command (and a connect); then unavailable
  int64_t node_ttl_ms = 10000;         // a node that stops heartbeating is dead after this
};

struct BusConfig {
  std::string engine = "memory";
  std::string redis_url;               // engines redis-pubsub, redis-streams
  std::string redis_prefix = "mpim:";  // every Redis key and channel starts with it
  int64_t redis_timeout_ms = 1000;     // one Redis command (and a connect); then unavailable
  int64_t stream_max_len = 100000;     // entries a stream keeps (approximately) before trimming
  int64_t claim_idle_ms = 30000;       // a pending entry this old is claimed from its consumer
  int64_t max_deliveries = 5;          // then the entry goes to the dead letters
};

// How nodes find each other (cluster.md section 2; docs/cluster.md).
struct DiscoveryConfig {
  std::string engine = "static";
  // engine static: the other nodes, ROLE=HOST:PORT each (their internal
  // gRPC address); empty: this node is alone.
  std::vector<std::string> static_nodes;
  std::vector<std::string> etcd_endpoints;  // engine etcd: HOST:PORT of each etcd member
  std::string etcd_prefix = "/mpim/";       // every etcd key starts with it
  int64_t lease_ttl_s = 10;                 // a dead node's keys go after this long
  int64_t etcd_timeout_ms = 2000;           // one etcd call; then unavailable
  // engine dns: ROLE=_service._proto.name each (SRV records)
  std::vector<std::string> dns_srv;
  std::vector<std::string> dns_servers;  // HOST:PORT; empty: the system's resolvers
  int64_t dns_refresh_ms = 5000;         // the records are read again this often
};

// Calls between roles (docs/rpc.md): the client a gateway holds for the
// logic role, and the server of a logic node.
struct RpcConfig {
  // Role logic: the internal gRPC address, HOST:PORT; port 0: any free
  // port (discovery carries the bound one).
  std::string listen = "127.0.0.1:0";
  int64_t deadline_ms = 2000;              // a call's deadline, all attempts included
  int64_t max_attempts = 3;                // attempts of a retryable call
  std::string balancer = "least_loaded";   // calls without a key
  std::string key_balancer = "ring_hash";  // calls keyed by a conversation
  int64_t channels_per_endpoint = 2;       // HTTP/2 connections per logic node
  int64_t health_interval_ms = 1000;       // grpc.health.v1 checks; 0: none
  // The circuit breaker per logic node (rpc/policy/circuit_breaker.h).
  int64_t breaker_window_ms = 10000;    // outcomes counted over this sliding window
  int64_t breaker_min_calls = 20;       // calls in the window before it may trip
  int64_t breaker_error_percent = 50;   // trips at this share of failures
  int64_t breaker_open_ms = 1000;       // first open period (doubles while probes fail)
  int64_t breaker_max_open_ms = 30000;  // cap of the open period
  // A gateway's sends and acks coalesced per logic node (service/remote/call_batcher.h).
  int64_t batch_max_items = 256;    // items per call; 0: one call per send or ack
  int64_t batch_max_in_flight = 2;  // batch calls per logic node at a time
  int64_t ack_linger_ms = 20;       // how long an ack may wait for others to one node
  int64_t max_in_flight = 1000;     // server: calls at once, then unavailable
  int64_t rate_per_sec = 0;         // server: calls per second (GCRA); 0: no limit
};

struct LogConfig {
  std::string level = "info";   // trace | debug | info | warn | error
  std::string format = "auto";  // auto (text on a terminal, else json) | json | text
};

// The protocol's limits (protocol.md section 1), `[limits]` in the file.
struct LimitsConfig {
  int64_t send_per_sec = 50;
  int64_t send_burst = 100;
  int64_t body_max_bytes = 65536;
  int64_t frame_max_bytes = 131072;
  int64_t group_max_members = 100000;
  int64_t page_max = 200;
  int64_t connections_per_address = 5000;  // 0: no limit
  int64_t requests_per_sec_address = 500;  // HTTP requests per client address; 0: no limit
  int64_t requests_burst_address = 1000;
};

struct AuthConfig {
  int64_t access_ttl_s = 900;           // access token lifetime
  int64_t refresh_ttl_s = 2592000;      // refresh token lifetime (30 days)
  int64_t argon2_opslimit = 2;          // crypto_pwhash_OPSLIMIT_INTERACTIVE
  int64_t argon2_memlimit_kib = 65536;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  int64_t login_per_min_user = 10;
  int64_t login_per_min_address = 60;
  int64_t hash_threads = 0;  // password hashing pool; 0: one per core
  // Signing keys (base64url, >= 32 bytes). Empty token_key: generated on
  // first start into <data_dir>/auth_keys.json.
  std::string token_key;
  std::string token_key_id;
  std::string previous_token_key;
  std::string previous_token_key_id;
};

// Offline push (protocol.md section 4; docs/push.md), `[push]`.
struct PushConfig {
  std::string webhook_url;  // empty: webhook provider off
  std::string webhook_secret;
  int64_t max_attempts = 8;
  int64_t retry_base_ms = 1000;
  int64_t coalesce_ms = 1000;
  bool preview = true;
  int64_t timeout_ms = 10000;
  std::string apns_url = "https://api.push.apple.com";
  std::string apns_key_file;  // empty: APNs off
  std::string apns_key_id;
  std::string apns_team_id;
  std::string apns_topic;
  std::string fcm_url = "https://fcm.googleapis.com";
  std::string fcm_credentials_file;  // empty: FCM off
  std::string tls_ca_file;           // empty: the system's CAs
};

// The admin API (protocol.md section 5), `[admin]`.
struct AdminConfig {
  std::string api_key;  // empty: off
};

// The edge role (docs/edge.md), `[edge]`: an HTTP/1.1 and WebSocket proxy
// in front of the gateways discovery finds (and the upstreams of a routes
// file).
struct EdgeConfig {
  std::string balancer = "bounded_load";
  // Which part of a request the hashing balancers place: user (the access
  // token's subject, from Authorization or ?token=), address (the client's
  // IP), header:NAME, cookie:NAME.
  std::string hash_key = "user";
  int64_t connect_timeout_ms = 2000;    // a connection to a gateway
  int64_t upstream_timeout_ms = 30000;  // a gateway's whole answer to a request
  int64_t health_interval_ms = 1000;    // GET /readyz of each gateway; 0: none
  int64_t health_timeout_ms = 1000;
  int64_t retries = 1;                 // other gateways tried when one cannot be reached
  int64_t max_idle_per_upstream = 64;  // pooled keep-alive connections, per io thread
  int64_t max_response_bytes = 67108864;
  std::string routes_file;          // routes and upstream clusters; empty: all to the gateways
  int64_t routes_reload_ms = 1000;  // routes_file checked for changes; 0: SIGHUP only
  bool access_log = false;
  std::string tls_cert_file;   // PEM chain; with tls_key_file: the listener also takes TLS
  std::string tls_key_file;    // PEM, owner-only
  std::string geoip_database;  // .mmdb: clients to the nearest zone of clusters with zones
};

// Distributed tracing (docs/operations.md "Tracing"), `[tracing]`.
struct TracingConfig {
  double sample_ratio = 0;    // share of new traces recorded; 0: tracing off
  std::string otlp_endpoint;  // OTLP/HTTP traces URL; empty: tracing off
  int64_t queue_max_spans = 8192;
  int64_t batch_max_spans = 512;
  int64_t export_interval_ms = 500;
  int64_t export_timeout_ms = 5000;
};

struct Config {
  ServerConfig server;
  AuthConfig auth;
  GatewayConfig gateway;
  GroupsConfig groups;
  MessagesConfig messages;
  WebConfig web;
  StoreConfig store;
  CacheConfig cache;
  RouteConfig route;
  BusConfig bus;
  DiscoveryConfig discovery;
  RpcConfig rpc;
  LogConfig log;
  LimitsConfig limits;
  PushConfig push;
  AdminConfig admin;
  EdgeConfig edge;
  TracingConfig tracing;

  // Where each value came from, by "section.key": "file PATH",
  // "environment NAME", "command line", "etcd" (the config centre). A key
  // not listed has its default.
  std::map<std::string, std::string> origins;
};

struct ConfigSources {
  // Path of a TOML file; empty: none.
  std::string file;
  // The process environment as NAME=VALUE pairs; only MPIM_* names whose
  // section is known are read, other MPIM_* names are ignored.
  std::vector<std::pair<std::string, std::string>> env;
  // "section.key" -> value, from the command line; applied last, in order.
  std::vector<std::pair<std::string, std::string>> overrides;
};

// Loads and validates. The error's message names the source and the key.
StatusOr<Config> LoadConfig(const ConfigSources& sources);

// The environment of this process, for ConfigSources::env.
std::vector<std::pair<std::string, std::string>> ProcessEnvironment();

// The effective configuration as TOML, secrets masked, each value not at
// its default followed by where it came from (`mpim config show`).
std::string ShowConfig(const Config& config);

// The keys the configuration centre may change while a node runs
// (docs/configuration.md, "Changing settings at run time").
const std::vector<std::string>& LiveKeys();
bool IsLiveKey(std::string_view name);

// `base` with `name` ("section.key") set to `value` (text as for --set),
// validated as a whole, the key's origin set to `origin`. invalid_argument
// for an unknown key or a bad value; failed_precondition for a key that
// cannot change at run time (unless `live_only` is false).
StatusOr<Config> WithValue(const Config& base, std::string_view name, std::string_view value,
                           const std::string& origin, bool live_only = true);

// A commented example file with every key at its default (`mpim config example`).
std::string ExampleConfig();

// Parses "host:port" or "[v6]:port"; port 0..65535.
StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text);

}  // namespace mpim::core
