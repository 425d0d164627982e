#include "core/secret_file.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace mpim::core {

StatusOr<std::string> ReadFile(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(key + ": cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(key + ": cannot read " + path);
  }
  if ((st.st_mode & 077) != 0) {
    return absl::InvalidArgumentError(key + ": " + path +
                                      " may be read by group or others; chmod 600 it");
  }
  return ReadFile(path, key);
}

}  // namespace mpim::core
