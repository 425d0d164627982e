// Bus engine `memory`: one process, no I/O. Topics hand every payload to
// every subscriber of the time; streams keep their entries, groups and
// pending lists in this process's memory with the full consumer-group
// semantics of bus.h (pending until acked, claimed after claim_idle, dead
// letters after max_deliveries, about stream_max_len entries kept: here
// exactly that many). Everything is lost with the process.
//
// Threads: handlers and callbacks run on the bus's workers (`workers`
// threads and a timer thread), never inline and never under the bus's
// lock; one at a time per subscription or consumer. Failures: none but
// kInvalidArgument for a bad name or id.
#pragma once

#include <cstdint>
#include <memory>

#include "bus/bus.h"

namespace mpim::bus {

struct MemoryBusOptions {
  int64_t stream_max_len = 100000;  // entries a stream keeps
  size_t workers = 2;               // threads running handlers and callbacks
};

class MemoryBus final : public Bus {
 public:
  explicit MemoryBus(MemoryBusOptions options = {});
  // Ends every subscription and consumer (their handles become inert),
  // runs the callbacks already due and joins the threads.
  ~MemoryBus() override;

  void Publish(std::string topic, std::string payload, core::DoneCallback done) override;
  std::unique_ptr<Handle> Subscribe(std::string topic, TopicHandler on_message,
                                    GapHandler on_gap) override;
  void Append(std::string stream, std::string payload, core::Callback<std::string> done) override;
  std::unique_ptr<Handle> Consume(std::string stream, ConsumerOptions options,
                                  StreamHandler on_entries) override;
  void Ack(std::string stream, std::string group, std::vector<std::string> ids,
           core::DoneCallback done) override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mpim::bus
