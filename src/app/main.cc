// mpim: one binary for every role. See `mpim --help`.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "app/serve.h"
#include "core/config.h"

namespace {

// Options shared by the commands that load a configuration.
struct CommonOptions {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::vector<std::string> sets;

  void AddTo(CLI::App* cmd) {
    cmd->add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
    cmd->add_option("--listen", listen, "HOST:PORT of the HTTP and WebSocket listener");
    cmd->add_option("--data-dir", data_dir, "Directory for the embedded store");
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
  CLI::App app{"MPIM: a distributed instant-messaging server.\n"
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

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    std::printf("mpim %s\n", MPIM_VERSION);
    return 0;
  }
  if (config_cmd->parsed()) {
    if (config_cmd->got_subcommand("example")) {
      std::fputs(mpim::core::ExampleConfig().c_str(), stdout);
      return 0;
    }
    auto config = show_options.Load();
    if (!config) return 2;
    std::fputs(mpim::core::ShowConfig(*config).c_str(), stdout);
    return 0;
  }
  auto config = serve_options.Load();
  if (!config) return 2;
  return mpim::app::RunServe(*config);
}
