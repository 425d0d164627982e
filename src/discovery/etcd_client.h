// A small client of etcd's v3 gRPC API (proto/etcd/etcd_rpc.proto): the
// calls discovery and the config centre need, each with a deadline of
// `timeout_ms`, blocking. etcd being away is `unavailable` (also a
// deadline passed), never a false success.
//
// Endpoints: IPv4 literals go to one channel that knows them all
// (gRPC's ipv4: target with pick_first: a member that goes away is left for
// the next); a name is resolved by gRPC's DNS resolver (first endpoint).
//
// Threading: every method may be called from any thread, concurrently
// (gRPC stubs are thread-safe); they block, so never on an io thread. A
// WatchStream belongs to one thread, except Cancel().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "etcd/etcd_rpc.grpc.pb.h"

namespace mpim::discovery {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // HOST:PORT
  int64_t timeout_ms = 2000;
};

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;
  int64_t revision = 0;  // the store's revision the read saw
};

struct EtcdEvent {
  bool deleted = false;  // else a put
  EtcdKeyValue kv;       // for a delete: the key and mod_revision only
};

class EtcdClient;

// One watch of a key prefix, from a revision on.
class EtcdWatch {
 public:
  ~EtcdWatch();
  // Waits for the next events (blocking; no deadline: idle prefixes are
  // quiet). A broken stream, a cancel or a compacted start revision end it
  // with an error (unavailable, cancelled, out_of_range); then start over
  // from a fresh read.
  core::StatusOr<std::vector<EtcdEvent>> Next();
  // Ends a Next() in progress on another thread (it returns cancelled).
  void Cancel();

 private:
  friend class EtcdClient;
  struct State;
  explicit EtcdWatch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class EtcdClient {
 public:
  explicit EtcdClient(EtcdOptions options);
  ~EtcdClient();

  // Every key under `prefix`, and the revision the read saw.
  core::StatusOr<EtcdRange> GetPrefix(const std::string& prefix);
  core::StatusOr<std::optional<EtcdKeyValue>> Get(const std::string& key);
  // `lease` 0: none.
  core::Status Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // Puts only when the key does not exist (one transaction); false when it
  // did (then `holder`, if given, gets its value).
  core::StatusOr<bool> PutIfAbsent(const std::string& key, const std::string& value, int64_t lease,
                                   std::string* holder = nullptr);
  core::Status Delete(const std::string& key);

  // A new lease of `ttl_s` seconds; its id.
  core::StatusOr<int64_t> GrantLease(int64_t ttl_s);
  // Renews the lease once; its remaining TTL in seconds, or not_found when
  // the lease is gone (expired or revoked).
  core::StatusOr<int64_t> KeepAlive(int64_t lease);
  core::Status RevokeLease(int64_t lease);

  // Watches the keys under `prefix` from `start_revision` (0: from now).
  // Fails when the stream cannot be opened.
  core::StatusOr<std::unique_ptr<EtcdWatch>> WatchPrefix(const std::string& prefix,
                                                         int64_t start_revision);

  // The end of the range of keys that start with `prefix`.
  static std::string PrefixEnd(const std::string& prefix);

 private:
  void SetDeadline(grpc::ClientContext& context) const;

  EtcdOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
};

}  // namespace mpim::discovery
