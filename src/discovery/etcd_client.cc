#include "discovery/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <mutex>

#include "rpc/status.h"

namespace mpim::discovery {
namespace {

namespace pb = etcdserverpb;

bool IsIpv4Literal(const std::string& host_port) {
  const std::string host = host_port.substr(0, host_port.rfind(':'));
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

std::string Target(const std::vector<std::string>& endpoints) {
  bool literal = !endpoints.empty();
  for (const std::string& e : endpoints) literal = literal && IsIpv4Literal(e);
  if (!literal) return "dns:///" + (endpoints.empty() ? std::string() : endpoints.front());
  std::string target = "ipv4:";
  for (size_t i = 0; i < endpoints.size(); ++i) target += (i ? "," : "") + endpoints[i];
  return target;
}

EtcdKeyValue FromPb(const pb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.lease()};
}

// etcd's errors arrive as gRPC statuses; a call that did not reach it is
// unavailable (or deadline_exceeded: also "try again").
core::Status Failed(const grpc::Status& status, const char* what) {
  core::Status s = rpc::FromGrpc(status);
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::UnavailableError(std::string("etcd ") + what + ": no answer in time");
  }
  return core::Status(s.code(), std::string("etcd ") + what + ": " + std::string(s.message()));
}

}  // namespace

struct EtcdWatch::State {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream;
  std::mutex mu;  // guards `done` against Cancel
  bool done = false;
};

EtcdWatch::EtcdWatch(std::unique_ptr<State> state) : state_(std::move(state)) {}

EtcdWatch::~EtcdWatch() {
  Cancel();
  if (state_->stream) (void)state_->stream->Finish();
}

void EtcdWatch::Cancel() {
  std::lock_guard lock(state_->mu);
  if (!state_->done) state_->context.TryCancel();
  state_->done = true;
}

core::StatusOr<std::vector<EtcdEvent>> EtcdWatch::Next() {
  pb::WatchResponse response;
  for (;;) {
    if (!state_->stream->Read(&response)) {
      {
        std::lock_guard lock(state_->mu);
        if (state_->done) return absl::CancelledError("etcd watch: cancelled");
        state_->done = true;
      }
      grpc::Status status = state_->stream->Finish();
      state_->stream.reset();
      if (status.ok()) return absl::UnavailableError("etcd watch: the stream ended");
      return Failed(status, "watch");
    }
    if (response.compact_revision() > 0) {
      return absl::OutOfRangeError("etcd watch: revision compacted (now from " +
                                   std::to_string(response.compact_revision()) + ")");
    }
    if (response.canceled()) {
      return absl::UnavailableError("etcd watch: cancelled by etcd: " + response.cancel_reason());
    }
    if (response.events_size() == 0) continue;  // created, progress
    std::vector<EtcdEvent> events;
    events.reserve(response.events_size());
    for (const pb::Event& e : response.events()) {
      events.push_back(EtcdEvent{e.type() == pb::Event::DELETE, FromPb(e.kv())});
    }
    return events;
  }
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // Reconnect quickly once etcd is back (gRPC's default backs off to 120 s).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  channel_ = grpc::CreateCustomChannel(Target(options_.endpoints),
                                       grpc::InsecureChannelCredentials(), args);
  kv_ = pb::KV::NewStub(channel_);
  lease_ = pb::Lease::NewStub(channel_);
  watch_ = pb::Watch::NewStub(channel_);
}

EtcdClient::~EtcdClient() = default;

void EtcdClient::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options_.timeout_ms));
}

std::string EtcdClient::PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

core::StatusOr<EtcdRange> EtcdClient::GetPrefix(const std::string& prefix) {
  pb::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(PrefixEnd(prefix));
  pb::RangeResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = kv_->Range(&context, request, &response);
  if (!status.ok()) return Failed(status, "range");
  EtcdRange out;
  out.revision = response.header().revision();
  for (const pb::KeyValue& kv : response.kvs()) out.kvs.push_back(FromPb(kv));
  return out;
}

