#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string_view>
#include <variant>

#include "core/engines.h"
#include "core/text.h"
#include "core/trusted_proxies.h"

extern char** environ;

namespace mpim::core {
namespace {

using FieldRef = std::variant<std::string*, int64_t*, std::vector<std::string>*, bool*, double*>;

// One key of the configuration. The schema below is the single source of
// truth for names, types, ranges and help texts.
struct Field {
  std::string_view section;
  std::string_view key;
  std::string help;
  std::function<FieldRef(Config&)> ref;
  int64_t min = 0;                                  // integer fields
  int64_t max = 0;                                  // integer fields
  std::vector<std::string_view> choices;            // string fields; empty: any value
  std::function<Status(const std::string&)> check;  // string (and list element) fields
  bool secret = false;                              // masked by ShowConfig
  double real_min = 0;                              // real-number fields
  double real_max = 0;                              // real-number fields

  std::string Name() const { return std::string(section) + "." + std::string(key); }
};

Field Int(std::string_view section, std::string_view key, int64_t min, int64_t max,
          std::function<int64_t*(Config&)> ref, std::string_view help) {
  return Field{
      section, key,    std::string(help), [ref](Config& c) -> FieldRef { return ref(c); }, min, max,
      {},      nullptr};
}

Field Str(std::string_view section, std::string_view key, std::vector<std::string_view> choices,
          std::function<std::string*(Config&)> ref, std::string_view help,
          std::function<Status(const std::string&)> check = nullptr) {
  return Field{section, key, std::string(help),  [ref](Config& c) -> FieldRef { return ref(c); },
               0,       0,   std::move(choices), std::move(check)};
}

Field Real(std::string_view section, std::string_view key, double min, double max,
           std::function<double*(Config&)> ref, std::string_view help) {
  Field f{section, key, std::string(help), [ref](Config& c) -> FieldRef { return ref(c); }};
  f.real_min = min;
  f.real_max = max;
  return f;
}

Field Bool(std::string_view section, std::string_view key, std::function<bool*(Config&)> ref,
           std::string_view help) {
  return Field{section, key, std::string(help), [ref](Config& c) -> FieldRef { return ref(c); }};
}

// A list of strings: a TOML array, or comma-separated text (environment,
// --set), optionally in brackets and quoted: a:1,b:2 or ["a:1", "b:2"].
// `check` applies to each element.
Field List(std::string_view section, std::string_view key,
           std::function<std::vector<std::string>*(Config&)> ref, std::string_view help,
           std::function<Status(const std::string&)> check = nullptr) {
  Field f{section, key, std::string(help), [ref](Config& c) -> FieldRef { return ref(c); }};
  f.check = std::move(check);
  return f;
}

// "a, b" / ["a", "b"] / "" -> its elements, trimmed and unquoted.
std::vector<std::string> SplitList(std::string_view text) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
    return v;
  };
  text = trim(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = trim(text.substr(1, text.size() - 2));
  }
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') {
      item = item.substr(1, item.size() - 2);
    }
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

Field Secret(std::string_view section, std::string_view key,
             std::function<std::string*(Config&)> ref, std::string_view help) {
  Field f = Str(section, key, {}, std::move(ref), help);
  f.secret = true;
  return f;
}

Status CheckListen(const std::string& value) { return ParseHostPort(value).status(); }

// ROLE=HOST:PORT of discovery.static_nodes.
Status CheckStaticNode(const std::string& value) {
  size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError("expected ROLE=HOST:PORT");
  }
  const std::string role = value.substr(0, eq);
  if (role != "gateway" && role != "logic" && role != "task" && role != "all") {
    return absl::InvalidArgumentError("role must be gateway, logic, task or all");
  }
  return ParseHostPort(value.substr(eq + 1)).status();
}

// ROLE=NAME of discovery.dns_srv.
Status CheckSrvEntry(const std::string& value) {
  size_t eq = value.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
    return absl::InvalidArgumentError("expected ROLE=NAME");
  }
  const std::string role = value.substr(0, eq);
  if (role != "gateway" && role != "logic" && role != "task" && role != "all") {
    return absl::InvalidArgumentError("role must be gateway, logic, task or all");
  }
  return absl::OkStatus();
}

Status CheckUrlOrEmpty(const std::string& value) {
  if (value.empty() || value.rfind("http://", 0) == 0 || value.rfind("https://", 0) == 0) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("expected an http:// or https:// URL");
}

// edge.hash_key: user | address | header:NAME | cookie:NAME.
Status CheckHashKey(const std::string& value) {
  if (value == "user" || value == "address") return absl::OkStatus();
  for (std::string_view prefix : {"header:", "cookie:"}) {
    if (value.rfind(prefix, 0) == 0 && value.size() > prefix.size()) return absl::OkStatus();
  }
  return absl::InvalidArgumentError("expected user, address, header:NAME or cookie:NAME");
}

Status CheckNotEmpty(const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError("must not be empty");
  return absl::OkStatus();
}

