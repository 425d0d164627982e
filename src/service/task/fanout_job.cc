#include "service/task/fanout_job.h"

#include <boost/json/parse.hpp>

#include "store/blocking.h"
#include "store/conv_id.h"

namespace mpim::service {

TaskWorker::Handler FanoutJobHandler(store::Store& store, Deliverer& deliverer, int64_t batch) {
  return [&store, &deliverer, batch](const store::Job& job) -> core::Status {
    boost::system::error_code ec;
    auto payload = boost::json::parse(job.payload, ec);
    if (ec || !payload.is_object()) return absl::InvalidArgumentError("fanout: bad payload");
    const auto& p = payload.get_object();
    const auto* msg_id = p.if_contains("msg_id");
    if (!msg_id || !msg_id->is_int64()) return absl::InvalidArgumentError("fanout: no msg_id");
    bool recall = p.contains("recall") && p.at("recall").is_bool() && p.at("recall").get_bool();
    bool qos1 = !p.contains("qos1") || !p.at("qos1").is_bool() || p.at("qos1").get_bool();
    int priority = p.contains("priority") && p.at("priority").is_int64()
                       ? static_cast<int>(p.at("priority").get_int64())
                       : 1;

    auto message = store::Await<store::Message>(
        [&](auto cb) { store.messages().Get(msg_id->get_int64(), std::move(cb)); });
    if (!message.ok()) {
      // A message deleted with its group has nobody left to tell.
      return message.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                                    : message.status();
    }
    auto ref = store::ParseConvId(message->conv_id);
    if (!ref || ref->type != store::ConvType::kGroup) return absl::OkStatus();

    int64_t after = 0;
    for (;;) {
      auto page = store::Await<store::Page<store::GroupMember>>([&](auto cb) {
        store.groups().ListMembers(ref->a, after,
                                   static_cast<int>(std::min<int64_t>(batch, store::kMaxPageLimit)),
                                   std::move(cb));
      });
      if (!page.ok()) {
        return page.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                                   : page.status();
      }
      std::vector<int64_t> users;
      users.reserve(page->items.size());
      for (const auto& m : page->items) users.push_back(m.user_id);
      if (recall) {
        deliverer.Recall(users, message->conv_id, message->seq, message->msg_id);
      } else {
        deliverer.Message(users, 0, *message, qos1, static_cast<Priority>(priority & 3));
      }
      if (!page->has_more || page->items.empty()) break;
      after = page->items.back().user_id;
    }
    return absl::OkStatus();
  };
}

}  // namespace mpim::service
