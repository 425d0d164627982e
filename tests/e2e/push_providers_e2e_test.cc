// End to end: `mpim serve` pushing through all three providers at once,
// each to a local server speaking its wire protocol (protocol.md section 4;
// docs/push.md): APNs over HTTP/2 with TLS (support/h2_test_server.h), FCM's
// OAuth2 token exchange and v1 send (net/http_test_server.h), and the
// webhook (support/webhook_receiver.h). The providers' own suites
// (tests/service/push/) check every header, signature and outcome; this
// one checks that the server wires them: credential files from the config,
// one push per member device on the platform's provider, "token gone"
// removing the device.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "net/http_test_server.h"
#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/h2_test_server.h"
#include "support/server_process.h"
#include "support/test_keys.h"
#include "support/webhook_receiver.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using Ms = std::chrono::milliseconds;
namespace json = boost::json;

std::string WriteSecret(const std::filesystem::path& dir, const std::string& name,
                        const std::string& text) {
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  ::chmod(path.c_str(), 0600);
  return path;
}

TEST(PushProvidersE2eTest, EachPlatformIsPushedThroughItsProvider) {
  const std::filesystem::path dir = testing::FreshTempDir("mpim-push-providers-");
  // APNs: HTTP/2 over TLS, the server's self-signed CA trusted.
  testing::H2TestServer apns(testing::H2TestServer::Mode::kTls);
  ASSERT_TRUE(apns.ok()) << apns.error();
  apns.SetHandler([](const testing::H2TestRequest& r) {
    if (r.path.find("/3/device/0gone") == 0) {
      return testing::H2TestAnswer{.status = 410, .body = R"({"reason":"Unregistered"})"};
    }
    return testing::H2TestAnswer{.status = 200};
  });
  // FCM: the token endpoint and the v1 send, cleartext.
  testing::HttpTestServer fcm(testing::HttpTestServer::Mode::kCleartext);
  ASSERT_TRUE(fcm.ok()) << fcm.error();
  fcm.SetHandler([](const testing::HttpTestRequest& r) {
    testing::HttpTestAnswer a;
    if (r.target == "/token") {
      a.body = R"({"access_token":"fcm-access-token","expires_in":3600,"token_type":"Bearer"})";
    } else if (r.Header("authorization") != "Bearer fcm-access-token") {
      a.status = 401;
      a.body = R"({"error":{"code":401,"status":"UNAUTHENTICATED"}})";
    } else {
      a.body = R"({"name":"projects/mpim-test/messages/1"})";
    }
    return a;
  });
  testing::WebhookReceiver webhook;

  json::object account{{"type", "service_account"},
                       {"project_id", "mpim-test"},
                       {"private_key_id", "key-1"},
                       {"private_key", testing::NewRsaKeyPem()},
                       {"client_email", "mpim@mpim-test.iam.gserviceaccount.com"},
                       {"token_uri", fcm.url() + "/token"}};
  const std::vector<std::string> settings = {
      "--set",
      "push.apns_url=" + apns.url(),
      "--set",
      "push.apns_key_file=" + WriteSecret(dir, "AuthKey.p8", testing::NewP256KeyPem()),
      "--set",
      "push.apns_key_id=ABC123DEFG",
      "--set",
      "push.apns_team_id=TEAM123456",
      "--set",
      "push.apns_topic=com.example.chat",
      "--set",
      "push.tls_ca_file=" + apns.ca_file(),
      "--set",
      "push.fcm_url=" + fcm.url(),
      "--set",
      "push.fcm_credentials_file=" +
          WriteSecret(dir, "service-account.json", json::serialize(account)),
      "--set",
      "push.webhook_url=" + webhook.url(),
      "--set",
      "push.webhook_secret=s"};
  testing::ServerProcess server(
      testing::ServerProcess::Options{.extra_args = settings, .env = testing::FastAuthEnv()});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());

  Account owner = api.NewAccount(testing::UniqueName("own"));
  struct Member {
    Account account;
    std::string platform;
    std::string token;
  };
  std::vector<Member> members = {{api.NewAccount(testing::UniqueName("ios")), "apns", "0a1b2c3d"},
                                 {api.NewAccount(testing::UniqueName("gone")), "apns", "0gone"},
                                 {api.NewAccount(testing::UniqueName("droid")), "fcm", "fcm-tok"},
                                 {api.NewAccount(testing::UniqueName("hook")), "webhook", "w"}};
  std::vector<std::string> ids;
  for (const Member& m : members) {
    ApiResponse r = api.Post(
        "/devices", json::serialize(json::object{{"platform", m.platform}, {"token", m.token}}),
        m.account.token());
    ASSERT_EQ(r.status, 201) << r.Describe();
    ids.push_back(m.account.id());
  }
  testing::GroupRef group = testing::CreateGroup(api, owner.token(), "providers", ids);
  ASSERT_FALSE(group.group_id.empty());
  json::object send{{"to", json::object{{"group", group.group_id}}},
                    {"client_msg_id", "c1"},
                    {"type", "text"},
                    {"body", json::object{{"text", "to every platform"}}}};
  ApiResponse sent = api.Post("/messages", json::serialize(send), owner.token());
  ASSERT_EQ(sent.status, 200) << sent.Describe();

  ASSERT_TRUE(apns.WaitForRequests(2, Ms(20000))) << server.LogTail(3000);
  ASSERT_TRUE(webhook.WaitFor([](const auto& all) { return all.size() == 1; }))
      << server.LogTail(3000);
  ASSERT_TRUE(testing::PollUntil([&] { return fcm.request_count() >= 2; }, Ms(20000)))
      << server.LogTail(3000);

  // The badge: the member's unread count over every conversation, as the
  // conversation list says (the group's system message counts too).
  auto badge_of = [&](const Account& a) {
    int64_t unread = 0;
    for (const json::value& c : testing::ConversationList(api.Get("/conversations", a.token()))) {
      unread += testing::Int(c.as_object(), "unread");
    }
    return unread;
  };
  const int64_t ios_badge = badge_of(members[0].account);
  const int64_t droid_badge = badge_of(members[2].account);
  EXPECT_GE(ios_badge, 1);
  bool apns_ok = false;
  for (const testing::H2TestRequest& r : apns.requests()) {
    if (r.path != "/3/device/0a1b2c3d") continue;
    apns_ok = true;
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.Header("apns-topic"), "com.example.chat");
    EXPECT_EQ(r.Header("apns-collapse-id"), group.conv_id);
    EXPECT_EQ(r.Header("authorization").substr(0, 7), "bearer ");
    json::value body = json::parse(r.body);
    EXPECT_EQ(body.at("mpim").at("conv_id").as_string(), group.conv_id);
    EXPECT_EQ(body.at("aps").at("badge").as_int64(), ios_badge);
  }
  EXPECT_TRUE(apns_ok) << "no push to the APNs device";
  std::vector<testing::HttpTestRequest> fcm_requests = fcm.requests();
  ASSERT_GE(fcm_requests.size(), 2u);
  EXPECT_EQ(fcm_requests[0].target, "/token");
  EXPECT_NE(fcm_requests[0].body.find("grant_type="), std::string::npos);
  EXPECT_EQ(fcm_requests[1].target, "/v1/projects/mpim-test/messages:send");
  json::value message = json::parse(fcm_requests[1].body).at("message");
  EXPECT_EQ(message.at("token").as_string(), "fcm-tok");
  EXPECT_EQ(message.at("data").at("conv_id").as_string(), group.conv_id);
  EXPECT_EQ(message.at("data").at("badge").as_string(), std::to_string(droid_badge));
  // The device APNs called gone is removed; the others stay.
  ASSERT_TRUE(testing::PollUntil(
      [&] { return api.Get("/devices", members[1].account.token()).json.as_array().empty(); },
      Ms(10000)));
  EXPECT_EQ(api.Get("/devices", members[0].account.token()).json.as_array().size(), 1u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mpim