const std::vector<Field>& Schema() {
  static const std::vector<Field> schema = {
      // [server]
      Str(
          "server", "role", {"all", "gateway", "logic", "task", "edge"},
          [](Config& c) { return &c.server.role; },
          "Which role this process runs: `all` (every role in one process), `gateway` "
          "(client connections), `logic` (the services, over gRPC), `task` (background "
          "jobs) or `edge` (a proxy in front of the gateways). docs/cluster.md, docs/edge.md."),
      Str(
          "server", "listen", {}, [](Config& c) { return &c.server.listen; },
          "Address of the HTTP and WebSocket listener, HOST:PORT.", CheckListen),
      Str(
          "server", "data_dir", {}, [](Config& c) { return &c.server.data_dir; },
          "Directory for the embedded store and generated keys; created if missing.",
          CheckNotEmpty),
      Int(
          "server", "node_id", 0, 1023, [](Config& c) { return &c.server.node_id; },
          "Node id in generated ids (snowflake); unique per process in a cluster. With "
          "discovery.engine = etcd, etcd hands it out (a non-zero value here is the one "
          "asked for first)."),
      Int(
          "server", "io_threads", 0, 256, [](Config& c) { return &c.server.io_threads; },
          "Network io threads; 0 means one per core."),
      Int(
          "server", "drain_timeout_ms", 0, 600000,
          [](Config& c) { return &c.server.drain_timeout_ms; },
          "On SIGTERM or SIGINT, in-flight requests get this long to finish."),
      Int(
          "server", "request_timeout_ms", 100, 3600000,
          [](Config& c) { return &c.server.request_timeout_ms; },
          "An HTTP request's headers and body must arrive within this time."),
      Int(
          "server", "idle_timeout_ms", 100, 3600000,
          [](Config& c) { return &c.server.idle_timeout_ms; },
          "A keep-alive HTTP connection idle this long is closed."),
      Int(
          "server", "max_header_bytes", 1024, 1048576,
          [](Config& c) { return &c.server.max_header_bytes; },
          "Largest HTTP request header block; larger ones get 431."),
      Int(
          "server", "max_body_bytes", 1024, 1073741824,
          [](Config& c) { return &c.server.max_body_bytes; },
          "Largest HTTP request body; larger ones get 413."),
      Int(
          "server", "max_pending_requests", 0, 10000000,
          [](Config& c) { return &c.server.max_pending_requests; },
          "Connections whose request headers are still arriving (new ones that have sent "
          "nothing yet included), server-wide; over it new connections are closed at once. 0 "
          "means no limit."),
      List(
          "server", "trusted_proxies", [](Config& c) { return &c.server.trusted_proxies; },
          "Peers (IP addresses or CIDR networks) trusted to name the client in "
          "X-Forwarded-For: the edges or other reverse proxies in front of this node. Requests "
          "from them count against the client's address in the per-address limits, and their "
          "connections are not limited per address. Empty: none.",
          [](const std::string& v) { return TrustedProxies::Check(v); }),
      // [auth]
      Int(
          "auth", "access_ttl_s", 1, 86400, [](Config& c) { return &c.auth.access_ttl_s; },
          "Lifetime of access tokens, in seconds."),
      Int(
          "auth", "refresh_ttl_s", 60, 31536000, [](Config& c) { return &c.auth.refresh_ttl_s; },
          "Lifetime of refresh tokens, in seconds; each refresh starts a new one."),
      Int(
          "auth", "argon2_opslimit", 1, 20, [](Config& c) { return &c.auth.argon2_opslimit; },
          "Argon2id passes for password hashes (libsodium's interactive limit is 2)."),
      Int(
          "auth", "argon2_memlimit_kib", 8, 4194304,
          [](Config& c) { return &c.auth.argon2_memlimit_kib; },
          "Argon2id memory per password hash, in KiB (libsodium's interactive limit is 65536)."),
      Int(
          "auth", "login_per_min_user", 1, 1000000,
          [](Config& c) { return &c.auth.login_per_min_user; },
          "Login attempts per minute per username."),
      Int(
          "auth", "login_per_min_address", 1, 1000000,
          [](Config& c) { return &c.auth.login_per_min_address; },
          "Login attempts per minute per client address."),
      Int(
          "auth", "hash_threads", 0, 256, [](Config& c) { return &c.auth.hash_threads; },
          "Threads for password hashing; 0 means one per core."),
      Secret(
          "auth", "token_key", [](Config& c) { return &c.auth.token_key; },
          "Key signing access tokens: base64url, at least 32 bytes. Empty: one is generated "
          "on first start into <data_dir>/auth_keys.json (mode 0600)."),
      Str(
          "auth", "token_key_id", {}, [](Config& c) { return &c.auth.token_key_id; },
          "Key id (`kid`) of token_key; required with it."),
      Secret(
          "auth", "previous_token_key", [](Config& c) { return &c.auth.previous_token_key; },
          "The key before token_key: tokens it signed stay valid until they expire."),
      Str(
          "auth", "previous_token_key_id", {},
          [](Config& c) { return &c.auth.previous_token_key_id; }, "Key id of previous_token_key."),
      // [gateway]
      Int(
          "gateway", "auth_timeout_ms", 100, 600000,
          [](Config& c) { return &c.gateway.auth_timeout_ms; },
          "A WebSocket that has not authenticated within this time is closed with 4001."),
      Int(
          "gateway", "ping_interval_ms", 100, 3600000,
          [](Config& c) { return &c.gateway.ping_interval_ms; },
          "Interval of the server's WebSocket pings."),
      Int(
          "gateway", "idle_timeout_ms", 200, 3600000,
          [](Config& c) { return &c.gateway.idle_timeout_ms; },
          "A WebSocket from which nothing (not even a pong) arrives for this long is closed."),
      Int(
          "gateway", "ack_timeout_ms", 100, 3600000,
          [](Config& c) { return &c.gateway.ack_timeout_ms; },
          "A qos 1 message a connected session has not acked within this time is sent again."),
      Int(
          "gateway", "fanout_coalesce_ms", 0, 1000,
          [](Config& c) { return &c.gateway.fanout_coalesce_ms; },
          "A message fanned out to 100 or more sessions may wait this long on each socket to "
          "share one write with the frames after it (0: written at once)."),
      Int(
          "gateway", "gap_wait_ms", 0, 60000, [](Config& c) { return &c.gateway.gap_wait_ms; },
          "A message arriving ahead of its predecessor is held this long, then the gap is "
          "filled from the store."),
      Int(
          "gateway", "send_queue_max_bytes", 4096, 1073741824,
          [](Config& c) { return &c.gateway.send_queue_max_bytes; },
          "Per session: bytes of frames waiting to be written plus unacked messages; above it "
          "the session is closed with 4008 (slow consumer)."),
      Int(
          "gateway", "rate_limit_close_after", 1, 1000000,
          [](Config& c) { return &c.gateway.rate_limit_close_after; },
          "A session whose sends are refused this many times within 10 s is closed with 4029."),
      Int(
          "gateway", "max_subscriptions", 1, 1000000,
          [](Config& c) { return &c.gateway.max_subscriptions; },
          "Most users one session may follow with presence.sub."),
      Int(
          "gateway", "max_unauthenticated", 0, 10000000,
          [](Config& c) { return &c.gateway.max_unauthenticated; },
          "WebSockets waiting for an auth frame (no token on the upgrade), server-wide; over it a "
          "new one is closed with 1013 (try again later). 0 means no limit."),
      // [groups]
      Int(
          "groups", "fanout_threshold", 0, 10000000,
          [](Config& c) { return &c.groups.fanout_threshold; },
          "Groups with more members than this are fanned out by a background job instead of "
          "in the send path, and do not broadcast read receipts or typing."),
      Int(
          "groups", "fanout_batch", 1, 100000, [](Config& c) { return &c.groups.fanout_batch; },
          "Members per page of a fan-out job."),
      // [messages]
      Int(
          "messages", "recall_window_ms", 0, 31536000000,
          [](Config& c) { return &c.messages.recall_window_ms; },
          "How long after sending a sender may recall a message (group owners and admins "
          "may recall at any time)."),
      // [web]
      Str(
          "web", "root", {}, [](Config& c) { return &c.web.root; },
          "Directory of the web client served at /. Empty: the copy installed with the "
          "binary (<bin>/../share/mpim/web), if any; \"off\": serve none."),
      // [store]
      Str(
          "store", "engine", EngineNames("store.engine"), [](Config& c) { return &c.store.engine; },
          "Storage engine: " + EngineHelp("store.engine") + "."),
      Str(
          "store", "sqlite_synchronous", {"normal", "full"},
          [](Config& c) { return &c.store.sqlite_synchronous; },
          "`normal`: an acknowledged write survives a crash of the process; `full`: it "
          "also survives a power cut, at a cost in write latency."),
      Int(
          "store", "sqlite_reader_threads", 1, 64,
          [](Config& c) { return &c.store.sqlite_reader_threads; },
          "Reader connections (and threads) of the SQLite store."),
      Int(
          "store", "sqlite_batch_max", 1, 65536,
          [](Config& c) { return &c.store.sqlite_batch_max; },
          "Group commit: most writes in one transaction."),
      Int(
          "store", "sqlite_batch_delay_us", 0, 100000,
          [](Config& c) { return &c.store.sqlite_batch_delay_us; },
          "Group commit: how long the writer waits to fill a batch, in microseconds."),
      Str(
          "store", "mysql_url", {}, [](Config& c) { return &c.store.mysql_url; },
          "MariaDB/MySQL of store.engine = \"mysql\": mysql://USER:PASS@HOST:PORT/DB (the "
          "database must exist; the schema is migrated at start)."),
      Int(
          "store", "mysql_pool_size", 1, 256, [](Config& c) { return &c.store.mysql_pool_size; },
          "Connections (each with its thread) the mysql store reads through; writes have one "
          "more."),
      Int(
          "store", "mysql_batch_max", 1, 65536, [](Config& c) { return &c.store.mysql_batch_max; },
          "Group commit on mysql: most writes in one transaction."),
      Int(
          "store", "mysql_timeout_ms", 100, 600000,
          [](Config& c) { return &c.store.mysql_timeout_ms; },
          "Connect, read and write timeout of one database call; past it the call fails with "
          "`unavailable`."),
      // [cache], [route], [bus]
      Str(
          "cache", "engine", EngineNames("cache.engine"), [](Config& c) { return &c.cache.engine; },
          "The cache in front of the store (cache-aside): " + EngineHelp("cache.engine") + "."),
      Str(
          "cache", "redis_url", {}, [](Config& c) { return &c.cache.redis_url; },
          "Redis of cache.engine = \"redis\": redis://[:PASS@]HOST:PORT[/DB]."),
      Str(
          "cache", "redis_prefix", {}, [](Config& c) { return &c.cache.redis_prefix; },
          "Prefix of every Redis key and channel of the redis cache, so that several "
          "deployments (or tests) can share one Redis."),
      Int(
          "cache", "redis_timeout_ms", 10, 600000,
          [](Config& c) { return &c.cache.redis_timeout_ms; },
          "A Redis command (or connect) without a reply within this time fails; the "
          "connection is dropped and made again with back-off, and reads go to the store."),
      Int(
          "cache", "ttl_ms", 1000, 2592000000, [](Config& c) { return &c.cache.ttl_ms; },
          "Lifetime of an entry in Redis, plus a random 0-10% against expiring together; "
          "bounds what an invalidation that could not reach Redis leaves behind."),
      Int(
          "cache", "local_ttl_ms", 0, 2592000000, [](Config& c) { return &c.cache.local_ttl_ms; },
          "Engine redis: lifetime of an entry in a node's memory (0: until invalidated); "
          "bounds how long a node may answer from an entry whose invalidation it missed."),
      Int(
          "cache", "null_ttl_ms", 0, 86400000, [](Config& c) { return &c.cache.null_ttl_ms; },
          "How long a \"not found\" answer of the store is kept (against lookups of ids that "
          "do not exist); 0: never kept."),
      Int(
          "cache", "warmup_groups", 0, 1000, [](Config& c) { return &c.cache.warmup_groups; },
          "At start, the caches are loaded with this many of the most recently active groups "
          "and their members (the first 1,000 of each), in the background (0: no warm-up)."),
      Str(
          "route", "engine", EngineNames("route.engine"), [](Config& c) { return &c.route.engine; },
          "The route table (user -> live connections on which node) and presence: " +
              EngineHelp("route.engine") + "."),
      Str(
          "route", "redis_url", {}, [](Config& c) { return &c.route.redis_url; },
          "Redis of route.engine = \"redis\": redis://[:PASS@]HOST:PORT[/DB]."),
      Str(
          "route", "redis_prefix", {}, [](Config& c) { return &c.route.redis_prefix; },
          "Prefix of every Redis key and channel of the route table and presence."),
      Int(
          "route", "redis_timeout_ms", 10, 600000,
          [](Config& c) { return &c.route.redis_timeout_ms; },
          "A route table command without a reply within this time fails (deliveries that "
          "needed it are dropped and found again by hello/sync)."),
      Int(
          "route", "node_ttl_ms", 1000, 300000, [](Config& c) { return &c.route.node_ttl_ms; },
          "Engine redis: a node heartbeats every third of this; a node silent this long is "
          "dead: its routes are removed and its users turn offline (within about 1.2x this)."),
      Str(
          "bus", "engine", EngineNames("bus.engine"), [](Config& c) { return &c.bus.engine; },
          "How the message pipeline reaches the gateways' sessions: " + EngineHelp("bus.engine") +
              "."),
      Str(
          "bus", "redis_url", {}, [](Config& c) { return &c.bus.redis_url; },
          "Redis of bus.engine = \"redis-pubsub\" or \"redis-streams\": "
          "redis://[:PASS@]HOST:PORT[/DB]."),
      Str(
          "bus", "redis_prefix", {}, [](Config& c) { return &c.bus.redis_prefix; },
          "Prefix of every Redis key and channel of the bus."),
      Int(
          "bus", "redis_timeout_ms", 10, 600000, [](Config& c) { return &c.bus.redis_timeout_ms; },
          "A bus command without a reply within this time fails."),
      Int(
          "bus", "stream_max_len", 1000, 100000000, [](Config& c) { return &c.bus.stream_max_len; },
          "Entries a stream keeps (approximately, MAXLEN ~) before the oldest are trimmed."),
      Int(
          "bus", "claim_idle_ms", 100, 86400000, [](Config& c) { return &c.bus.claim_idle_ms; },
          "A stream entry delivered to a consumer and not acknowledged for this long is "
          "claimed by another consumer of the group (its consumer is presumed dead)."),
      Int(
          "bus", "max_deliveries", 1, 1000, [](Config& c) { return &c.bus.max_deliveries; },
          "A stream entry delivered this many times without an acknowledgement goes to the "
          "stream's dead letters."),
      // [discovery]
      Str(
          "discovery", "engine", EngineNames("discovery.engine"),
          [](Config& c) { return &c.discovery.engine; },
          "How nodes find each other: " + EngineHelp("discovery.engine") + "."),
      List(
          "discovery", "static_nodes", [](Config& c) { return &c.discovery.static_nodes; },
          "Engine static: the other nodes, each ROLE=HOST:PORT (e.g. logic=10.0.0.2:7001); "
          "empty: this node is alone.",
          CheckStaticNode),
      List(
          "discovery", "etcd_endpoints", [](Config& c) { return &c.discovery.etcd_endpoints; },
          "Engine etcd: the etcd v3 endpoints, each HOST:PORT.", CheckListen),
      Str(
          "discovery", "etcd_prefix", {}, [](Config& c) { return &c.discovery.etcd_prefix; },
          "Engine etcd: every key MPIM writes starts with it (one prefix per cluster).",
          CheckNotEmpty),
      Int(
          "discovery", "lease_ttl_s", 2, 300, [](Config& c) { return &c.discovery.lease_ttl_s; },
          "Engine etcd: a node's registration and node id live under a lease of this many "
          "seconds, kept alive every third of it; a node that dies is gone within it."),
      Int(
          "discovery", "etcd_timeout_ms", 100, 60000,
          [](Config& c) { return &c.discovery.etcd_timeout_ms; },
          "Engine etcd: one call without an answer within this time fails."),
      List(
          "discovery", "dns_srv", [](Config& c) { return &c.discovery.dns_srv; },
          "Engine dns: the SRV names of the other roles' nodes, each ROLE=NAME (e.g. "
          "logic=_grpc._tcp.mpim-logic.default.svc.cluster.local).",
          CheckSrvEntry),
      List(
          "discovery", "dns_servers", [](Config& c) { return &c.discovery.dns_servers; },
          "Engine dns: the DNS servers to ask, each HOST:PORT; empty: the system's "
          "(/etc/resolv.conf).",
          CheckListen),
      Int(
          "discovery", "dns_refresh_ms", 100, 3600000,
          [](Config& c) { return &c.discovery.dns_refresh_ms; },
          "Engine dns: the SRV records are read again this often."),
      // [rpc]
      Str(
          "rpc", "listen", {}, [](Config& c) { return &c.rpc.listen; },
          "Role logic: the internal gRPC address, HOST:PORT (port 0: any free port; "
          "discovery carries the bound one).",
          CheckListen),
      Int(
          "rpc", "deadline_ms", 10, 600000, [](Config& c) { return &c.rpc.deadline_ms; },
          "A call to another role (every attempt included) fails with deadline_exceeded "
          "after this long."),
      Int(
          "rpc", "max_attempts", 1, 10, [](Config& c) { return &c.rpc.max_attempts; },
          "Attempts of a call that is safe to repeat (reads, sends) when a node is "
          "unavailable, each on another node where there is one."),
      Str(
          "rpc", "balancer", EngineNames("rpc.balancer"), [](Config& c) { return &c.rpc.balancer; },
          "Which logic node gets a call without a key: " + EngineHelp("rpc.balancer") + "."),
      Str(
          "rpc", "key_balancer", EngineNames("rpc.key_balancer"),
          [](Config& c) { return &c.rpc.key_balancer; },
          "Which logic node gets a call with a key (a conversation's sends by its id, a user's "
          "acks and hello by the user id): " +
              EngineHelp("rpc.key_balancer") + "."),
      Int(
          "rpc", "channels_per_endpoint", 1, 64,
          [](Config& c) { return &c.rpc.channels_per_endpoint; },
          "HTTP/2 connections to each logic node, opened at once and replaced when broken."),
      Int(
          "rpc", "health_interval_ms", 0, 600000,
          [](Config& c) { return &c.rpc.health_interval_ms; },
          "How often each logic node's grpc.health.v1 is checked; 0: never."),
      Int(
          "rpc", "breaker_window_ms", 100, 600000,
          [](Config& c) { return &c.rpc.breaker_window_ms; },
          "The circuit breaker of each logic node counts outcomes over this sliding window "
          "(ten slices; a multiple of 10)."),
      Int(
          "rpc", "breaker_min_calls", 1, 1000000,
          [](Config& c) { return &c.rpc.breaker_min_calls; },
          "Calls in the window before a breaker may open."),
      Int(
          "rpc", "breaker_error_percent", 1, 100,
          [](Config& c) { return &c.rpc.breaker_error_percent; },
          "A breaker opens when this share (percent) of the window's calls failed (unavailable, "
          "deadline_exceeded, internal, resource_exhausted)."),
      Int(
          "rpc", "breaker_open_ms", 1, 600000, [](Config& c) { return &c.rpc.breaker_open_ms; },
          "How long an open breaker refuses calls before letting probes through; doubles each "
          "time the probes fail."),
      Int(
          "rpc", "breaker_max_open_ms", 1, 3600000,
          [](Config& c) { return &c.rpc.breaker_max_open_ms; },
          "The longest open period (at least rpc.breaker_open_ms)."),
      Int(
          "rpc", "batch_max_items", 0, 4096, [](Config& c) { return &c.rpc.batch_max_items; },
          "Role gateway: sends (and acks) to one logic node that come while its batch calls are "
          "in flight leave together in one call of at most this many; 0: one call each."),
      Int(
          "rpc", "batch_max_in_flight", 1, 64, [](Config& c) { return &c.rpc.batch_max_in_flight; },
          "Role gateway: batch calls of sends (and of acks) per logic node at a time."),
      Int(
          "rpc", "ack_linger_ms", 0, 1000, [](Config& c) { return &c.rpc.ack_linger_ms; },
          "Role gateway: how long an ack may wait for others to the same logic node before "
          "their AckMany call leaves (acks have no reply); 0: at once when a call slot is free."),
      Int(
          "rpc", "max_in_flight", 1, 1000000, [](Config& c) { return &c.rpc.max_in_flight; },
          "Role logic: calls served at once; beyond it calls are refused with unavailable "
          "(and retried on another node), never queued."),
      Int(
          "rpc", "rate_per_sec", 0, 10000000, [](Config& c) { return &c.rpc.rate_per_sec; },
          "Role logic: calls accepted per second (GCRA, burst of one second); beyond it "
          "rate_limited. 0: no limit."),
      // [log]
      Str(
          "log", "level", {"trace", "debug", "info", "warn", "error"},
          [](Config& c) { return &c.log.level; }, "Lowest level written."),
      Str(
          "log", "format", {"auto", "json", "text"}, [](Config& c) { return &c.log.format; },
          "`json` lines, human-readable `text`, or `auto`: text on a terminal, json otherwise."),
      // [limits]
      Int(
          "limits", "send_per_sec", 1, 1000000, [](Config& c) { return &c.limits.send_per_sec; },
          "Sends per second per user (sustained)."),
      Int(
          "limits", "send_burst", 1, 1000000, [](Config& c) { return &c.limits.send_burst; },
          "Sends per user allowed in a burst."),
      Int(
          "limits", "body_max_bytes", 16, 16777216,
          [](Config& c) { return &c.limits.body_max_bytes; }, "Largest message body, serialized."),
      Int(
          "limits", "frame_max_bytes", 1024, 67108864,
          [](Config& c) { return &c.limits.frame_max_bytes; },
          "Largest WebSocket frame; larger ones close the socket with 1009."),
      Int(
          "limits", "group_max_members", 2, 10000000,
          [](Config& c) { return &c.limits.group_max_members; }, "Most members of one group."),
      Int(
          "limits", "page_max", 1, 10000, [](Config& c) { return &c.limits.page_max; },
          "Largest page size a client may ask for."),
      Int(
          "limits", "connections_per_address", 0, 10000000,
          [](Config& c) { return &c.limits.connections_per_address; },
          "Open connections per client address; 0 means no limit."),
      Int(
          "limits", "requests_per_sec_address", 0, 10000000,
          [](Config& c) { return &c.limits.requests_per_sec_address; },
          "HTTP requests (WebSocket upgrades included) per second per client address, "
          "sustained; over it 429 rate_limited. 0 means no limit."),
      Int(
          "limits", "requests_burst_address", 1, 10000000,
          [](Config& c) { return &c.limits.requests_burst_address; },
          "HTTP requests per client address allowed in a burst."),
      // [push]
      Str(
          "push", "webhook_url", {}, [](Config& c) { return &c.push.webhook_url; },
          "Webhook push provider: devices of platform \"webhook\" are pushed by an HTTP POST "
          "here (docs/push.md). Empty: off.",
          CheckUrlOrEmpty),
      Secret(
          "push", "webhook_secret", [](Config& c) { return &c.push.webhook_secret; },
          "Key of the webhook's X-MPIM-Signature (HMAC-SHA256 of the body)."),
      Int(
          "push", "max_attempts", 1, 100, [](Config& c) { return &c.push.max_attempts; },
          "Attempts per push (the first included) before it becomes a dead letter."),
      Int(
          "push", "retry_base_ms", 1, 3600000, [](Config& c) { return &c.push.retry_base_ms; },
          "First retry of a push after about this long (jittered), doubling each time."),
      Int(
          "push", "coalesce_ms", 0, 3600000, [](Config& c) { return &c.push.coalesce_ms; },
          "Pushes to one device within this window are merged into one carrying the latest "
          "message."),
      Bool(
          "push", "preview", [](Config& c) { return &c.push.preview; },
          "Put the start of a text message in the notification (`preview`)."),
      Int(
          "push", "timeout_ms", 100, 600000, [](Config& c) { return &c.push.timeout_ms; },
          "Deadline of one request to a push provider."),
      Str(
          "push", "apns_url", {}, [](Config& c) { return &c.push.apns_url; },
          "APNs endpoint (HTTP/2): Apple's production or sandboxed host, or a private gateway.",
          CheckUrlOrEmpty),
      Str(
          "push", "apns_key_file", {}, [](Config& c) { return &c.push.apns_key_file; },
          "APNs provider key (.p8) from Apple's developer account; readable by the owner "
          "only. Empty: APNs off."),
      Str(
          "push", "apns_key_id", {}, [](Config& c) { return &c.push.apns_key_id; },
          "Key id of apns_key_file."),
      Str(
          "push", "apns_team_id", {}, [](Config& c) { return &c.push.apns_team_id; },
          "Apple developer team id (the provider token's issuer)."),
      Str(
          "push", "apns_topic", {}, [](Config& c) { return &c.push.apns_topic; },
          "The app's bundle id (apns-topic)."),
      Str(
          "push", "fcm_url", {}, [](Config& c) { return &c.push.fcm_url; }, "FCM HTTP v1 endpoint.",
          CheckUrlOrEmpty),
      Str(
          "push", "fcm_credentials_file", {},
          [](Config& c) { return &c.push.fcm_credentials_file; },
          "FCM service-account key (JSON) from the Firebase console; readable by the owner "
          "only. Empty: FCM off."),
      Str(
          "push", "tls_ca_file", {}, [](Config& c) { return &c.push.tls_ca_file; },
          "CA certificates (PEM) the providers' servers are checked against. Empty: the "
          "system's."),
      // [admin]
      Secret(
          "admin", "api_key", [](Config& c) { return &c.admin.api_key; },
          "Bearer key of the admin API (/api/v1/admin, docs/push.md). Empty: the admin API is "
          "off (404)."),
      // [edge]
      Str(
          "edge", "balancer", EngineNames("rpc.balancer"),
          [](Config& c) { return &c.edge.balancer; },
          "Role edge: which gateway gets a client: " + EngineHelp("rpc.balancer") +
              ". The hashing ones place edge.hash_key."),
      Str(
          "edge", "hash_key", {}, [](Config& c) { return &c.edge.hash_key; },
          "Role edge: what the hashing balancers place: `user` (the access token's subject, "
          "from Authorization: Bearer or ?token=), `address` (the client's IP), `header:NAME` "
          "or `cookie:NAME`. A request without it goes to any gateway.",
          CheckHashKey),
      Int(
          "edge", "connect_timeout_ms", 10, 600000,
          [](Config& c) { return &c.edge.connect_timeout_ms; },
          "Role edge: a connection to a gateway must be up within this."),
      Int(
          "edge", "upstream_timeout_ms", 10, 3600000,
          [](Config& c) { return &c.edge.upstream_timeout_ms; },
          "Role edge: a gateway's whole answer to a request must arrive within this (else 504)."),
      Int(
          "edge", "health_interval_ms", 0, 600000,
          [](Config& c) { return &c.edge.health_interval_ms; },
          "Role edge: each gateway's GET /readyz this often; a gateway that fails it gets no "
          "new clients until it passes. 0: no checks."),
      Int(
          "edge", "health_timeout_ms", 10, 600000,
          [](Config& c) { return &c.edge.health_timeout_ms; },
          "Role edge: a health check fails after this long."),
      Int(
          "edge", "retries", 0, 10, [](Config& c) { return &c.edge.retries; },
          "Role edge: other gateways tried when one cannot be connected to (any request), or "
          "broke before answering (GET, HEAD, OPTIONS and WebSocket upgrades)."),
      Int(
          "edge", "max_idle_per_upstream", 0, 100000,
          [](Config& c) { return &c.edge.max_idle_per_upstream; },
          "Role edge: keep-alive connections to each gateway kept idle for reuse, per io "
          "thread."),
      Int(
          "edge", "max_response_bytes", 1024, int64_t{1} << 34,
          [](Config& c) { return &c.edge.max_response_bytes; },
          "Role edge: a gateway's answer body above this is refused (502)."),
      Str(
          "edge", "routes_file", {}, [](Config& c) { return &c.edge.routes_file; },
          "Role edge: upstream clusters and the routes to them (TOML, docs/edge.md \"Routes\"), "
          "read again when the file changes or on SIGHUP. Empty: every request to the "
          "gateways in discovery."),
      Int(
          "edge", "routes_reload_ms", 0, 3600000,
          [](Config& c) { return &c.edge.routes_reload_ms; },
          "Role edge: how often edge.routes_file is checked for changes. 0: only on SIGHUP."),
      Bool(
          "edge", "access_log", [](Config& c) { return &c.edge.access_log; },
          "Role edge: one log line per request (logger edge.access): client, method, path "
          "(never the query), status, route, upstream, attempts, time."),
      Str(
          "edge", "tls_cert_file", {}, [](Config& c) { return &c.edge.tls_cert_file; },
          "Role edge: certificate chain (PEM). With edge.tls_key_file the listener also takes "
          "TLS (told apart from cleartext HTTP by the first bytes), read again when the files "
          "change or on SIGHUP."),
      Str(
          "edge", "tls_key_file", {}, [](Config& c) { return &c.edge.tls_key_file; },
          "Role edge: the certificate's private key (PEM), readable by its owner only."),
      Str(
          "edge", "geoip_database", {}, [](Config& c) { return &c.edge.geoip_database; },
          "Role edge: a MaxMind DB file (.mmdb, GeoIP2/GeoLite2 City or Country) locating "
          "clients by address, for upstream clusters with zones (docs/edge.md \"GeoIP\"); "
          "read again when it changes or on SIGHUP. Empty: zones are not used."),
      // [tracing]
      Real(
          "tracing", "sample_ratio", 0, 1, [](Config& c) { return &c.tracing.sample_ratio; },
          "Share of the traces that start here (a client's request or op) that are recorded, "
          "0 to 1; the roles a traced request reaches follow its decision. 0: tracing off, "
          "at no cost."),
      Str(
          "tracing", "otlp_endpoint", {}, [](Config& c) { return &c.tracing.otlp_endpoint; },
          "Where spans go: an OpenTelemetry collector's OTLP/HTTP traces URL (JSON encoding), "
          "e.g. http://127.0.0.1:4318 (/v1/traces is added to a URL without a path). Empty: "
          "tracing off.",
          CheckUrlOrEmpty),
      Int(
          "tracing", "queue_max_spans", 1, 10000000,
          [](Config& c) { return &c.tracing.queue_max_spans; },
          "Finished spans waiting to be sent, at most; more are dropped (and counted in "
          "mpim_trace_spans_dropped_total), never waited for."),
      Int(
          "tracing", "batch_max_spans", 1, 100000,
          [](Config& c) { return &c.tracing.batch_max_spans; },
          "Spans per export request, at most."),
      Int(
          "tracing", "export_interval_ms", 10, 600000,
          [](Config& c) { return &c.tracing.export_interval_ms; },
          "Queued spans are sent this often (sooner once a batch is full)."),
      Int(
          "tracing", "export_timeout_ms", 100, 600000,
          [](Config& c) { return &c.tracing.export_timeout_ms; },
          "An export request without an answer within this time fails (its spans are "
          "dropped); also how long a stopping node waits for its last spans to go."),
  };
  return schema;
}

