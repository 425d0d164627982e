// Bus engines `redis-pubsub` and `redis-streams` (bus.h says what each
// guarantees). One class serves both; they differ only in how topics work.
//
// Keys and channels (every name starts with `prefix`):
//   topics, redis-pubsub    channel <prefix><topic>: PUBLISH / SUBSCRIBE on
//                           the bus's client (its subscriber connection).
//   topics, redis-streams   stream <prefix><topic>: XADD MAXLEN ~ max_len;
//                           each subscription reads it with XREAD BLOCK on
//                           a client of its own, from the last id it saw.
//   streams                 stream <prefix><stream>, consumer groups on it
//                           (XGROUP CREATE .. 0 MKSTREAM, XREADGROUP, XACK,
//                           XPENDING IDLE + XCLAIM); dead letters in the
//                           stream <prefix><stream>.dead (fields payload, id).
// Entries have one field, `payload`.
//
// Connections: one client (command + subscriber connection) for publishes,
// appends, acks and claims; one more per redis-streams subscription and
// per consumer, since a blocking read holds its connection.
//
// Threads: every method from any thread; none blocks. `done` callbacks run
// on a Redis client's thread; handlers on the bus's workers, one at a time
// per subscription or consumer, never under a lock of the bus.
// Failures: kUnavailable when a command got no reply (Redis down, slow, or
// the connection lost: it may still have run), never a false ok;
// kInvalidArgument for a bad name or entry id; kInternal for another Redis
// error. Subscriptions and consumers outlive outages: they read again once
// Redis is back (see bus.h for what is missed and when on_gap runs).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bus/bus.h"
#include "core/status.h"

namespace mpim::redis {
class Client;
}

namespace mpim::bus {

namespace internal {
class Dispatcher;
struct MainLink;
struct Closable;
struct Channel;
}  // namespace internal

struct RedisBusOptions {
  enum class Topics { kPubSub, kStreams };
  Topics topics = Topics::kPubSub;
  std::string url;  // redis://[:PASS@]HOST:PORT[/DB]
  std::string prefix = "mpim:";
  std::chrono::milliseconds timeout{1000};  // one command; a blocking read blocks half of it
  int64_t stream_max_len = 100000;          // XADD MAXLEN ~
  size_t workers = 2;                       // threads running handlers
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
};

class RedisBus final : public Bus {
 public:
  // Starts the bus's client (it connects in the background). kInvalidArgument
  // for a bad URL.
  static core::StatusOr<std::unique_ptr<RedisBus>> Open(RedisBusOptions options);
  // Ends every subscription and consumer (their handles become inert);
  // callbacks still waiting get kUnavailable. Not from a callback or handler
  // of this bus.
  ~RedisBus() override;

  void Publish(std::string topic, std::string payload, core::DoneCallback done) override;
  std::unique_ptr<Handle> Subscribe(std::string topic, TopicHandler on_message,
                                    GapHandler on_gap) override;
  void Append(std::string stream, std::string payload, core::Callback<std::string> done) override;
  std::unique_ptr<Handle> Consume(std::string stream, ConsumerOptions options,
                                  StreamHandler on_entries) override;
  void Ack(std::string stream, std::string group, std::vector<std::string> ids,
           core::DoneCallback done) override;

  // Whether the bus's command connection is up (a hint, for readiness).
  bool connected() const;

 private:
  explicit RedisBus(RedisBusOptions options);
  void SendPublish(const std::string& channel, std::string payload, core::DoneCallback done);
  void OnSubscribed(const std::string& channel);
  void OnMessage(const std::string& channel, std::string_view message);
  void FlushQueued(const std::string& channel);
  void Track(std::shared_ptr<internal::Closable> c);

  RedisBusOptions options_;
  std::shared_ptr<internal::Dispatcher> dispatcher_;
  std::shared_ptr<internal::MainLink> main_link_;
  std::unique_ptr<redis::Client> main_;
  std::mutex mu_;  // guards channels_, live_
  std::unique_ptr<std::map<std::string, internal::Channel>> channels_;
  std::vector<std::weak_ptr<internal::Closable>> live_;
};

}  // namespace mpim::bus
