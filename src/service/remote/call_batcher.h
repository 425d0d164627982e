// Coalesces one kind of call from a gateway to the logic role (sends,
// acks): per logic node at most `max_in_flight` batch calls at a time;
// items that come while they are all busy wait and leave together in the
// next one, up to `max_items` per call. An idle node gets an item at once,
// alone, so coalescing adds no delay at low load and turns many small
// calls into few large ones under load (a gRPC call costs about 70 us of
// CPU per side on this box, mostly kernel wake-ups: docs/benchmarks.md).
//
// Items are grouped by the node the key balancer picks for their key
// (rpc::Client::Owner), and a batch is sent with its first item's key, so
// an item reaches the node its own call would have reached while the node
// set is stable. The batch call's own failure (after the client's retries)
// answers every item of it; otherwise each item gets its own answer.
//
// Thread-safe: Add from any thread; item callbacks run on the thread that
// answers the batch (a gRPC thread), never under the batcher's lock.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/callback.h"
#include "core/metrics.h"

namespace mpim::service::remote {

template <typename Item, typename Result>
class CallBatcher {
 public:
  // One answer per item, in the items' order; or the batch call's failure.
  using Results = std::vector<core::StatusOr<Result>>;
  // Sends `items` as one call routed by `key`; runs `done` once.
  using SendFn =
      std::function<void(const std::string& key, std::vector<Item> items, core::Callback<Results>)>;
  // The node a key's calls go to (rpc::Client::Owner).
  using OwnerFn = std::function<std::string(const std::string& key)>;

  struct Options {
    size_t max_in_flight = 2;                // batch calls per node at a time
    size_t max_items = 256;                  // items per batch call
    core::Histogram* batch_items = nullptr;  // items per batch call, if counted
  };

  CallBatcher(Options options, OwnerFn owner, SendFn send)
      : state_(std::make_shared<State>(options, std::move(owner), std::move(send))) {}

  void Add(std::string key, Item item, core::Callback<Result> done) {
    State::Add(state_, std::move(key), std::move(item), std::move(done));
  }

 private:
  struct Entry {
    std::string key;
    Item item;
    core::Callback<Result> done;
  };
  struct Queue {
    size_t in_flight = 0;
    std::vector<Entry> waiting;
  };

  // Shared with the batch calls in flight, so the batcher may go first.
  struct State {
    State(Options o, OwnerFn owner_fn, SendFn send_fn)
        : options(o), owner(std::move(owner_fn)), send(std::move(send_fn)) {}

    static void Add(const std::shared_ptr<State>& self, std::string key, Item item,
                    core::Callback<Result> done) {
      std::string node = self->owner(key);
      std::vector<Entry> batch;
      {
        std::lock_guard lock(self->mu);
        Queue& q = self->queues[node];
        q.waiting.push_back({std::move(key), std::move(item), std::move(done)});
        if (q.in_flight >= self->options.max_in_flight) return;
        batch = self->Take(q);
      }
      Send(self, std::move(node), std::move(batch));
    }

    // Up to max_items of `q`'s waiting entries, as one more call in flight.
    std::vector<Entry> Take(Queue& q) {
      std::vector<Entry> batch;
      if (q.waiting.size() <= options.max_items) {
        batch.swap(q.waiting);
      } else {
        auto split = q.waiting.begin() + static_cast<std::ptrdiff_t>(options.max_items);
        batch.assign(std::make_move_iterator(q.waiting.begin()), std::make_move_iterator(split));
        q.waiting.erase(q.waiting.begin(), split);
      }
      ++q.in_flight;
      return batch;
    }

    static void Send(const std::shared_ptr<State>& self, std::string node,
                     std::vector<Entry> batch) {
      if (self->options.batch_items) {
        self->options.batch_items->Observe(static_cast<double>(batch.size()));
      }
      std::vector<Item> items;
      items.reserve(batch.size());
      for (Entry& e : batch) items.push_back(std::move(e.item));
      std::string key = batch.front().key;
      auto dones = std::make_shared<std::vector<core::Callback<Result>>>();
      dones->reserve(batch.size());
      for (Entry& e : batch) dones->push_back(std::move(e.done));
      self->send(key, std::move(items),
                 [self, node = std::move(node), dones](core::StatusOr<Results> results) mutable {
                   Answer(*dones, std::move(results));
                   std::vector<Entry> next;
                   {
                     std::lock_guard lock(self->mu);
                     Queue& q = self->queues[node];
                     --q.in_flight;
                     if (!q.waiting.empty()) {
                       next = self->Take(q);
                     } else if (q.in_flight == 0) {
                       self->queues.erase(node);  // nodes come and go
                     }
                   }
                   if (!next.empty()) Send(self, std::move(node), std::move(next));
                 });
    }

    static void Answer(std::vector<core::Callback<Result>>& dones,
                       core::StatusOr<Results> results) {
      if (results.ok() && results->size() != dones.size()) {
        results = absl::InternalError("a batch answered " + std::to_string(results->size()) +
                                      " items for " + std::to_string(dones.size()));
      }
      for (size_t i = 0; i < dones.size(); ++i) {
        if (!results.ok()) {
          std::move(dones[i])(results.status());
        } else {
          std::move(dones[i])(std::move((*results)[i]));
        }
      }
    }

    const Options options;
    const OwnerFn owner;
    const SendFn send;
    std::mutex mu;                                  // guards queues
    std::unordered_map<std::string, Queue> queues;  // by node
  };

  std::shared_ptr<State> state_;
};

}  // namespace mpim::service::remote
