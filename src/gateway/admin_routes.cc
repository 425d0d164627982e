// /api/v1/admin/... (protocol.md section 5): only when admin.api_key is
// set; every request carries `Authorization: Bearer <admin.api_key>`.
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>

#include <boost/json.hpp>
#include <charconv>

#include "gateway/json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

constexpr char kAdmin[] = "/api/v1/admin";

const char* StateName(store::JobState s) {
  switch (s) {
    case store::JobState::kReady:
      return "ready";
    case store::JobState::kLeased:
      return "leased";
    case store::JobState::kDead:
      return "dead";
  }
  return "ready";
}

boost::json::object JobJson(const store::Job& j, bool with_payload) {
  boost::json::object o{{"job_id", std::to_string(j.job_id)},
                        {"kind", j.kind},
                        {"state", StateName(j.state)},
                        {"attempts", j.attempts},
                        {"max_attempts", j.max_attempts},
                        {"created_at", j.created_at},
                        {"run_at", j.run_at}};
  if (!j.last_error.empty()) o["last_error"] = j.last_error;
  if (with_payload) {
    // Payloads are JSON by convention: shown as JSON, or as text if not.
    boost::system::error_code ec;
    boost::json::value payload = boost::json::parse(j.payload, ec);
    if (ec) {
      o["payload"] = j.payload;
    } else {
      o["payload"] = std::move(payload);
    }
  }
  return o;
}

// SHA-256 of each side, compared in constant time (no length leak either).
bool SameKey(std::string_view presented, const std::string& key) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

using AdminHandler = std::function<void(net::HttpRequest, net::HttpResponder)>;

net::HttpHandler AdminOnly(const std::string& key, AdminHandler handler) {
  return [key, handler = std::move(handler)](net::HttpRequest req, net::HttpResponder respond) {
    std::string_view header = req.Header("authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size() ||
        strncasecmp(header.data(), kScheme.data(), kScheme.size()) != 0 ||
        !SameKey(header.substr(kScheme.size()), key)) {
      net::HttpResponse r =
          net::HttpResponse::Error(absl::UnauthenticatedError("admin API key required"));
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return respond(std::move(r));
    }
    handler(std::move(req), std::move(respond));
  };
}

core::StatusOr<int64_t> JobId(const net::HttpRequest& req) {
  return ParseId(req.Param("id"), "job_id");
}

}  // namespace

void AddAdminRoutes(net::Router& router, const ApiContext& api, const std::string& api_key) {
  if (api_key.empty() || !api.admin) return;  // off: these paths are 404
  service::AdminService& admin = *api.admin;
  const int page_max = api.page_max;

  router.Add(
      "GET", std::string(kAdmin) + "/jobs",
      AdminOnly(api_key, [&admin, page_max](net::HttpRequest req, net::HttpResponder respond) {
        store::JobFilter filter;
        if (auto state = req.Query("state"); state && !state->empty()) {
          if (*state == "ready") {
            filter.state = store::JobState::kReady;
          } else if (*state == "leased") {
            filter.state = store::JobState::kLeased;
          } else if (*state == "dead") {
            filter.state = store::JobState::kDead;
          } else {
            return respond(net::HttpResponse::Error(
                absl::InvalidArgumentError("state: must be ready, leased or dead")));
          }
        }
        if (auto kind = req.Query("kind")) filter.kind = std::string(*kind);
        auto limit = ParseLimit(req, page_max);
        if (!limit.ok()) return respond(net::HttpResponse::Error(limit.status()));
        filter.limit = *limit;
        if (auto after = req.Query("after"); after && !after->empty()) {
          auto id = ParseId(*after, "after");
          if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
          filter.after_job = *id;
        }
        admin.ListJobs(filter, [respond = std::move(respond)](
                                   core::StatusOr<store::Page<store::Job>> page) mutable {
          if (!page.ok()) return respond(net::HttpResponse::Error(page.status()));
          boost::json::array jobs;
          for (const store::Job& j : page->items) jobs.push_back(JobJson(j, false));
          boost::json::object out{{"jobs", std::move(jobs)}};
          if (page->has_more && !page->items.empty()) {
            out["next"] = std::to_string(page->items.back().job_id);
          }
          respond(JsonResponse(200, out));
        });
      }));

  router.Add("GET", std::string(kAdmin) + "/jobs/{id}",
             AdminOnly(api_key, [&admin](net::HttpRequest req, net::HttpResponder respond) {
               auto id = JobId(req);
               if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
               admin.GetJob(*id,
                            [respond = std::move(respond)](core::StatusOr<store::Job> job) mutable {
                              if (!job.ok()) return respond(net::HttpResponse::Error(job.status()));
                              respond(JsonResponse(200, JobJson(*job, true)));
                            });
             }));

  router.Add("POST", std::string(kAdmin) + "/jobs/{id}/retry",
             AdminOnly(api_key, [&admin](net::HttpRequest req, net::HttpResponder respond) {
               auto id = JobId(req);
               if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
               admin.RetryJob(*id, [respond = std::move(respond)](core::Status s) mutable {
                 if (!s.ok()) return respond(net::HttpResponse::Error(s));
                 respond(JsonResponse(202, boost::json::object{}));
               });
             }));

  router.Add("DELETE", std::string(kAdmin) + "/jobs/{id}",
             AdminOnly(api_key, [&admin](net::HttpRequest req, net::HttpResponder respond) {
               auto id = JobId(req);
               if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
               admin.DeleteJob(*id, ReplyNoContent(std::move(respond)));
             }));

  router.Add(
      "GET", std::string(kAdmin) + "/stats",
      AdminOnly(api_key, [&admin](net::HttpRequest, net::HttpResponder respond) {
        admin.Stats([respond = std::move(respond)](core::StatusOr<service::AdminStats> s) mutable {
          if (!s.ok()) return respond(net::HttpResponse::Error(s.status()));
          respond(JsonResponse(
              200, boost::json::object{{"jobs", boost::json::object{{"ready", s->ready},
                                                                    {"leased", s->leased},
                                                                    {"dead", s->dead}}},
                                       {"sessions", s->sessions},
                                       {"users", s->users}}));
        });
      }));
}

}  // namespace mpim::gateway
