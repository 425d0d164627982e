// End to end: distributed tracing (issue 24; docs/operations.md "Tracing")
// against the real binary and a local OTLP/HTTP collector
// (support/otlp_receiver.h) that checks every export request's shape.
//
//   - One WebSocket send is one connected trace: from the sender's
//     gateway (ws send, parse) through the logic role (rate limit, block
//     check, store append and its commit, fan-out) to the recipient's
//     gateway (deliver); on a cluster also the gRPC hop (client and server
//     spans), the bus (publish on logic, consume on the recipient's
//     gateway), and for an offline recipient with a device the push plan
//     (logic) and the push itself (task role). Every span's parent is in
//     the trace; a client's traceparent (frame field or HTTP header) is
//     continued, its flag 00 respected; a malformed one starts a new trace.
//   - Spans carry ids and counts, never message bodies or tokens.
//   - Probes (/readyz) start no trace.
//   - A collector that refuses exports costs spans (counted), never sends.
//   - tracing.sample_ratio = 0: nothing is exported, whatever clients send.
//
// On `mpim serve`, or with MPIM_E2E_TARGET=cluster on `mpim cluster up`.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/api_client.h"
#include "support/otlp_receiver.h"
#include "support/restart_target.h"
#include "support/webhook_receiver.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using testing::OtlpReceiver;
using testing::ReceivedSpan;
using testing::RestartTarget;
using testing::UniqueName;
using testing::WebhookReceiver;
using testing::WsConn;
namespace json = boost::json;
using Ms = std::chrono::milliseconds;

constexpr char kBody[] = "secret-body-text-never-in-a-span";
constexpr char kClientTrace[] = "0af7651916cd43dd8448eb211c80319c";
constexpr char kClientSpan[] = "b7ad6b7169203331";

std::string Describe(const std::vector<ReceivedSpan>& spans) {
  std::string out;
  for (const auto& s : spans) {
    out += "  " + s.Role() + " " + s.Resource("service.instance.id") + " \"" + s.name + "\" " +
           s.span_id + " <- " + (s.parent_span_id.empty() ? "(root)" : s.parent_span_id) + "\n";
  }
  return out;
}

// The body of POST /messages of `text` to user `to`.
std::string RestSend(const std::string& to, const std::string& text) {
  return json::serialize(json::object{{"to", json::object{{"user", to}}},
                                      {"client_msg_id", UniqueName("c")},
                                      {"body", json::object{{"text", text}}}});
}

const ReceivedSpan* Find(const std::vector<ReceivedSpan>& spans, const std::string& name) {
  for (const auto& s : spans) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

class TracingE2eTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> more = {}) {
    std::vector<std::string> settings = {"tracing.sample_ratio=1",
                                         "tracing.otlp_endpoint=" + collector_.endpoint(),
                                         "tracing.export_interval_ms=50",
                                         "push.webhook_url=" + webhook_.url(),
                                         "push.webhook_secret=webhook-secret-for-tests",
                                         "push.coalesce_ms=0"};
    settings.insert(settings.end(), more.begin(), more.end());
    server_ = std::make_unique<RestartTarget>(testing::FastAuthEnv(), settings);
    ASSERT_TRUE(server_->Start()) << server_->error();
    api_ = std::make_unique<ApiClient>(server_->port(0));
  }

  void TearDown() override {
    if (HasFailure() && server_) {
      std::string logs = server_->Logs();
      if (logs.size() > 6000) logs = logs.substr(logs.size() - 6000);
      std::printf("server log (end):\n%s\n", logs.c_str());
    }
  }

  Account NewAccount(const std::string& prefix) { return api_->NewAccount(UniqueName(prefix)); }

  // A WebSocket of `a` on the k-th gateway (the users of a private chat on
  // two gateways of a cluster).
  std::unique_ptr<WsConn> OpenWs(const Account& a, size_t k) {
    auto ws = std::make_unique<WsConn>(server_->port(k));
    if (auto ok = ws->Open(a.token()); !ok) {
      ADD_FAILURE() << "open ws: " << ok.message();
      return nullptr;
    }
    return ws;
  }

  // A send frame from `ws` to user `to` (with `traceparent` when given);
  // its reply.
  json::object Send(WsConn& ws, const std::string& to, const std::string& traceparent = "") {
    json::object frame{{"op", "send"},
                       {"rid", ws.NextRid()},
                       {"to", json::object{{"user", to}}},
                       {"client_msg_id", UniqueName("c")},
                       {"body", json::object{{"text", kBody}}}};
    if (!traceparent.empty()) frame["traceparent"] = traceparent;
    auto reply = ws.Request(frame);
    EXPECT_TRUE(reply && reply->contains("seq")) << (reply ? json::serialize(*reply) : "none");
    return reply ? *reply : json::object{};
  }

  // The trace whose "ws send" span has seq `seq` in `conv_id`, once it
  // holds every span named in `names`.
  std::vector<ReceivedSpan> TraceOfSend(const std::string& conv_id, int64_t seq,
                                        const std::set<std::string>& names) {
    std::string trace_id;
    collector_.WaitFor([&](const std::vector<ReceivedSpan>& all) {
      for (const auto& s : all) {
        if (s.name == "ws send" && s.Attr("mpim.conv_id") == conv_id &&
            s.Attr("mpim.seq") == std::to_string(seq)) {
          trace_id = s.trace_id;
        }
      }
      if (trace_id.empty()) return false;
      std::set<std::string> have;
      for (const auto& s : all) {
        if (s.trace_id == trace_id) have.insert(s.name);
      }
      for (const auto& n : names) {
        if (!have.count(n)) return false;
      }
      return true;
    });
    if (trace_id.empty()) return {};
    // Spans of other nodes may still be on their way: a moment more.
    std::this_thread::sleep_for(Ms(300));
    return collector_.Trace(trace_id);
  }

  void ExpectNoSecrets(const std::vector<ReceivedSpan>& spans, const Account& a) {
    for (const auto& s : spans) {
      for (const auto& [key, value] : s.attributes) {
        EXPECT_EQ(value.find(kBody), std::string::npos) << s.name << " " << key;
        EXPECT_EQ(value.find(a.token()), std::string::npos) << s.name << " " << key;
      }
    }
  }

  OtlpReceiver collector_;
  WebhookReceiver webhook_;
  std::unique_ptr<RestartTarget> server_;
  std::unique_ptr<ApiClient> api_;
};