const Field* FindField(std::string_view section, std::string_view key) {
  for (const Field& f : Schema()) {
    if (f.section == section && f.key == key) return &f;
  }
  return nullptr;
}

bool KnownSection(std::string_view section) {
  return std::any_of(Schema().begin(), Schema().end(),
                     [&](const Field& f) { return f.section == section; });
}

// A real number as TOML writes it (always with a point or exponent).
std::string FormatReal(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string out = buf;
  // The shortest text that reads back the same.
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) {
      out = buf;
      break;
    }
  }
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

Status Invalid(std::string_view source, const std::string& name, const std::string& problem) {
  std::string msg = std::string(source) + ": " + name + ": " + problem;
  return absl::InvalidArgumentError(msg);
}

// Checks range / choices / rule of a value already stored in `config`.
Status Validate(const Field& f, Config& config) {
  FieldRef ref = f.ref(config);
  if (std::holds_alternative<bool*>(ref)) return absl::OkStatus();
  if (auto* d = std::get_if<double*>(&ref)) {
    if (!(**d >= f.real_min && **d <= f.real_max)) {
      return absl::InvalidArgumentError("must be between " + FormatReal(f.real_min) + " and " +
                                        FormatReal(f.real_max) + ", got " + FormatReal(**d));
    }
    return absl::OkStatus();
  }
  if (auto* i = std::get_if<int64_t*>(&ref)) {
    if (**i < f.min || **i > f.max) {
      return absl::InvalidArgumentError("must be between " + std::to_string(f.min) + " and " +
                                        std::to_string(f.max) + ", got " + std::to_string(**i));
    }
    return absl::OkStatus();
  }
  if (auto* list = std::get_if<std::vector<std::string>*>(&ref)) {
    for (const std::string& item : **list) {
      if (!f.check) break;
      if (Status st = f.check(item); !st.ok()) {
        return absl::InvalidArgumentError("\"" + item + "\": " + std::string(st.message()));
      }
    }
    return absl::OkStatus();
  }
  const std::string& s = *std::get<std::string*>(ref);
  if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), s) == f.choices.end()) {
    std::string allowed;
    for (auto c : f.choices) allowed += (allowed.empty() ? "" : ", ") + std::string(c);
    return absl::InvalidArgumentError("must be one of " + allowed + ", got \"" + s + "\"");
  }
  if (f.check) return f.check(s);
  return absl::OkStatus();
}

