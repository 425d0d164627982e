#include "bus/memory_bus.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>

#include "bus/dispatch.h"

namespace mpim::bus {

using internal::Dispatcher;
using internal::Serial;
using internal::ValidName;
using Clock = std::chrono::steady_clock;

namespace {

std::string IdOf(uint64_t seq) { return "0-" + std::to_string(seq); }

bool ParseId(std::string_view id, uint64_t* seq) {
  if (id.substr(0, 2) != "0-") return false;
  id.remove_prefix(2);
  auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), *seq);
  return ec == std::errc() && ptr == id.data() + id.size();
}

struct Sub {
  std::shared_ptr<Serial> serial;
  Bus::TopicHandler on_message;
};

struct Consumer {
  std::string stream, group;
  ConsumerOptions options;
  Bus::StreamHandler handler;
  std::shared_ptr<Serial> serial;
  // Under State::mu:
  bool busy = false;      // a batch is with the handler
  bool closed = false;
  bool recovering = true; // re-reading its own pending entries first
  uint64_t recover_after = 0;
};

struct Pending {
  std::string consumer;
  Clock::time_point at;
  uint32_t count = 0;
};

struct Group {
  uint64_t last = 0;  // the last entry handed out as new
  std::map<uint64_t, Pending> pending;
  std::vector<std::shared_ptr<Consumer>> consumers;
  size_t next = 0;  // round robin over consumers
};

struct Stream {
  uint64_t next = 1;
  std::map<uint64_t, std::string> entries;
  std::map<std::string, Group, std::less<>> groups;
};

// A batch for a consumer's handler, made under the lock, run after it.
struct Delivery {
  std::shared_ptr<Consumer> consumer;
  std::vector<Entry> entries;
};

}  // namespace

struct MemoryBus::State : std::enable_shared_from_this<MemoryBus::State> {
  MemoryBusOptions options;
  std::shared_ptr<Dispatcher> dispatcher;
  std::mutex mu;  // guards everything below
  std::map<std::string, std::vector<std::shared_ptr<Sub>>, std::less<>> topics;
  std::map<std::string, Stream, std::less<>> streams;
  bool stopped = false;

  // Adds an entry and trims; under mu. Its id.
  uint64_t AppendLocked(const std::string& name, std::string payload,
                        std::vector<Delivery>* out) {
    Stream& s = streams[name];
    const uint64_t seq = s.next++;
    s.entries.emplace(seq, std::move(payload));
    while (s.entries.size() > static_cast<size_t>(std::max<int64_t>(1, options.stream_max_len))) {
      s.entries.erase(s.entries.begin());
    }
    PumpLocked(name, s, out);
    return seq;
  }

  // Hands out what can be handed out in `s` to its idle consumers; under mu.
  void PumpLocked(const std::string& name, Stream& s, std::vector<Delivery>* out) {
    const auto now = Clock::now();
    for (auto& [group_name, g] : s.groups) {
      // Consumers re-reading their own pending entries first.
      for (auto& c : g.consumers) {
        while (!c->busy && c->recovering) {
          Delivery d{c, {}};
          for (auto it = g.pending.upper_bound(c->recover_after);
               it != g.pending.end() && d.entries.size() < c->options.batch;) {
            if (it->second.consumer != c->options.consumer) {
              ++it;
              continue;
            }
            c->recover_after = it->first;
            auto e = s.entries.find(it->first);
            if (e == s.entries.end()) {  // trimmed while pending
              it = g.pending.erase(it);
              continue;
            }
            it->second.at = now;
            d.entries.push_back(Entry{IdOf(it->first), e->second, ++it->second.count});
            ++it;
          }
          if (d.entries.empty()) {
            c->recovering = false;
          } else {
            c->busy = true;
            out->push_back(std::move(d));
          }
        }
      }
      // New entries, round robin over the idle consumers.
      while (!g.consumers.empty()) {
        auto it = s.entries.upper_bound(g.last);
        if (it == s.entries.end()) break;
        std::shared_ptr<Consumer> c;
        for (size_t i = 0; i < g.consumers.size() && !c; ++i) {
          auto& candidate = g.consumers[(g.next + i) % g.consumers.size()];
          if (!candidate->busy && !candidate->recovering) {
            c = candidate;
            g.next = (g.next + i + 1) % g.consumers.size();
          }
        }
        if (!c) break;
        Delivery d{c, {}};
        for (; it != s.entries.end() && d.entries.size() < c->options.batch; ++it) {
          g.last = it->first;
          g.pending[it->first] = Pending{c->options.consumer, now, 1};
          d.entries.push_back(Entry{IdOf(it->first), it->second, 1});
        }
        c->busy = true;
        out->push_back(std::move(d));
      }
    }
    (void)name;
  }

