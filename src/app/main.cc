// mpim: one binary for every role. See `mpim --help`.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cluster_up.h"
#include "app/node.h"
#include "app/serve.h"
#include "core/config.h"
#include "discovery/config_centre.h"
#include "service/auth/token_keys.h"
#include "store/registry.h"

namespace {

// Options shared by the commands that load a configuration.
struct CommonOptions {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::string role;
  std::vector<std::string> sets;

  void AddTo(CLI::App* cmd) {
    cmd->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
    cmd->add_option("--listen", listen, "HOST:PORT of the HTTP and WebSocket listener");
    cmd->add_option("--data-dir", data_dir, "Directory for the embedded store");
    cmd->add_option("--role", role, "all | gateway | logic | task (server.role)");
    cmd->add_option("--set", sets, "Set any key: --set section.key=value (repeatable)");
  }

  // Loads the configuration or prints why not.
  std::optional<mpim::core::Config> Load() const {
    mpim::core::ConfigSources sources;
    sources.file = config_file;
    sources.env = mpim::core::ProcessEnvironment();
    for (const std::string& s : sets) {
      size_t eq = s.find('=');
      if (eq == std::string::npos) {
        std::fprintf(stderr, "mpim: --set %s: expected section.key=value\n", s.c_str());
        return std::nullopt;
      }
      sources.overrides.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
    if (!listen.empty()) sources.overrides.emplace_back("server.listen", listen);
    if (!data_dir.empty()) sources.overrides.emplace_back("server.data_dir", data_dir);
    if (!role.empty()) sources.overrides.emplace_back("server.role", role);
    auto config = mpim::core::LoadConfig(sources);
    if (!config.ok()) {
      std::fprintf(stderr, "mpim: configuration error: %s\n",
                   std::string(config.status().message()).c_str());
      return std::nullopt;
    }
    return *config;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "MPIM: a distributed instant-messaging server.\n"
      "`mpim serve` runs every role in one process on an embedded store."};
  app.require_subcommand(1);

  CommonOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "Run the server");
  serve_options.AddTo(serve);

  app.add_subcommand("version", "Print the version");

  CLI::App* config_cmd = app.add_subcommand("config", "Inspect the configuration");
  config_cmd->require_subcommand(1);
  CommonOptions show_options;
  CLI::App* show = config_cmd->add_subcommand(
      "show", "Print the effective configuration (defaults, file, environment, flags)");
  show_options.AddTo(show);
  config_cmd->add_subcommand("example", "Print a commented example configuration file");
  CommonOptions set_options;
  std::string set_key, set_value;
  CLI::App* set_cmd = config_cmd->add_subcommand(
      "set",
      "Change a run-time setting for every node of the cluster (the configuration centre in "
      "etcd; docs/configuration.md, \"Changing settings at run time\")");
  set_options.AddTo(set_cmd);
  set_cmd->add_option("key", set_key, "section.key")->required();
  set_cmd->add_option("value", set_value, "the value, as --set takes it")->required();
  CommonOptions unset_options;
  std::string unset_key;
  CLI::App* unset_cmd = config_cmd->add_subcommand(
      "unset", "Remove a run-time setting from etcd: every node goes back to its own value");
  unset_options.AddTo(unset_cmd);
  unset_cmd->add_option("key", unset_key, "section.key")->required();

  CommonOptions migrate_options;
  CLI::App* migrate = app.add_subcommand(
      "migrate", "Apply the store's schema migrations and exit (serve also applies them)");
  migrate_options.AddTo(migrate);

  CLI::App* auth_cmd = app.add_subcommand("auth", "Manage token signing keys");
  auth_cmd->require_subcommand(1);
  CommonOptions rotate_options;
  CLI::App* rotate = auth_cmd->add_subcommand(
      "rotate-key",
      "Make a new token signing key in the data dir; the old one stays valid for verification "
      "(restart the server to use it)");
  rotate_options.AddTo(rotate);