// Sets a field from text (environment and flags).
Status SetFromText(const Field& f, Config& config, const std::string& text) {
  FieldRef ref = f.ref(config);
  if (auto* i = std::get_if<int64_t*>(&ref)) {
    int64_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
      return absl::InvalidArgumentError("expected an integer, got \"" + text + "\"");
    }
    **i = value;
  } else if (auto* d = std::get_if<double*>(&ref)) {
    double value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
      return absl::InvalidArgumentError("expected a number, got \"" + text + "\"");
    }
    **d = value;
  } else if (auto* list = std::get_if<std::vector<std::string>*>(&ref)) {
    **list = SplitList(text);
  } else if (auto* b = std::get_if<bool*>(&ref)) {
    if (text == "true" || text == "1") {
      **b = true;
    } else if (text == "false" || text == "0") {
      **b = false;
    } else {
      return absl::InvalidArgumentError("expected true or false, got \"" + text + "\"");
    }
  } else {
    *std::get<std::string*>(ref) = text;
  }
  return Validate(f, config);
}

Status SetFromToml(const Field& f, Config& config, const toml::node& node) {
  FieldRef ref = f.ref(config);
  if (auto* i = std::get_if<int64_t*>(&ref)) {
    auto v = node.value_exact<int64_t>();
    if (!v) return absl::InvalidArgumentError("expected an integer");
    **i = *v;
  } else if (auto* d = std::get_if<double*>(&ref)) {
    auto v = node.value<double>();  // an integer (0, 1) is a number too
    if (!v) return absl::InvalidArgumentError("expected a number");
    **d = *v;
  } else if (auto* list = std::get_if<std::vector<std::string>*>(&ref)) {
    const toml::array* array = node.as_array();
    if (!array) return absl::InvalidArgumentError("expected an array of strings");
    (*list)->clear();
    for (const toml::node& item : *array) {
      auto v = item.value_exact<std::string>();
      if (!v) return absl::InvalidArgumentError("expected an array of strings");
      (*list)->push_back(*v);
    }
  } else if (auto* b = std::get_if<bool*>(&ref)) {
    auto v = node.value_exact<bool>();
    if (!v) return absl::InvalidArgumentError("expected true or false");
    **b = *v;
  } else {
    auto v = node.value_exact<std::string>();
    if (!v) return absl::InvalidArgumentError("expected a string");
    *std::get<std::string*>(ref) = *v;
  }
  return Validate(f, config);
}

