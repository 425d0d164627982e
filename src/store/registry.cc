#include "store/registry.h"

#include <string>

#include "store/mysql/mysql_store.h"
#include "store/mysql/schema.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace mpim::store {
namespace {

struct Engine {
  const char* name;
  core::StatusOr<std::unique_ptr<Store>> (*open)(const core::Config&);
  core::StatusOr<int> (*migrate)(const core::Config&);
};

// The engines, by name. Add a new one here (see store/store.h).
constexpr Engine kEngines[] = {
    {"sqlite", [](const core::Config& c) { return sqlite::Open(sqlite::OptionsFrom(c)); },
     [](const core::Config& c) { return sqlite::Migrate(sqlite::OptionsFrom(c)); }},
    {"mysql",
     [](const core::Config& c) -> core::StatusOr<std::unique_ptr<Store>> {
       auto options = mysql::OptionsFrom(c);
       if (!options.ok()) return options.status();
       return mysql::Open(*options);
     },
     [](const core::Config& c) -> core::StatusOr<int> {
       auto options = mysql::OptionsFrom(c);
       if (!options.ok()) return options.status();
       return mysql::Migrate(*options);
     }},
};

const Engine* Find(std::string_view name) {
  for (const Engine& e : kEngines) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

core::Status UnknownEngine(std::string_view name) {
  return absl::InvalidArgumentError("store.engine: unknown engine \"" + std::string(name) + "\"");
}

}  // namespace

core::StatusOr<std::unique_ptr<Store>> OpenStore(const core::Config& config) {
  const Engine* e = Find(config.store.engine);
  if (e == nullptr) return UnknownEngine(config.store.engine);
  return e->open(config);
}

core::StatusOr<int> MigrateStore(const core::Config& config) {
  const Engine* e = Find(config.store.engine);
  if (e == nullptr) return UnknownEngine(config.store.engine);
  return e->migrate(config);
}

std::vector<std::string> StoreEngines() {
  std::vector<std::string> names;
  for (const Engine& e : kEngines) names.emplace_back(e.name);
  return names;
}

}  // namespace mpim::store
