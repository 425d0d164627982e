// A store::Store that only lends another store's sub-stores (Close does
// nothing), so that several decorators (several nodes' caches) can sit on
// one real store in tests and benchmarks. Override an accessor to put
// something in between (a counter, say).
#pragma once

#include "store/store.h"

namespace mpim::testing {

class BorrowedStore : public store::Store {
 public:
  explicit BorrowedStore(store::Store& s) : s_(s) {}
  store::UserStore& users() override { return s_.users(); }
  store::SessionStore& sessions() override { return s_.sessions(); }
  store::FriendStore& friends() override { return s_.friends(); }
  store::GroupStore& groups() override { return s_.groups(); }
  store::ConversationStore& conversations() override { return s_.conversations(); }
  store::MessageStore& messages() override { return s_.messages(); }
  store::SearchStore& search() override { return s_.search(); }
  store::JobStore& jobs() override { return s_.jobs(); }
  void Ping(store::DoneCallback done) override { s_.Ping(std::move(done)); }
  void Close() override {}

 private:
  store::Store& s_;
};

}  // namespace mpim::testing
