// The message bus: how one node reaches others. Two kinds of channel:
//
// Topics (publish/subscribe): a node's inbox ("node.<id>"), cluster-wide
// notices ("revocations"). A payload published to a topic reaches every
// subscriber of that topic at the time, in publish order per publisher.
//
// Streams (durable, with consumer groups): work that must be done once in
// the cluster even if the process doing it dies (fan-out jobs). An entry
// appended to a stream is handed to one consumer of each group; it stays
// pending until acknowledged; an entry pending longer than claim_idle (its
// consumer died or hung) is claimed and handed to another consumer (or the
// same one again); an entry handed out max_deliveries times without an
// acknowledgement is moved to the stream's dead letters ("<stream>.dead", a
// stream like any other) and acknowledged. Streams keep about max_len
// entries (the oldest are trimmed, acknowledged or not).
//
// What each implementation (bus.engine) guarantees:
//   memory         one process. Topics: every payload reaches every
//                  subscriber. Streams: in memory, lost with the process.
//   redis-pubsub   topics on Redis Pub/Sub: at most once; what is published
//                  while a subscriber's connection is down is lost, and the
//                  subscriber's on_gap runs once it is subscribed again.
//                  (A publish through the bus that subscribed waits for
//                  Redis to confirm that subscription, so a node hears what
//                  it publishes after its own Subscribe returned.)
//                  Streams on Redis Streams.
//   redis-streams  topics on Redis Streams too (one stream per topic, read
//                  with XREAD from the last id seen): a subscriber that
//                  reconnects receives what was published meanwhile, unless
//                  it was trimmed or Redis lost it (then on_gap runs).
//                  Streams on Redis Streams.
// In every engine nothing a client was promised lives only on the bus:
// deliveries a node missed are found again by its clients' hello and sync,
// and a stream's work is also recorded in the store where it must survive
// Redis losing data.
//
// Threads and failures: every method may be called from any thread, io
// threads included; none blocks. Callbacks and handlers run on a thread of
// the bus (never inline in the call that gave them, never under a lock of
// the bus) and must not block. The handlers of one subscription or consumer
// run one at a time, in order. Failures: kUnavailable when the bus cannot
// be reached or did not answer in time (a failed Publish/Append may still
// have happened); kInvalidArgument for a bad name.
//
// docs/bus.md has the Redis keys and commands, the config keys and figures.
//
// Adding an implementation: implement this interface in bus/<name>_bus.{h,cc},
// register it by name in bus/registry.cc and the name in core/engines.cc,
// and instantiate the contract suite (tests/bus/bus_contract.h) for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/callback.h"

namespace mpim::bus {

// One stream entry handed to a consumer.
struct Entry {
  std::string id;            // the stream's id ("1700000000000-0" on Redis); for Ack
  std::string payload;
  uint32_t deliveries = 1;   // how many times it has been handed out, this one included
};

struct ConsumerOptions {
  std::string group;     // consumer group; made (reading from the stream's start) if missing
  std::string consumer;  // this consumer's name in the group, stable across restarts
  size_t batch = 256;    // entries per handler call at most
  std::chrono::milliseconds claim_idle{30000};
  uint32_t max_deliveries = 5;
};

// Ends a subscription or a consumer when destroyed: once the destructor has
// returned, its handler is not running and will not run again. Not from
// inside that handler. A handle may outlive its bus: destroying the bus ends
// every subscription and consumer, and their handles do nothing more.
class Handle {
 public:
  virtual ~Handle() = default;
};

class Bus {
 public:
  using TopicHandler = std::function<void(std::string_view payload)>;
  // Messages may have been missed (see the engines above).
  using GapHandler = std::function<void()>;
  // Entries stay pending until acknowledged through Ack.
  using StreamHandler = std::function<void(std::vector<Entry> entries)>;

  virtual ~Bus() = default;

  // Topics. `done` (may be null) runs once the bus has taken the payload.
  virtual void Publish(std::string topic, std::string payload, core::DoneCallback done) = 0;
  // on_gap may be null.
  virtual std::unique_ptr<Handle> Subscribe(std::string topic, TopicHandler on_message,
                                            GapHandler on_gap) = 0;

  // Streams. `done` gets the entry's id (may be null).
  virtual void Append(std::string stream, std::string payload,
                      core::Callback<std::string> done) = 0;
  virtual std::unique_ptr<Handle> Consume(std::string stream, ConsumerOptions options,
                                          StreamHandler on_entries) = 0;
  virtual void Ack(std::string stream, std::string group, std::vector<std::string> ids,
                   core::DoneCallback done) = 0;
};

}  // namespace mpim::bus
