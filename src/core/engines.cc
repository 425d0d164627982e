#include "core/engines.h"

namespace mpim::core {

const std::vector<EngineName>& Engines() {
  static const std::vector<EngineName> engines = {
      {"store.engine", "sqlite", "embedded SQLite file in server.data_dir"},
      {"cache.engine", "local", "this process's memory"},
      {"cache.engine", "none", "no cache: every read goes to the store"},
      {"route.engine", "memory", "this process's memory (one node)"},
      {"bus.engine", "memory", "direct calls within this process (one node)"},
  };
  return engines;
}

std::vector<std::string_view> EngineNames(std::string_view part) {
  std::vector<std::string_view> names;
  for (const EngineName& e : Engines()) {
    if (e.part == part) names.push_back(e.name);
  }
  return names;
}

std::string EngineHelp(std::string_view part) {
  std::string out;
  for (const EngineName& e : Engines()) {
    if (e.part != part) continue;
    if (!out.empty()) out += ", ";
    out += "`" + std::string(e.name) + "` (" + std::string(e.help) + ")";
  }
  return out;
}

}  // namespace mpim::core
