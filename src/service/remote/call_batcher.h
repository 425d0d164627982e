// Coalesces one kind of call from a gateway to the logic role (sends,
// acks): per logic node at most `max_in_flight` batch calls at a time;
// items that come while they are all busy wait and leave together in the
// next one, up to `max_items` per call. An idle node gets an item at once,
// alone, so coalescing adds no delay at low load and turns many small
// calls into few large ones under load (a gRPC call costs about 70 us of
// CPU per side on this box, mostly kernel wake-ups: docs/benchmarks.md).
//
// With `linger` > 0 (for items nobody waits on, such as acks), an item
// that finds a call slot free waits up to `linger` for others instead of
// leaving at once, so a steady trickle becomes a few calls per `linger`
// (a full batch still leaves at once). A thread of the batcher's own sends
// them when they are due; the batcher's destruction sends what lingers.
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

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
    std::chrono::milliseconds linger{0};     // how long an item may wait for others
  };

  CallBatcher(Options options, OwnerFn owner, SendFn send)
      : state_(std::make_shared<State>(options, std::move(owner), std::move(send))) {
    if (options.linger.count() > 0) {
      lingerer_ = std::thread([state = state_] {
        pthread_setname_np(pthread_self(), "batch-linger");
        State::Linger(state);
      });
    }
  }
  ~CallBatcher() {
    if (!lingerer_.joinable()) return;
    {
      std::lock_guard lock(state_->mu);
      state_->stopping = true;
    }
    state_->wake.notify_all();
    lingerer_.join();
  }
  CallBatcher(const CallBatcher&) = delete;
  CallBatcher& operator=(const CallBatcher&) = delete;

  void Add(std::string key, Item item, core::Callback<Result> done) {
    State::Add(state_, std::move(key), std::move(item), std::move(done));
  }

  // The items lingering for `key`'s node leave now if a call slot is free
  // (else with the next answer, as for any node whose items are due).
  void Hurry(const std::string& key) { State::Hurry(state_, key); }

 private:
  struct Entry {
    std::string key;
    Item item;
    core::Callback<Result> done;
  };
  using Clock = std::chrono::steady_clock;
  struct Queue {
    size_t in_flight = 0;
    std::vector<Entry> waiting;
    // With linger: when the waiting items may leave (set by the first).
    std::optional<Clock::time_point> due;
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
        if (!self->Ready(q, Clock::now())) return self->Arm(q);
        batch = self->Take(q);
      }
      Send(self, std::move(node), std::move(batch));
    }

    static void Hurry(const std::shared_ptr<State>& self, const std::string& key) {
      std::string node = self->owner(key);
      std::vector<Entry> batch;
      {
        std::lock_guard lock(self->mu);
        auto it = self->queues.find(node);
        if (it == self->queues.end() || it->second.waiting.empty()) return;
        Queue& q = it->second;
        q.due = Clock::now();  // due now: an answer sends them if no slot is free
        if (!self->Ready(q, *q.due)) return;
        batch = self->Take(q);
      }
      Send(self, std::move(node), std::move(batch));
    }

    // Whether `q`'s waiting items may leave now: a call slot is free, and
    // they need not linger (none asked, a full batch, due, or the batcher
    // going).
    bool Ready(const Queue& q, Clock::time_point now) const {
      if (q.waiting.empty() || q.in_flight >= options.max_in_flight) return false;
      return options.linger.count() == 0 || stopping || q.waiting.size() >= options.max_items ||
             (q.due && *q.due <= now);
    }

    // With linger: the first waiting item sets when they leave.
    void Arm(Queue& q) {
      if (options.linger.count() == 0 || q.due || q.waiting.empty()) return;
      q.due = Clock::now() + options.linger;
      wake.notify_one();
    }

    // Up to max_items of `q`'s waiting entries, as one more call in flight.
    std::vector<Entry> Take(Queue& q) {
      std::vector<Entry> batch;
      if (q.waiting.size() <= options.max_items) {
        batch.swap(q.waiting);
        q.due.reset();
      } else {
        auto split = q.waiting.begin() + static_cast<std::ptrdiff_t>(options.max_items);
        batch.assign(std::make_move_iterator(q.waiting.begin()), std::make_move_iterator(split));
        q.waiting.erase(q.waiting.begin(), split);
      }
      ++q.in_flight;
      return batch;
    }

    // The lingering thread: sends each node's waiting items when they are
    // due and a slot is free (a due node without one is sent by its next
    // answer), and everything it can once the batcher is going.
    static void Linger(const std::shared_ptr<State>& self) {
      std::unique_lock lock(self->mu);
      for (;;) {
        const bool last = self->stopping;
        const auto now = Clock::now();
        std::vector<std::pair<std::string, std::vector<Entry>>> batches;
        std::optional<Clock::time_point> next;
        for (auto& [node, q] : self->queues) {
          while (self->Ready(q, now)) batches.emplace_back(node, self->Take(q));
          if (q.due && *q.due > now && (!next || *q.due < *next)) next = q.due;
        }
        if (!batches.empty()) {
          lock.unlock();
          for (auto& [node, batch] : batches) Send(self, node, std::move(batch));
          lock.lock();
          continue;
        }
        if (last) return;
        if (next) {
          self->wake.wait_until(lock, *next);
        } else {
          self->wake.wait(lock);
        }
      }
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
                     if (self->Ready(q, Clock::now())) {
                       next = self->Take(q);
                     } else if (q.waiting.empty() && q.in_flight == 0) {
                       self->queues.erase(node);  // nodes come and go
                     } else {
                       self->Arm(q);
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
    std::mutex mu;                                  // guards queues, stopping
    std::unordered_map<std::string, Queue> queues;  // by node
    bool stopping = false;                          // the batcher is going
    std::condition_variable wake;                   // a new due time, or stopping
  };

  std::shared_ptr<State> state_;
  std::thread lingerer_;  // with linger only
};

}  // namespace mpim::service::remote
