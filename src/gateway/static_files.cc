#include "gateway/static_files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mpim::gateway {
namespace {

constexpr uintmax_t kMaxTotalBytes = 64u << 20;

std::string ContentType(const std::string& path) {
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".webmanifest", "application/manifest+json"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"}};
  std::string ext = std::filesystem::path(path).extension().string();
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

}  // namespace

core::StatusOr<std::unique_ptr<StaticFiles>> StaticFiles::Load(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(root) / "index.html", ec)) {
    return absl::NotFoundError("no index.html in web root " + root);
  }
  auto files = std::unique_ptr<StaticFiles>(new StaticFiles());
  uintmax_t total = 0;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    total += it->file_size(ec);
    if (total > kMaxTotalBytes) return absl::InvalidArgumentError("web root larger than 64 MiB");
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string rel = "/" + fs::relative(it->path(), root, ec).generic_string();
    files->files_[rel] = File{std::make_shared<const std::string>(ss.str()), ContentType(rel)};
  }
  if (ec) return absl::UnavailableError("cannot read web root " + root + ": " + ec.message());
  return files;
}

void StaticFiles::Serve(const net::HttpRequest& request, net::HttpResponder respond) const {
  std::string path = request.path.empty() ? "/" : request.path;
  if (path.rfind("/api/", 0) == 0 || path == "/api") {
    // A mistyped API path stays a JSON 404, never the page.
    return respond(net::HttpResponse::Error(absl::NotFoundError("no route for " + path)));
  }
  if (path.find("..") != std::string::npos) {
    return respond(net::HttpResponse::Error(absl::NotFoundError("no such file")));
  }
  if (path.back() == '/') path += "index.html";
  auto it = files_.find(path);
  if (it == files_.end() && std::filesystem::path(path).extension().empty()) {
    it = files_.find("/index.html");  // client-side routes
  }
  if (it == files_.end()) {
    return respond(net::HttpResponse::Error(absl::NotFoundError("no such file: " + path)));
  }
  net::HttpResponse r;
  r.status = 200;
  r.content_type = it->second.content_type;
  r.body = *it->second.body;
  bool html = r.content_type.rfind("text/html", 0) == 0;
  r.headers.emplace_back("Cache-Control", html ? "no-cache" : "max-age=300");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (html) {
    // Nothing from elsewhere: the client talks only to this server.
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: "
                           "https: http:; style-src 'self' 'unsafe-inline'");
  }
  respond(std::move(r));
}

std::string FindWebRoot(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  auto candidate = exe.parent_path().parent_path() / "share" / "mpim" / "web";
  if (std::filesystem::is_regular_file(candidate / "index.html", ec)) return candidate.string();
  return "";
}

}  // namespace mpim::gateway
