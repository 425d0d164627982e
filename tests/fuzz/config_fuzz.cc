// Fuzz target: the TOML configuration loader (through a file, as --config).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mpim_config_fuzz_" + std::to_string(getpid()) + ".toml";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  mpim::core::ConfigSources sources;
  sources.file = path;
  auto config = mpim::core::LoadConfig(sources);
  if (config.ok()) (void)mpim::core::ShowConfig(*config);
  return 0;
}
