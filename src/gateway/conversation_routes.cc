#include <boost/json/serialize.hpp>
#include <charconv>

#include "gateway/json.h"
#include "gateway/message_json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

core::StatusOr<std::optional<int64_t>> OptionalSeq(const net::HttpRequest& req,
                                                   std::string_view name) {
  auto text = req.Query(name);
  if (!text || text->empty()) return std::optional<int64_t>();
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size() || v < 0) {
    return absl::InvalidArgumentError(std::string(name) + ": must be an integer >= 0");
  }
  return std::optional<int64_t>(v);
}

std::string ConversationText(const service::ConversationView& v) {
  const store::UserConversation& c = v.conv;
  boost::json::object o;
  o["conv_id"] = c.conversation.conv_id;
  o["type"] = c.conversation.type == store::ConvType::kPrivate ? "private" : "group";
  if (v.peer) o["peer"] = UserJson(*v.peer);
  if (v.group) o["group"] = GroupJson(*v.group);
  o["last_seq"] = c.conversation.last_seq;
  o["read_seq"] = c.read_seq;
  o["unread"] = c.unread;
  o["muted"] = c.muted;
  o["pinned"] = c.pinned;
  std::string text = boost::json::serialize(o);
  if (c.last_message) {
    text.pop_back();  // '}'
    text += ",\"last_message\":" + MessageObjectText(*c.last_message) + "}";
  }
  return text;
}

}  // namespace

void AddConversationRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;
  service::ConversationService& convs = *api.conversations;
  service::MessageService& messages = *api.messages;
  const int page_max = api.page_max;

  router.Add("GET", "/api/v1/conversations",
             Authed(auth, [&convs, page_max](net::HttpRequest req, service::Principal who,
                                             net::HttpResponder respond) {
               auto limit = ParseLimit(req, page_max);
               if (!limit.ok()) return respond(net::HttpResponse::Error(limit.status()));
               convs.List(who, *limit,
                          [respond = std::move(respond)](
                              core::StatusOr<std::vector<service::ConversationView>> list) mutable {
                            if (!list.ok()) return respond(net::HttpResponse::Error(list.status()));
                            std::string text = "[";
                            for (size_t i = 0; i < list->size(); ++i) {
                              if (i) text += ',';
                              text += ConversationText((*list)[i]);
                            }
                            respond(net::HttpResponse::Json(200, text + "]"));
                          });
             }));

  router.Add("GET", "/api/v1/conversations/{conv_id}/messages",
             Authed(auth, [&convs, page_max](net::HttpRequest req, service::Principal who,
                                             net::HttpResponder respond) {
               auto limit = ParseLimit(req, page_max);
               auto before = OptionalSeq(req, "before_seq");
               auto after = OptionalSeq(req, "after_seq");
               for (const core::Status& s : {limit.status(), before.status(), after.status()}) {
                 if (!s.ok()) return respond(net::HttpResponse::Error(s));
               }
               convs.History(who, std::string(req.Param("conv_id")), *before, *after, *limit,
                             [respond = std::move(respond)](
                                 core::StatusOr<service::MessagePage> page) mutable {
                               if (!page.ok())
                                 return respond(net::HttpResponse::Error(page.status()));
                               respond(net::HttpResponse::Json(
                                   200, MessagePageText("", page->messages, page->has_more)));
                             });
             }));

  router.Add("POST", "/api/v1/conversations/{conv_id}/read",
             Authed(auth, [&convs](net::HttpRequest req, service::Principal who,
                                   net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
               const boost::json::value* seq = body->if_contains("seq");
               if (!seq || !seq->is_int64()) {
                 return respond(net::HttpResponse::Error(
                     absl::InvalidArgumentError("seq: required, an integer")));
               }
               convs.Read(who, std::string(req.Param("conv_id")), seq->get_int64(), {},
                          [respond = std::move(respond)](core::StatusOr<int64_t> r) mutable {
                            if (!r.ok()) return respond(net::HttpResponse::Error(r.status()));
                            respond(net::HttpResponse::NoContent());
                          });
             }));

  router.Add(
      "POST", "/api/v1/messages",
      Authed(auth, [&messages](net::HttpRequest req, service::Principal who,
                               net::HttpResponder respond) {
        auto body = ParseObject(req.body);
        if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
        auto send = ParseSendRequest(*body);
        if (!send.ok()) return respond(net::HttpResponse::Error(send.status()));
        send->trace = core::trace::Current();  // the request's span
        messages.Send(
            who, std::move(*send),
            [respond = std::move(respond)](core::StatusOr<service::SendResult> r) mutable {
              if (!r.ok()) return respond(net::HttpResponse::Error(r.status()));
              respond(JsonResponse(200, boost::json::object{{"msg_id", std::to_string(r->msg_id)},
                                                            {"conv_id", r->conv_id},
                                                            {"seq", r->seq},
                                                            {"ts", r->ts}}));
            },
            nullptr);
      }));
}

}  // namespace mpim::gateway
