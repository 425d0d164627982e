// A route::Presence for gateway tests: counts connections per user, keeps
// each connection's subscriptions, and answers Get from `states` (offline
// when absent). No listener: nobody is told of changes.
//
// Threading: one thread, the test's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "route/presence.h"

namespace mpim::testing {

class FakePresence : public route::Presence {
 public:
  void Connected(int64_t user, int64_t) override { ++online[user]; }
  void Disconnected(int64_t user, int64_t) override { --online[user]; }
  route::UserPresence Get(int64_t user) const override {
    auto it = states.find(user);
    return it == states.end() ? route::UserPresence{} : it->second;
  }
  void Subscribe(route::ConnId conn, const std::vector<int64_t>& users) override {
    auto& subs = subscriptions[conn.local];
    subs.insert(subs.end(), users.begin(), users.end());
  }
  void Unsubscribe(route::ConnId conn, const std::vector<int64_t>& users) override {
    std::erase_if(subscriptions[conn.local], [&](int64_t u) {
      return std::find(users.begin(), users.end(), u) != users.end();
    });
  }

  std::map<int64_t, int> online;  // connections per user
  std::map<int64_t, route::UserPresence> states;
  std::map<uint64_t, std::vector<int64_t>> subscriptions;  // by ConnId::local
};

}  // namespace mpim::testing