Status ApplyFile(const std::string& path, Config& config) {
  const std::string source = "config file " + path;
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::string where;
    if (e.source().begin) {
      where = " (line " + std::to_string(e.source().begin.line) + ", column " +
              std::to_string(e.source().begin.column) + ")";
    }
    return absl::InvalidArgumentError(source + ": " + std::string(e.description()) + where);
  }
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    if (!KnownSection(section)) return Invalid(source, section, "unknown section");
    const toml::table* table = section_node.as_table();
    if (!table) return Invalid(source, section, "expected a table ([" + section + "])");
    for (const auto& [key_node, value] : *table) {
      std::string key(key_node.str());
      const Field* f = FindField(section, key);
      if (!f) return Invalid(source, section + "." + key, "unknown key");
      if (Status s = SetFromToml(*f, config, value); !s.ok()) {
        return Invalid(source, f->Name(), std::string(s.message()));
      }
      config.origins[f->Name()] = "file " + path;
    }
  }
  return absl::OkStatus();
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status ApplyEnv(const std::vector<std::pair<std::string, std::string>>& env, Config& config) {
  for (const auto& [name, value] : env) {
    if (name.rfind("MPIM_", 0) != 0) continue;
    // Longest known section prefix wins, so a section name may contain '_'.
    const Field* found = nullptr;
    std::string section_match;
    for (const Field& f : Schema()) {
      std::string prefix = "MPIM_" + Upper(f.section) + "_";
      if (name.rfind(prefix, 0) != 0) continue;
      section_match = std::string(f.section);
      if (Lower(name.substr(prefix.size())) == f.key) found = &f;
    }
    if (section_match.empty()) continue;  // not ours (e.g. MPIM_BINARY for tests)
    const std::string source = "environment " + name;
    if (!found) {
      std::string key = Lower(name.substr(5 + section_match.size() + 1));
      return Invalid(source, section_match + "." + key, "unknown key");
    }
    if (Status s = SetFromText(*found, config, value); !s.ok()) {
      return Invalid(source, found->Name(), std::string(s.message()));
    }
    config.origins[found->Name()] = source;
  }
  return absl::OkStatus();
}

