// Fakes of the service interfaces a WebSocket session calls
// (service::AuthService, MessageService, ConversationService) for gateway
// tests. Each keeps the calls it gets, callbacks included, and answers only
// when the test says so, so a test picks the order and the content of every
// answer (a page, an empty page, an error), and when it comes.
//
// Threading: one thread, the test's. Nothing here is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/callback.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/message_service.h"

namespace mpim::testing {

// Every token authenticates as `principal`, unless `refuse` is set.
class FakeAuth : public service::AuthService {
 public:
  void Register(service::RegisterRequest, core::Callback<int64_t>) override {}
  void Login(service::LoginRequest, core::Callback<service::LoginResult>) override {}
  void Refresh(std::string, core::Callback<service::TokenPair>) override {}
  void Logout(service::Principal, core::DoneCallback) override {}
  core::StatusOr<service::Principal> Authenticate(std::string_view) const override {
    if (refuse) return absl::UnauthenticatedError("invalid token");
    return principal;
  }

  service::Principal principal{1, 11};
  bool refuse = false;
};

// Keeps each send's callbacks for the test to run. `order_inline`: Send
// runs `ordered` before it returns (no store read before the append).
class FakeMessages : public service::MessageService {
 public:
  struct Call {
    std::string client_msg_id;
    core::Callback<service::SendResult> done;
    OrderedCallback ordered;
  };
  void Send(service::Principal, service::SendRequest request,
            core::Callback<service::SendResult> done, OrderedCallback ordered) override {
    calls.push_back(Call{request.client_msg_id, std::move(done), std::move(ordered)});
    if (order_inline) std::move(calls.back().ordered)();
  }
  void PostSystem(int64_t, int64_t, std::string, core::Callback<store::Message>) override {}
  void Recall(service::Principal, int64_t, core::Callback<store::Message>) override {}

  bool order_inline = true;
  std::vector<Call> calls;
};

// Keeps the hello's Pending query and every Sync, Read, Ack and Typing
// with its callback; the other calls are never answered.
class FakeConversations : public service::ConversationService {
 public:
  struct SyncCall {
    std::string conv_id;
    int64_t after_seq = 0;
    int limit = 0;
    core::Callback<service::MessagePage> done;
  };
  struct SeqCall {  // Read and Ack
    std::string conv_id;
    int64_t seq = 0;
  };

  void List(service::Principal, int,
            core::Callback<std::vector<service::ConversationView>>) override {}
  void History(service::Principal, std::string, std::optional<int64_t>, std::optional<int64_t>, int,
               core::Callback<service::MessagePage>) override {}
  void Sync(service::Principal, std::string conv_id, int64_t after_seq, int limit,
            core::Callback<service::MessagePage> done) override {
    syncs.push_back(SyncCall{std::move(conv_id), after_seq, limit, std::move(done)});
  }
  void Read(service::Principal, std::string conv_id, int64_t seq, route::ConnId,
            core::Callback<int64_t> done) override {
    reads.push_back(SeqCall{std::move(conv_id), seq});
    read_done.push_back(std::move(done));
  }
  void Ack(service::Principal, std::string conv_id, int64_t seq, core::DoneCallback done) override {
    acks.push_back(SeqCall{std::move(conv_id), seq});
    ack_done.push_back(std::move(done));
  }
  void Typing(service::Principal, std::string, core::DoneCallback done) override {
    typing_done.push_back(std::move(done));
  }
  void Update(service::Principal, std::string, std::optional<bool>, std::optional<bool>,
              core::DoneCallback) override {}
  void Search(service::Principal, std::string, std::optional<std::string>, int,
              core::Callback<std::vector<store::Message>>) override {}
  void Pending(service::Principal,
               core::Callback<std::vector<store::PendingConversation>> done) override {
    pending_done = std::move(done);
  }

  void StartSeq(service::Principal, std::string conv_id, core::Callback<int64_t> done) override {
    starts.push_back(SyncCall{std::move(conv_id), 0, 0, nullptr});
    start_done.push_back(std::move(done));
  }

  // Answers the hello's Pending query with `pending`.
  void AnswerPending() { std::move(pending_done)(pending); }
  // Answers Sync call `i` with `answer` (a page or an error).
  void AnswerSync(size_t i, core::StatusOr<service::MessagePage> answer) {
    std::move(syncs.at(i).done)(std::move(answer));
  }

  std::vector<store::PendingConversation> pending;
  core::Callback<std::vector<store::PendingConversation>> pending_done;
  std::vector<SyncCall> syncs;
  std::vector<SyncCall> starts;  // StartSeq: conv_id only
  std::vector<core::Callback<int64_t>> start_done;
  std::vector<SeqCall> reads;
  std::vector<core::Callback<int64_t>> read_done;
  std::vector<SeqCall> acks;
  std::vector<core::DoneCallback> ack_done;
  std::vector<core::DoneCallback> typing_done;
};

}  // namespace mpim::testing