TEST_F(TracingE2eTest, OneSendIsOneConnectedTraceFromSenderToRecipient) {
  Start();
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  auto a = OpenWs(alice, 0);
  auto b = OpenWs(bob, 1);
  ASSERT_TRUE(a && b);

  json::object reply = Send(*a, bob.id());
  ASSERT_TRUE(reply.contains("seq"));
  const std::string conv_id(reply.at("conv_id").as_string());
  const int64_t seq = reply.at("seq").as_int64();
  ASSERT_TRUE(b->NextMsg(conv_id));

  std::set<std::string> expected = {"ws send",      "parse",        "rate limit", "block check",
                                    "store append", "store commit", "fan-out",    "deliver"};
  if (server_->cluster()) {
    expected.insert({"rpc Messages/Send", "serve Messages/Send", "bus publish", "bus consume"});
  }
  auto trace = TraceOfSend(conv_id, seq, expected);
  ASSERT_FALSE(trace.empty()) << "no trace for the send; got:\n" << Describe(collector_.Spans());
  for (const auto& n : expected) {
    EXPECT_TRUE(Find(trace, n)) << "no \"" << n << "\" span in\n" << Describe(trace);
  }
  EXPECT_EQ(testing::CheckConnected(trace), "") << Describe(trace);
  EXPECT_EQ(collector_.bad_requests(), 0u);

  const ReceivedSpan* root = Find(trace, "ws send");
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->parent_span_id.empty());
  EXPECT_EQ(root->kind, 2);  // SERVER
  EXPECT_EQ(root->Attr("mpim.user_id"), alice.id());
  const ReceivedSpan* append = Find(trace, "store append");
  ASSERT_TRUE(append);
  EXPECT_EQ(append->Attr("mpim.seq"), std::to_string(seq));
  EXPECT_EQ(append->Attr("mpim.duplicate"), "false");
  EXPECT_GE(std::stoi(Find(trace, "store commit")->Attr("mpim.commit_writes")), 1);
  EXPECT_EQ(Find(trace, "fan-out")->Attr("mpim.recipients"), "2");
  const ReceivedSpan* deliver = nullptr;
  for (const auto& s : trace) {
    if (s.name == "deliver" && s.Attr("mpim.sessions") == "1") deliver = &s;
  }
  ASSERT_TRUE(deliver) << Describe(trace);
  ExpectNoSecrets(trace, alice);

  if (server_->cluster()) {
    // Gateway -> logic -> the other gateway: three processes at least.
    std::set<std::string> instances;
    std::set<std::string> roles;
    for (const auto& s : trace) {
      instances.insert(s.Resource("service.instance.id"));
      roles.insert(s.Role());
    }
    EXPECT_GE(instances.size(), 3u) << Describe(trace);
    EXPECT_TRUE(roles.count("gateway") && roles.count("logic")) << Describe(trace);
    EXPECT_EQ(Find(trace, "ws send")->Role(), "gateway");
    EXPECT_EQ(Find(trace, "store append")->Role(), "logic");
    EXPECT_EQ(Find(trace, "bus consume")->Role(), "gateway");
    EXPECT_NE(Find(trace, "bus consume")->Resource("service.instance.id"),
              Find(trace, "ws send")->Resource("service.instance.id"));
    EXPECT_EQ(Find(trace, "bus publish")->kind, 4);  // PRODUCER
    EXPECT_EQ(Find(trace, "bus consume")->kind, 5);  // CONSUMER
  }
}