Status ApplyOverrides(const std::vector<std::pair<std::string, std::string>>& overrides,
                      Config& config) {
  for (const auto& [name, value] : overrides) {
    const std::string source = "command line";
    size_t dot = name.find('.');
    if (dot == std::string::npos) return Invalid(source, name, "expected section.key");
    const Field* f = FindField(name.substr(0, dot), name.substr(dot + 1));
    if (!f) return Invalid(source, name, "unknown key");
    if (Status s = SetFromText(*f, config, value); !s.ok()) {
      return Invalid(source, f->Name(), std::string(s.message()));
    }
    config.origins[f->Name()] = source;
  }
  return absl::OkStatus();
}

std::string Quote(const std::string& s) {
  std::string out;
  AppendJsonString(out, s);  // JSON escapes are valid in TOML basic strings
  return out;
}

std::string FormatValue(const Field& f, const Config& config, bool mask) {
  FieldRef ref = f.ref(const_cast<Config&>(config));
  if (auto* i = std::get_if<int64_t*>(&ref)) return std::to_string(**i);
  if (auto* d = std::get_if<double*>(&ref)) return FormatReal(**d);
  if (auto* b = std::get_if<bool*>(&ref)) return **b ? "true" : "false";
  if (auto* list = std::get_if<std::vector<std::string>*>(&ref)) {
    std::string out = "[";
    for (const std::string& item : **list) out += (out.size() > 1 ? ", " : "") + Quote(item);
    return out + "]";
  }
  if (mask && f.secret && !std::get<std::string*>(ref)->empty()) return Quote("********");
  return Quote(*std::get<std::string*>(ref));
}