core::StatusOr<std::optional<EtcdKeyValue>> EtcdClient::Get(const std::string& key) {
  pb::RangeRequest request;
  request.set_key(key);
  pb::RangeResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = kv_->Range(&context, request, &response);
  if (!status.ok()) return Failed(status, "get");
  if (response.kvs_size() == 0) return std::optional<EtcdKeyValue>();
  return std::optional<EtcdKeyValue>(FromPb(response.kvs(0)));
}

core::Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  pb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  pb::PutResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = kv_->Put(&context, request, &response);
  if (!status.ok()) return Failed(status, "put");
  return core::Status();
}

core::StatusOr<bool> EtcdClient::PutIfAbsent(const std::string& key, const std::string& value,
                                             int64_t lease, std::string* holder) {
  pb::TxnRequest request;
  pb::Compare* absent = request.add_compare();
  absent->set_key(key);
  absent->set_target(pb::Compare::CREATE);
  absent->set_result(pb::Compare::EQUAL);
  absent->set_create_revision(0);
  pb::PutRequest* put = request.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  request.add_failure()->mutable_request_range()->set_key(key);
  pb::TxnResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = kv_->Txn(&context, request, &response);
  if (!status.ok()) return Failed(status, "txn");
  if (!response.succeeded() && holder != nullptr && response.responses_size() > 0 &&
      response.responses(0).response_range().kvs_size() > 0) {
    *holder = response.responses(0).response_range().kvs(0).value();
  }
  return response.succeeded();
}

core::Status EtcdClient::Delete(const std::string& key) {
  pb::DeleteRangeRequest request;
  request.set_key(key);
  pb::DeleteRangeResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = kv_->DeleteRange(&context, request, &response);
  if (!status.ok()) return Failed(status, "delete");
  return core::Status();
}

core::StatusOr<int64_t> EtcdClient::GrantLease(int64_t ttl_s) {
  pb::LeaseGrantRequest request;
  request.set_ttl(ttl_s);
  pb::LeaseGrantResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = lease_->LeaseGrant(&context, request, &response);
  if (!status.ok()) return Failed(status, "lease grant");
  if (!response.error().empty())
    return absl::UnavailableError("etcd lease grant: " + response.error());
  return response.id();
}

core::StatusOr<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  grpc::ClientContext context;
  SetDeadline(context);
  auto stream = lease_->LeaseKeepAlive(&context);
  pb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  pb::LeaseKeepAliveResponse response;
  const bool wrote = stream->Write(request);
  const bool read = wrote && stream->Read(&response);
  stream->WritesDone();
  if (!read) {
    context.TryCancel();
    grpc::Status status = stream->Finish();
    if (status.ok()) return absl::UnavailableError("etcd keep-alive: no answer");
    return Failed(status, "keep-alive");
  }
  context.TryCancel();  // one round is all this call wants
  (void)stream->Finish();
  if (response.ttl() <= 0) {
    return absl::NotFoundError("etcd lease " + std::to_string(lease) + " is gone");
  }
  return response.ttl();
}

core::Status EtcdClient::RevokeLease(int64_t lease) {
  pb::LeaseRevokeRequest request;
  request.set_id(lease);
  pb::LeaseRevokeResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = lease_->LeaseRevoke(&context, request, &response);
  if (!status.ok()) return Failed(status, "lease revoke");
  return core::Status();
}

core::StatusOr<std::unique_ptr<EtcdWatch>> EtcdClient::WatchPrefix(const std::string& prefix,
                                                                   int64_t start_revision) {
  auto state = std::make_unique<EtcdWatch::State>();
  state->stream = watch_->Watch(&state->context);
  pb::WatchRequest request;
  pb::WatchCreateRequest* create = request.mutable_create_request();
  create->set_key(prefix);
  create->set_range_end(PrefixEnd(prefix));
  create->set_start_revision(start_revision);
  if (!state->stream->Write(request)) {
    grpc::Status status = state->stream->Finish();
    state->stream.reset();
    state->done = true;
    return status.ok() ? absl::UnavailableError("etcd watch: cannot open the stream")
                       : Failed(status, "watch");
  }
  return std::unique_ptr<EtcdWatch>(new EtcdWatch(std::move(state)));
}

}  // namespace mpim::discovery