TEST_F(TracingE2eTest, AClientsTraceparentIsContinuedAndItsFlagRespected) {
  Start();
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  auto a = OpenWs(alice, 0);
  ASSERT_TRUE(a);

  // Continued: the trace id is the client's, the root's parent its span.
  const std::string sampled = std::string("00-") + kClientTrace + "-" + kClientSpan + "-01";
  json::object reply = Send(*a, bob.id(), sampled);
  ASSERT_TRUE(reply.contains("seq"));
  ASSERT_TRUE(collector_.WaitFor([](const std::vector<ReceivedSpan>& all) {
    for (const auto& s : all) {
      if (s.trace_id == kClientTrace && s.name == "store append") return true;
    }
    return false;
  })) << Describe(collector_.Spans());
  std::this_thread::sleep_for(Ms(300));
  auto trace = collector_.Trace(kClientTrace);
  EXPECT_EQ(testing::CheckConnected(trace, kClientSpan), "") << Describe(trace);
  ASSERT_TRUE(Find(trace, "ws send"));
  EXPECT_EQ(Find(trace, "ws send")->parent_span_id, kClientSpan);

  // Flag 00: the client's trace is not sampled, so neither is the send.
  const std::string unsampled = "00-1111111111111111111111111111111a-2222222222222222-00";
  ASSERT_TRUE(Send(*a, bob.id(), unsampled).contains("seq"));
  // Malformed: ignored, a trace of its own (and the send goes through).
  json::object odd = Send(*a, bob.id(), "00-not-a-traceparent");
  ASSERT_TRUE(odd.contains("seq"));
  auto own = TraceOfSend(std::string(odd.at("conv_id").as_string()), odd.at("seq").as_int64(),
                         {"ws send", "store append"});
  ASSERT_FALSE(own.empty());
  EXPECT_EQ(testing::CheckConnected(own), "") << Describe(own);
  EXPECT_TRUE(collector_.Trace("1111111111111111111111111111111a").empty());

  // REST: the header starts the request's span, the send inside it.
  const std::string body = RestSend(bob.id(), kBody);
  const std::string rest_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  ApiResponse r = api_->Call("POST", "/api/v1/messages", body, alice.token(),
                             {{"traceparent", "00-" + rest_trace + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(collector_.WaitFor([&](const std::vector<ReceivedSpan>& all) {
    std::set<std::string> names;
    for (const auto& s : all) {
      if (s.trace_id == rest_trace) names.insert(s.name);
    }
    return names.count("POST /api/v1/messages") && names.count("auth") &&
           names.count("store append") && names.count("fan-out");
  })) << Describe(collector_.Spans());
  std::this_thread::sleep_for(Ms(300));
  auto rest = collector_.Trace(rest_trace);
  EXPECT_EQ(testing::CheckConnected(rest, "00f067aa0ba902b7"), "") << Describe(rest);
  const ReceivedSpan* http = Find(rest, "POST /api/v1/messages");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->Attr("http.response.status_code"), "200");
  EXPECT_EQ(http->Attr("http.route"), "/api/v1/messages");
  ExpectNoSecrets(rest, alice);

  // Probes and scrapes start no trace.
  ASSERT_EQ(api_->Call("GET", "/readyz").status, 200);
  ASSERT_EQ(api_->Call("GET", "/metrics").status, 200);
  std::this_thread::sleep_for(Ms(300));
  for (const auto& s : collector_.Spans()) {
    EXPECT_EQ(s.name.find("/readyz"), std::string::npos);
    EXPECT_EQ(s.name.find("/metrics"), std::string::npos);
  }
}

TEST_F(TracingE2eTest, AnOfflineRecipientsPushJoinsTheSendsTrace) {
  Start();
  Account alice = NewAccount("alice");
  Account carol = NewAccount("carol");  // no WebSocket: offline, one device
  ApiResponse d =
      api_->Post("/devices", R"({"platform":"webhook","token":"carol-device"})", carol.token());
  ASSERT_EQ(d.status, 201) << d.Describe();
  auto a = OpenWs(alice, 0);
  ASSERT_TRUE(a);
  json::object reply = Send(*a, carol.id());
  ASSERT_TRUE(reply.contains("seq"));
  auto trace = TraceOfSend(std::string(reply.at("conv_id").as_string()), reply.at("seq").as_int64(),
                           {"ws send", "push plan", "push"});
  ASSERT_FALSE(trace.empty()) << Describe(collector_.Spans());
  EXPECT_EQ(testing::CheckConnected(trace), "") << Describe(trace);
  const ReceivedSpan* push = Find(trace, "push");
  ASSERT_TRUE(push) << Describe(trace);
  EXPECT_EQ(push->Attr("mpim.push_outcome"), "delivered");
  EXPECT_EQ(push->Attr("mpim.push_provider"), "webhook");
  EXPECT_EQ(push->kind, 5);  // CONSUMER: a job
  if (server_->cluster()) {
    EXPECT_EQ(push->Role(), "task");
    EXPECT_EQ(Find(trace, "push plan")->Role(), "logic");
  }
  ExpectNoSecrets(trace, alice);
}

TEST_F(TracingE2eTest, ACollectorThatRefusesCostsSpansNotSends) {
  collector_.SetPolicy([](size_t) { return 503; });
  Start();
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  auto a = OpenWs(alice, 0);
  ASSERT_TRUE(a);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Send(*a, bob.id()).contains("seq"));
  const std::string dropped = R"(mpim_trace_spans_dropped_total{reason="export_failed"})";
  bool counted = false;
  for (int i = 0; i < 100 && !counted; ++i) {
    counted = server_->MetricSum(dropped) > 0;
    if (!counted) std::this_thread::sleep_for(Ms(100));
  }
  EXPECT_TRUE(counted);
  EXPECT_TRUE(collector_.Spans().empty());
  EXPECT_GT(collector_.requests(), 0u);
  // Sending goes on, and recovers its traces once the collector does.
  collector_.SetPolicy(nullptr);
  json::object reply = Send(*a, bob.id());
  ASSERT_TRUE(reply.contains("seq"));
  EXPECT_FALSE(TraceOfSend(std::string(reply.at("conv_id").as_string()), reply.at("seq").as_int64(),
                           {"ws send", "store append"})
                   .empty());
}

// Spans still queued when a node stops are sent before it exits (and a
// collector holding keep-alive connections does not hold the exit up).
TEST_F(TracingE2eTest, StoppingSendsTheLastSpans) {
  Start({"tracing.export_interval_ms=600000"});
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  auto a = OpenWs(alice, 0);
  ASSERT_TRUE(a);
  json::object reply = Send(*a, bob.id());
  ASSERT_TRUE(reply.contains("seq"));
  a.reset();
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Terminate(std::chrono::seconds(20)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(15));
  bool found = false;
  for (const auto& s : collector_.Spans()) {
    found = found || (s.name == "store append" &&
                      s.Attr("mpim.seq") == std::to_string(reply.at("seq").as_int64()));
  }
  EXPECT_TRUE(found) << Describe(collector_.Spans());
}

TEST_F(TracingE2eTest, RatioZeroExportsNothing) {
  Start({"tracing.sample_ratio=0"});
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  auto a = OpenWs(alice, 0);
  ASSERT_TRUE(a);
  const std::string sampled = std::string("00-") + kClientTrace + "-" + kClientSpan + "-01";
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Send(*a, bob.id(), sampled).contains("seq"));
  const std::string body = RestSend(bob.id(), "x");
  ASSERT_EQ(api_->Call("POST", "/api/v1/messages", body, alice.token(), {{"traceparent", sampled}})
                .status,
            200);
  std::this_thread::sleep_for(Ms(1000));
  EXPECT_EQ(collector_.requests(), 0u);
  EXPECT_TRUE(collector_.Spans().empty());
}

}  // namespace
}  // namespace mpim
