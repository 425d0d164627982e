#include "store/registry.h"

#include <string>

#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace mpim::store {
namespace {

struct Engine {
  const char* name;
  core::StatusOr<std::unique_ptr<Store>> (*open)(const StoreOptions&);
  core::StatusOr<int> (*migrate)(const StoreOptions&);
};

// The engines, by name. Add a new one here (see store/store.h).
constexpr Engine kEngines[] = {
    {"sqlite", [](const StoreOptions& o) { return sqlite::Open(o.sqlite); },
     [](const StoreOptions& o) { return sqlite::Migrate(o.sqlite); }},
};

const Engine* Find(std::string_view name) {
  for (const Engine& e : kEngines) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

core::Status UnknownEngine(std::string_view name) {
  return absl::InvalidArgumentError("unknown store engine \"" + std::string(name) + "\"");
}

}  // namespace

core::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view engine,
                                                 const StoreOptions& options) {
  const Engine* e = Find(engine);
  if (e == nullptr) return UnknownEngine(engine);
  return e->open(options);
}

core::StatusOr<int> MigrateStore(std::string_view engine, const StoreOptions& options) {
  const Engine* e = Find(engine);
  if (e == nullptr) return UnknownEngine(engine);
  return e->migrate(options);
}

std::vector<std::string> StoreEngines() {
  std::vector<std::string> names;
  for (const Engine& e : kEngines) names.emplace_back(e.name);
  return names;
}

}  // namespace mpim::store