  // Claims the entries of c's group pending longer than claim_idle: to c,
  // or to the dead letters after max_deliveries. Under mu.
  void ClaimLocked(const std::shared_ptr<Consumer>& c, std::vector<Delivery>* out) {
    auto s = streams.find(c->stream);
    if (s == streams.end() || c->busy || c->closed) return;
    auto g = s->second.groups.find(c->group);
    if (g == s->second.groups.end()) return;
    const auto now = Clock::now();
    Delivery d{c, {}};
    std::vector<std::string> dead;
    for (auto it = g->second.pending.begin();
         it != g->second.pending.end() && d.entries.size() < c->options.batch;) {
      if (now - it->second.at < c->options.claim_idle) {
        ++it;
        continue;
      }
      auto e = s->second.entries.find(it->first);
      if (e == s->second.entries.end()) {
        it = g->second.pending.erase(it);
      } else if (it->second.count >= c->options.max_deliveries) {
        dead.push_back(e->second);
        it = g->second.pending.erase(it);
      } else {
        it->second.consumer = c->options.consumer;
        it->second.at = now;
        d.entries.push_back(Entry{IdOf(it->first), e->second, ++it->second.count});
        ++it;
      }
    }
    if (!d.entries.empty()) {
      c->busy = true;
      out->push_back(std::move(d));
    }
    for (std::string& payload : dead) AppendLocked(c->stream + ".dead", std::move(payload), out);
  }

  // Runs the batches, outside mu.
  void Deliver(std::vector<Delivery> deliveries) {
    for (Delivery& d : deliveries) {
      Consumer* c = d.consumer.get();
      c->serial->Post([self = shared_from_this(), consumer = std::move(d.consumer),
                       entries = std::move(d.entries)]() mutable {
        consumer->handler(std::move(entries));
        std::vector<Delivery> next;
        {
          std::lock_guard lock(self->mu);
          consumer->busy = false;
          if (!consumer->closed) {
            auto s = self->streams.find(consumer->stream);
            if (s != self->streams.end()) self->PumpLocked(s->first, s->second, &next);
          }
        }
        self->Deliver(std::move(next));
      });
    }
  }

  void ScheduleClaim(std::shared_ptr<Consumer> c) {
    const auto every = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(10),
                                                           c->options.claim_idle / 2);
    dispatcher->After(every, [weak = weak_from_this(), c = std::move(c)]() mutable {
      auto self = weak.lock();
      if (!self) return;
      std::vector<Delivery> out;
      {
        std::lock_guard lock(self->mu);
        if (c->closed) return;
        self->ClaimLocked(c, &out);
      }
      self->Deliver(std::move(out));
      self->ScheduleClaim(std::move(c));
    });
  }

  void Done(core::DoneCallback done, core::Status status) {
    if (!done) return;
    dispatcher->Post([done = std::move(done), status = std::move(status)]() mutable {
      std::move(done)(std::move(status));
    });
  }
};

namespace {

class SubHandle final : public Handle {
 public:
  SubHandle(std::shared_ptr<MemoryBus::State> state, std::string topic, std::shared_ptr<Sub> sub)
      : state_(std::move(state)), topic_(std::move(topic)), sub_(std::move(sub)) {}
  ~SubHandle() override {
    sub_->serial->Close();
    std::lock_guard lock(state_->mu);
    auto it = state_->topics.find(topic_);
    if (it == state_->topics.end()) return;
    std::erase(it->second, sub_);
    if (it->second.empty()) state_->topics.erase(it);
  }

 private:
  std::shared_ptr<MemoryBus::State> state_;
  std::string topic_;
  std::shared_ptr<Sub> sub_;
};

class ConsumerHandle final : public Handle {
 public:
  ConsumerHandle(std::shared_ptr<MemoryBus::State> state, std::shared_ptr<Consumer> consumer)
      : state_(std::move(state)), consumer_(std::move(consumer)) {}
  ~ConsumerHandle() override {
    consumer_->serial->Close();
    std::vector<Delivery> next;
    {
      std::lock_guard lock(state_->mu);
      consumer_->closed = true;
      auto s = state_->streams.find(consumer_->stream);
      if (s == state_->streams.end()) return;
      auto g = s->second.groups.find(consumer_->group);
      if (g != s->second.groups.end()) std::erase(g->second.consumers, consumer_);
      // What it would have had goes to the others.
      if (!state_->stopped) state_->PumpLocked(s->first, s->second, &next);
    }
    state_->Deliver(std::move(next));
  }

 private:
  std::shared_ptr<MemoryBus::State> state_;
  std::shared_ptr<Consumer> consumer_;
};

class NoHandle final : public Handle {};

}  // namespace

