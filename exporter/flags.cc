#include "exporter/flags.h"

#include <CLI/CLI.hpp>

#include "exporter/registry.h"

namespace portwatch {

FlagsResult ParseFlags(int argc, const char* const* argv, const std::string& version) {
  Options options;
  options.web.version = version;  // the landing page shows it
  CLI::App app{
      "portwatch_exporter: Prometheus exporter for port ownership, TIME_WAIT and "
      "\"Address already in use\" bind conflicts."};
  app.set_version_flag("--version", "portwatch_exporter " + version);
  app.add_option("--web.listen-address", options.web.listen_address,
                 "Address to serve metrics on: HOST:PORT, :PORT (every address) or [IPV6]:PORT")
      ->capture_default_str();
  app.add_option("--web.telemetry-path", options.web.telemetry_path,
                 "Path under which to expose metrics")
      ->capture_default_str()
      ->check([](const std::string& path) {
        return !path.empty() && path[0] == '/' && path.rfind("/-/", 0) != 0
                   ? std::string()
                   : std::string("must start with / and not with /-/");
      });
  app.add_option("--web.max-requests", options.web.max_requests,
                 "Maximum number of parallel scrape requests; beyond it: 503. 0 means no limit "
                 "of its own (--web.max-connections still holds)")
      ->capture_default_str();
  app.add_option("--web.max-connections", options.web.max_connections,
                 "Connections served at once (worker threads); more wait in the kernel's accept "
                 "queue. A client stalled in its request holds one for at most 5 s")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{4096}));
  app.add_option("--web.config.file", options.web.web_config_file,
                 "Web config file (exporter-toolkit format: tls_server_config, basic_auth_users, "
                 "http_server_config.headers), re-read when it or a certificate changes");
  app.add_flag("--web.enable-lifecycle", options.web.enable_lifecycle,
               "Allow POST /-/reload to reload the config (SIGHUP always does)");
  app.add_option("--config.file", options.config_file,
                 "YAML config file; without it the embedded default config is used");
  app.add_flag("--config.check", options.config_check, "Validate the config and exit");
  app.add_option("--log.level", options.log_level, "Log level: debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--debug.record-netlink", options.record_netlink,
                 "Run the sockets collector once, record its netlink exchanges to this file "
                 "(a test fixture), print the metrics and exit");

  DiagnoseRequest diagnose;
  CLI::App* diagnose_command = app.add_subcommand(
      "diagnose",
      "One-shot report on a port: who holds it, its sockets, whether a restart would bind now "
      "with and without SO_REUSEADDR, and the fix. Exit status: 0 free, 1 blocked, 2 unknown, 3 "
      "error.");
  diagnose_command->add_option("PORT", diagnose.port, "The port to diagnose")
      ->required()
      ->check(CLI::Range(1, 65535));
  diagnose_command->add_option("--protocol", diagnose.protocol, "tcp or udp")
      ->capture_default_str()
      ->check(CLI::IsMember({"tcp", "udp"}));
  diagnose_command->add_option("--address", diagnose.address,
                               "Address the restart would bind (default: the configured "
                               "service's, else 0.0.0.0)");
  diagnose_command->add_option(
      "--pod", diagnose.pod,
      "Diagnose inside a pod's network namespace: NAMESPACE/POD (as the kubelet's pod log "
      "directory names it) or the pod's uid");
  diagnose_command->add_option("--output", diagnose.output, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.fallthrough();

  std::map<std::string, bool> enabled;
  for (const CollectorSpec& spec : KnownCollectors()) {
    enabled[spec.name] = spec.enabled_by_default;
    app.add_flag("--collector." + spec.name + ",!--no-collector." + spec.name, enabled[spec.name],
                 "Enable the " + spec.name + " collector: " + spec.help +
                     (spec.enabled_by_default ? " (default: enabled)" : " (default: disabled)"));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return FlagsResult{std::nullopt, app.exit(error)};
  }
  if (diagnose_command->parsed()) {
    options.diagnose = diagnose;
  }
  for (const auto& [name, on] : enabled) {
    if (on) {
      options.enabled_collectors.insert(name);
    }
  }
  return FlagsResult{std::move(options), 0};
}

}  // namespace portwatch