std::string Render(const Config& config, bool with_help, bool with_origins = false) {
  std::string out;
  std::string_view section;
  for (const Field& f : Schema()) {
    if (f.section != section) {
      section = f.section;
      if (!out.empty()) out += '\n';
      out.append("[").append(section).append("]\n");
    }
    if (with_help) {
      out += "# " + std::string(f.help) + "\n";
      if (!f.choices.empty()) {
        std::string allowed;
        for (auto c : f.choices) allowed += (allowed.empty() ? "" : ", ") + std::string(c);
        out += "# One of: " + allowed + ".\n";
      }
      out += "# Environment: MPIM_" + Upper(f.section) + "_" + Upper(f.key) + "\n";
    }
    out += std::string(f.key) + " = " + FormatValue(f, config, /*mask=*/true);
    if (with_origins) {
      auto origin = config.origins.find(f.Name());
      if (origin != config.origins.end()) out += "  # " + origin->second;
    }
    out += "\n";
  }
  return out;
}

}  // namespace

StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError("expected [v6-address]:port, got \"" + text + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError("expected host:port, got \"" + text + "\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  int value = -1;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || ptr != port.data() + port.size() ||
      value < 0 || value > 65535) {
    return absl::InvalidArgumentError("expected host:port with a port 0-65535, got \"" + text +
                                      "\"");
  }
  return std::make_pair(host, static_cast<uint16_t>(value));
}

Status ValidateAll(const Config& config);

