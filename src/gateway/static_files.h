// The web client's static files, served by the gateway at `/` (the router's
// fallback for GETs no API route matches). The whole tree is read into
// memory at start-up: the files are small, and no io thread ever blocks on
// the disk. `/` and paths without a file extension that match no file serve
// index.html (the client routes on its own).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/http.h"

namespace mpim::gateway {

class StaticFiles {
 public:
  // Reads every regular file under `root` (at most 64 MiB in all).
  // not_found if `root` is not a directory with an index.html.
  static core::StatusOr<std::unique_ptr<StaticFiles>> Load(const std::string& root);

  void Serve(const net::HttpRequest& request, net::HttpResponder respond) const;
  size_t files() const { return files_.size(); }

 private:
  struct File {
    std::shared_ptr<const std::string> body;
    std::string content_type;
  };
  std::map<std::string, File, std::less<>> files_;  // "/index.html" -> file
};

// Where the web client is: `configured` if not empty, else the installed
// copy next to the binary (<bin>/../share/mpim/web), else "" (none).
std::string FindWebRoot(const std::string& configured);

}  // namespace mpim::gateway