MemoryBus::MemoryBus(MemoryBusOptions options) : state_(std::make_shared<State>()) {
  state_->options = options;
  state_->dispatcher = std::make_shared<Dispatcher>("bus-mem", std::max<size_t>(1, options.workers));
}

MemoryBus::~MemoryBus() {
  std::vector<std::shared_ptr<Serial>> serials;
  {
    std::lock_guard lock(state_->mu);
    state_->stopped = true;
    for (auto& [name, subs] : state_->topics) {
      for (auto& sub : subs) serials.push_back(sub->serial);
    }
    for (auto& [name, s] : state_->streams) {
      for (auto& [group, g] : s.groups) {
        for (auto& c : g.consumers) {
          c->closed = true;
          serials.push_back(c->serial);
        }
      }
    }
  }
  for (auto& serial : serials) serial->Close();
  state_->dispatcher->Stop();
}

void MemoryBus::Publish(std::string topic, std::string payload, core::DoneCallback done) {
  if (!ValidName(topic)) {
    return state_->Done(std::move(done), absl::InvalidArgumentError("bus: bad topic name"));
  }
  std::vector<std::shared_ptr<Sub>> subs;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->topics.find(topic);
    if (it != state_->topics.end()) subs = it->second;
  }
  auto shared = std::make_shared<const std::string>(std::move(payload));
  for (auto& sub : subs) {
    sub->serial->Post([sub, shared] { sub->on_message(*shared); });
  }
  state_->Done(std::move(done), absl::OkStatus());
}

std::unique_ptr<Handle> MemoryBus::Subscribe(std::string topic, TopicHandler on_message,
                                             GapHandler /*on_gap: nothing is ever missed*/) {
  if (!ValidName(topic) || !on_message) return std::make_unique<NoHandle>();
  auto sub = std::make_shared<Sub>(Sub{std::make_shared<Serial>(state_->dispatcher),
                                       std::move(on_message)});
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopped) return std::make_unique<NoHandle>();
    state_->topics[topic].push_back(sub);
  }
  return std::make_unique<SubHandle>(state_, std::move(topic), std::move(sub));
}

void MemoryBus::Append(std::string stream, std::string payload, core::Callback<std::string> done) {
  auto answer = [this, &done](core::StatusOr<std::string> r) {
    if (!done) return;
    state_->dispatcher->Post([done = std::move(done), r = std::move(r)]() mutable {
      std::move(done)(std::move(r));
    });
  };
  if (!ValidName(stream)) return answer(absl::InvalidArgumentError("bus: bad stream name"));
  std::vector<Delivery> out;
  uint64_t seq;
  {
    std::lock_guard lock(state_->mu);
    seq = state_->AppendLocked(stream, std::move(payload), &out);
  }
  state_->Deliver(std::move(out));
  answer(IdOf(seq));
}

std::unique_ptr<Handle> MemoryBus::Consume(std::string stream, ConsumerOptions options,
                                           StreamHandler on_entries) {
  if (!ValidName(stream) || !ValidName(options.group) || !ValidName(options.consumer) ||
      !on_entries) {
    return std::make_unique<NoHandle>();
  }
  if (options.batch == 0) options.batch = 1;
  if (options.max_deliveries == 0) options.max_deliveries = 1;
  auto c = std::make_shared<Consumer>();
  c->stream = stream;
  c->group = options.group;
  c->options = std::move(options);
  c->handler = std::move(on_entries);
  c->serial = std::make_shared<Serial>(state_->dispatcher);
  std::vector<Delivery> out;
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopped) return std::make_unique<NoHandle>();
    Stream& s = state_->streams[stream];
    Group& g = s.groups[c->group];  // a new group reads from the start
    g.consumers.push_back(c);
    state_->PumpLocked(stream, s, &out);
  }
  state_->Deliver(std::move(out));
  state_->ScheduleClaim(c);
  return std::make_unique<ConsumerHandle>(state_, std::move(c));
}

void MemoryBus::Ack(std::string stream, std::string group, std::vector<std::string> ids,
                    core::DoneCallback done) {
  std::vector<uint64_t> seqs;
  for (const std::string& id : ids) {
    uint64_t seq = 0;
    if (!ParseId(id, &seq)) {
      return state_->Done(std::move(done), absl::InvalidArgumentError("bus: bad entry id " + id));
    }
    seqs.push_back(seq);
  }
  {
    std::lock_guard lock(state_->mu);
    auto s = state_->streams.find(stream);
    if (s != state_->streams.end()) {
      auto g = s->second.groups.find(group);
      if (g != s->second.groups.end()) {
        for (uint64_t seq : seqs) g->second.pending.erase(seq);
      }
    }
  }
  state_->Done(std::move(done), absl::OkStatus());
}

}  // namespace mpim::bus