  CLI::App* cluster_cmd = app.add_subcommand("cluster", "A whole cluster on this machine");
  cluster_cmd->require_subcommand(1);
  mpim::app::ClusterUpOptions up_options;
  std::string up_dir;
  int64_t up_timeout_s = up_options.timeout.count();
  CLI::App* up = cluster_cmd->add_subcommand(
      "up",
      "Start redis-server, mariadbd, etcd and the nodes under DIR, print one JSON line once "
      "every node is ready, run until SIGTERM or SIGINT (docs/cluster.md)");
  up->add_option("--dir", up_dir, "Directory for the engines' data, the nodes' configs and logs")
      ->required();
  up->add_option("--gateways", up_options.gateways, "Gateway nodes")->capture_default_str();
  up->add_option("--logic", up_options.logic, "Logic nodes")->capture_default_str();
  up->add_option("--task", up_options.task, "Task nodes")->capture_default_str();
  up->add_option("--edge", up_options.edge, "Edge nodes (proxies in front of the gateways)")
      ->capture_default_str();
  up->add_option("--set", up_options.settings,
                 "A setting for every node: --set section.key=value (repeatable)");
  up->add_option("--timeout", up_timeout_s, "Seconds the cluster may take to be ready")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (up->parsed()) {
    up_options.dir = up_dir;
    up_options.timeout = std::chrono::seconds(up_timeout_s);
    for (const std::string& s : up_options.settings) {
      if (s.find('=') == std::string::npos) {
        std::fprintf(stderr, "mpim: --set %s: expected section.key=value\n", s.c_str());
        return 2;
      }
    }
    return mpim::app::RunClusterUp(up_options);
  }

  if (migrate->parsed()) {
    auto config = migrate_options.Load();
    if (!config) return 2;
    std::error_code ec;
    std::filesystem::create_directories(config->server.data_dir, ec);
    auto version = mpim::store::MigrateStore(*config);
    if (!version.ok()) {
      std::fprintf(stderr, "mpim: migrate: %s\n", std::string(version.status().message()).c_str());
      return 1;
    }
    std::printf("store schema at version %d\n", *version);
    return 0;
  }
  if (rotate->parsed()) {
    auto config = rotate_options.Load();
    if (!config) return 2;
    if (!config->auth.token_key.empty()) {
      std::fprintf(stderr,
                   "mpim: auth.token_key is set in the configuration; rotate it there "
                   "(move it to auth.previous_token_key)\n");
      return 2;
    }
    std::error_code ec;
    std::filesystem::create_directories(config->server.data_dir, ec);
    auto keys = mpim::service::auth::RotateTokenKeys(config->server.data_dir);
    if (!keys.ok()) {
      std::fprintf(stderr, "mpim: rotate-key: %s\n", std::string(keys.status().message()).c_str());
      return 1;
    }
    std::printf("new signing key %s; previous key %s stays valid until its tokens expire\n",
                keys->current.kid.c_str(), keys->previous ? keys->previous->kid.c_str() : "(none)");
    return 0;
  }

  if (app.got_subcommand("version")) {
    std::printf("mpim %s\n", MPIM_VERSION);
    return 0;
  }
  if (config_cmd->parsed()) {
    if (config_cmd->got_subcommand("example")) {
      std::fputs(mpim::core::ExampleConfig().c_str(), stdout);
      return 0;
    }
    if (set_cmd->parsed() || unset_cmd->parsed()) {
      auto config = (set_cmd->parsed() ? set_options : unset_options).Load();
      if (!config) return 2;
      const std::string& key = set_cmd->parsed() ? set_key : unset_key;
      mpim::core::Status s = set_cmd->parsed()
                                 ? mpim::discovery::ConfigCentre::Set(*config, key, set_value)
                                 : mpim::discovery::ConfigCentre::Unset(*config, key);
      if (!s.ok()) {
        std::fprintf(stderr, "mpim: config %s: %s\n", set_cmd->parsed() ? "set" : "unset",
                     std::string(s.message()).c_str());
        return s.code() == absl::StatusCode::kUnavailable ? 1 : 2;
      }
      return 0;
    }
    auto config = show_options.Load();
    if (!config) return 2;
    // With the configuration centre, what the nodes run with: etcd's
    // settings on top (each marked "# etcd").
    if (config->discovery.engine == "etcd") {
      auto overlaid = mpim::discovery::ConfigCentre::Overlay(*config);
      if (overlaid.ok()) {
        config = *overlaid;
      } else {
        std::fprintf(stderr, "mpim: config show: etcd not read (%s); its settings are not shown\n",
                     std::string(overlaid.status().message()).c_str());
      }
    }
    std::fputs(mpim::core::ShowConfig(*config).c_str(), stdout);
    return 0;
  }
  auto config = serve_options.Load();
  if (!config) return 2;
  return mpim::app::RunServe(*config);
}