StatusOr<Config> LoadConfig(const ConfigSources& sources) {
  Config config;
  if (!sources.file.empty()) {
    if (Status s = ApplyFile(sources.file, config); !s.ok()) return s;
  }
  if (Status s = ApplyEnv(sources.env, config); !s.ok()) return s;
  if (Status s = ApplyOverrides(sources.overrides, config); !s.ok()) return s;
  if (Status s = ValidateAll(config); !s.ok()) return s;
  return config;
}

Status ValidateAll(const Config& config) {
  // Defaults are validated too, so a bad default cannot ship unnoticed.
  for (const Field& f : Schema()) {
    if (Status s = Validate(f, const_cast<Config&>(config)); !s.ok()) {
      return Invalid("config", f.Name(), std::string(s.message()));
    }
  }
  if (!config.auth.token_key.empty() && config.auth.token_key_id.empty()) {
    return Invalid("config", "auth.token_key_id", "required when auth.token_key is set");
  }
  if (!config.auth.previous_token_key.empty() && config.auth.previous_token_key_id.empty()) {
    return Invalid("config", "auth.previous_token_key_id",
                   "required when auth.previous_token_key is set");
  }
  // cluster.md section 2: an engine without its URL stops start-up.
  if (config.store.engine == "mysql" && config.store.mysql_url.empty()) {
    return Invalid("config", "store.mysql_url", "required when store.engine is \"mysql\"");
  }
  if (config.cache.engine == "redis" && config.cache.redis_url.empty()) {
    return Invalid("config", "cache.redis_url", "required when cache.engine is \"redis\"");
  }
  if (config.route.engine == "redis" && config.route.redis_url.empty()) {
    return Invalid("config", "route.redis_url", "required when route.engine is \"redis\"");
  }
  if (config.bus.engine != "memory" && config.bus.redis_url.empty()) {
    return Invalid("config", "bus.redis_url",
                   "required when bus.engine is \"" + config.bus.engine + "\"");
  }
  if (config.discovery.engine == "etcd" && config.discovery.etcd_endpoints.empty()) {
    return Invalid("config", "discovery.etcd_endpoints",
                   "required when discovery.engine is \"etcd\"");
  }
  if (config.rpc.breaker_window_ms % 10 != 0) {
    return Invalid("config", "rpc.breaker_window_ms", "must be a multiple of 10");
  }
  if (config.rpc.breaker_max_open_ms < config.rpc.breaker_open_ms) {
    return Invalid("config", "rpc.breaker_max_open_ms", "must be at least rpc.breaker_open_ms");
  }
  if (config.discovery.engine == "dns" && config.discovery.dns_srv.empty()) {
    return Invalid("config", "discovery.dns_srv", "required when discovery.engine is \"dns\"");
  }
  if (config.edge.tls_cert_file.empty() != config.edge.tls_key_file.empty()) {
    return Invalid("config",
                   config.edge.tls_cert_file.empty() ? "edge.tls_cert_file" : "edge.tls_key_file",
                   "edge.tls_cert_file and edge.tls_key_file go together");
  }
  // The cluster roles share everything through the engines: a role that
  // kept state in its own process would split the cluster.
  const std::string& role = config.server.role;
  if (role == "edge") {
    // An edge holds no state; it only needs to find the gateways.
    const auto& nodes = config.discovery.static_nodes;
    if (config.edge.routes_file.empty() && config.discovery.engine == "static" &&
        std::none_of(nodes.begin(), nodes.end(),
                     [](const std::string& n) { return n.rfind("gateway=", 0) == 0; })) {
      return Invalid("config", "discovery.static_nodes",
                     "role \"edge\" needs gateways: list them as gateway=HOST:PORT, or use "
                     "discovery engine etcd or dns");
    }
  } else if (role != "all") {
    const std::string why = " in role \"" + role + "\" (cluster roles share it between nodes)";
    if ((role == "logic" || role == "task") && config.store.engine != "mysql") {
      return Invalid("config", "store.engine", "must be \"mysql\"" + why);
    }
    if (config.route.engine != "redis") {
      return Invalid("config", "route.engine", "must be \"redis\"" + why);
    }
    if (config.bus.engine == "memory") {
      return Invalid("config", "bus.engine", "must be a redis engine" + why);
    }
    if (role != "task" && config.auth.token_key.empty()) {
      return Invalid("config", "auth.token_key",
                     "required" + why + ": every node signs and checks tokens with it");
    }
  }
  return absl::OkStatus();
}

const std::vector<std::string>& LiveKeys() {
  // Each is read by its user at every use, or pushed to it by the node's
  // wiring (app/serve.cc, Node::ApplyLive) when the config centre changes it.
  static const std::vector<std::string> keys = {
      "log.level",
      "limits.send_per_sec",
      "limits.send_burst",
      "limits.requests_per_sec_address",
      "limits.requests_burst_address",
      "auth.login_per_min_user",
      "auth.login_per_min_address",
      "rpc.balancer",
      "rpc.key_balancer",
      "rpc.deadline_ms",
      "rpc.max_attempts",
      "rpc.breaker_window_ms",
      "rpc.breaker_min_calls",
      "rpc.breaker_error_percent",
      "rpc.breaker_open_ms",
      "rpc.breaker_max_open_ms",
  };
  return keys;
}

bool IsLiveKey(std::string_view name) {
  const auto& keys = LiveKeys();
  return std::find(keys.begin(), keys.end(), name) != keys.end();
}

StatusOr<Config> WithValue(const Config& base, std::string_view name, std::string_view value,
                           const std::string& origin, bool live_only) {
  size_t dot = name.find('.');
  const Field* f = dot == std::string_view::npos
                       ? nullptr
                       : FindField(name.substr(0, dot), name.substr(dot + 1));
  if (!f) return Invalid(origin, std::string(name), "unknown key");
  if (live_only && !IsLiveKey(name)) {
    return absl::FailedPreconditionError(
        origin + ": " + std::string(name) +
        ": cannot change while a node runs (set it in the node's configuration and restart it)");
  }
  Config config = base;
  if (Status s = SetFromText(*f, config, std::string(value)); !s.ok()) {
    return Invalid(origin, f->Name(), std::string(s.message()));
  }
  if (Status s = ValidateAll(config); !s.ok()) return s;
  config.origins[f->Name()] = origin;
  return config;
}

std::vector<std::pair<std::string, std::string>> ProcessEnvironment() {
  std::vector<std::pair<std::string, std::string>> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string ShowConfig(const Config& config) { return Render(config, /*with_help=*/false, true); }

std::string ExampleConfig() {
  return "# MPIM configuration file (TOML). Every key is shown at its default.\n"
         "# Precedence: defaults < this file < MPIM_<SECTION>_<KEY> environment\n"
         "# variables < command-line flags. Unknown keys stop start-up.\n\n" +
         Render(Config{}, /*with_help=*/true);
}

}  // namespace mpim::core
