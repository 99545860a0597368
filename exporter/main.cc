// portwatch_exporter: flags, wiring and the signal loop. Everything else lives in tested modules.
#include <linux/capability.h>
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "collectors/common/logfmt.h"
#include "collectors/netlink/transport.h"
#include "collectors/sockets/sockets_collector.h"
#include "exporter/bind_diagnosis.h"
#include "exporter/build_info.h"
#include "exporter/collector_runner.h"
#include "exporter/config.h"
#include "exporter/config_store.h"
#include "exporter/diagnose.h"
#include "exporter/flags.h"
#include "exporter/logging.h"
#include "exporter/privileges.h"
#include "exporter/registry.h"
#include "exporter/web.h"
#include "exporter/web_config_store.h"

namespace {

using portwatch::Config;

/// --debug.record-netlink: one sockets collection through a recording transport.
int RecordNetlink(const Config& config, const std::string& path) {
  portwatch::Result<std::unique_ptr<portwatch::netlink::KernelTransport>> kernel =
      portwatch::netlink::KernelTransport::Open();
  if (!kernel) {
    std::cerr << "portwatch_exporter: " << kernel.Error() << "\n";
    return 1;
  }
  auto recorder = std::make_unique<portwatch::netlink::RecordingTransport>(**kernel, path);
  if (!recorder->Ok()) {
    std::cerr << "portwatch_exporter: cannot write " << path << "\n";
    return 1;
  }
  portwatch::SocketsCollector collector(
      portwatch::ProcFs(),
      [&recorder]() -> portwatch::Result<std::unique_ptr<portwatch::netlink::Transport>> {
        if (!recorder) {
          return portwatch::Failure{"the recording transport serves one collection"};
        }
        return std::unique_ptr<portwatch::netlink::Transport>(std::move(recorder));
      });
  std::vector<prometheus::MetricFamily> families;
  const portwatch::Status status = collector.Collect(config, families);
  std::cout << prometheus::TextSerializer().Serialize(families);
  if (!status) {
    std::cerr << "portwatch_exporter: " << status.Error() << "\n";
    return 1;
  }
  return 0;
}

/// --config.check: whatever a start would refuse, found without starting: the config (already
/// loaded by the caller), the web config and the listen address. One line per file checked.
int CheckConfigs(const Config& config, const portwatch::Options& options) {
  std::cout << config.source << ": config OK\n";
  if (!options.web.web_config_file.empty()) {
    const portwatch::Result<std::unique_ptr<portwatch::WebConfigStore>> web_config =
        portwatch::WebConfigStore::Open(options.web.web_config_file);
    if (!web_config) {
      std::cerr << "portwatch_exporter: " << web_config.Error() << "\n";
      return 1;
    }
    std::cout << options.web.web_config_file << ": web config OK\n";
  }
  if (const auto address = portwatch::ParseListenAddress(options.web.listen_address); !address) {
    std::cerr << "portwatch_exporter: " << address.Error() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: glibc gives every thread that allocates while others do an arena of
  // its own (up to 8 per core), and each of the web server's workers does while serving a scrape.
  // Under steady concurrent scrapes RSS then climbed for minutes (21 to 48 MiB); with two arenas
  // it stays flat at about 30 MiB.
  mallopt(M_ARENA_MAX, 2);
  const portwatch::BuildInfo build = portwatch::CurrentBuild();
  portwatch::FlagsResult flags = portwatch::ParseFlags(argc, argv, build.version);
  if (!flags.options) {
    return flags.exit_code;
  }
  const portwatch::Options& options = *flags.options;
  portwatch::SetupLogging(options.log_level);

  portwatch::Result<portwatch::Config> loaded = portwatch::LoadConfig(options.config_file);
  if (!loaded) {
    spdlog::error(
        "{}", portwatch::LogLine("invalid config, not starting").Add("err", loaded.Error()).Text());
    std::cerr << "portwatch_exporter: " << loaded.Error() << "\n";
    return 1;
  }
  if (options.config_check) {
    return CheckConfigs(*loaded, options);
  }
  if (options.diagnose) {
    return portwatch::RunDiagnose(*options.diagnose, *loaded, std::cout, std::cerr);
  }
  if (!options.record_netlink.empty()) {
    return RecordNetlink(*loaded, options.record_netlink);
  }
  const portwatch::Result<portwatch::ListenAddress> parsed_address =
      portwatch::ParseListenAddress(options.web.listen_address);
  if (!parsed_address) {
    std::cerr << "portwatch_exporter: " << parsed_address.Error() << "\n";
    return 2;
  }
  const portwatch::ListenAddress& address = *parsed_address;

  // Least privilege, before any thread exists: capabilities are per thread, and every thread
  // created later inherits what is left.
  std::vector<portwatch::CollectorNeeds> needs =
      portwatch::CollectorCapabilityNeeds(options.enabled_collectors, *loaded);
  if (address.port != 0 &&
      address.port < portwatch::ProcFs()
                         .ReadInteger("sys/net/ipv4/ip_unprivileged_port_start")
                         .value_or(1024)) {
    needs.push_back(
        {"exporter",
         {{CAP_NET_BIND_SERVICE, "cannot listen on port " + std::to_string(address.port) +
                                     " (below net.ipv4.ip_unprivileged_port_start)"}}});
  }
  std::vector<prometheus::MetricFamily> privilege_metrics = portwatch::EnforceLeastPrivilege(needs);

  // Block the signals before any thread exists so every thread inherits the mask and only
  // sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  portwatch::ConfigStore config_store(std::move(loaded).Value(), options.config_file);
  auto runner = std::make_shared<portwatch::CollectorRunner>(
      portwatch::BuildCollectors(options.enabled_collectors, *config_store.Current()), config_store,
      build, std::move(privilege_metrics));
  auto reload = [&config_store]() {
    portwatch::Status reloaded = config_store.Reload();
    if (reloaded) {
      spdlog::info("{}", portwatch::LogLine("config reloaded")
                             .Add("source", config_store.Current()->source)
                             .Text());
    } else {
      spdlog::error("{}", portwatch::LogLine("config reload failed, keeping the previous config")
                              .Add("err", reloaded.Error())
                              .Text());
    }
    return reloaded;
  };

  // A bad web config stops the start, as a bad config does: serving without the TLS or the
  // authentication the operator asked for would be worse than not serving.
  portwatch::Result<std::unique_ptr<portwatch::WebConfigStore>> web_config =
      portwatch::WebConfigStore::Open(options.web.web_config_file);
  if (!web_config) {
    spdlog::error("{}", portwatch::LogLine("invalid web config, not starting")
                            .Add("err", web_config.Error())
                            .Text());
    std::cerr << "portwatch_exporter: " << web_config.Error() << "\n";
    return 1;
  }

  std::unique_ptr<portwatch::WebServer> web;
  try {
    web = std::make_unique<portwatch::WebServer>(options.web, address, runner, reload,
                                                 std::move(web_config).Value());
  } catch (const std::exception&) {
    const std::string why =
        portwatch::ExplainListenFailure(address, config_store.Current()->privacy.command_lines);
    spdlog::error("{}", portwatch::LogLine("cannot listen")
                            .Add("address", options.web.listen_address)
                            .Add("err", why)
                            .Text());
    std::cerr << "portwatch_exporter: cannot listen on " << options.web.listen_address << ": "
              << why << "\n";
    return 1;
  }
  const std::vector<int> ports = web->ListeningPorts();
  spdlog::info("{}", portwatch::LogLine("listening")
                         .Add("address", options.web.listen_address)
                         .Add("port", ports.empty() ? 0 : ports.front())
                         .Add("telemetry_path", options.web.telemetry_path)
                         .Add("version", build.version)
                         .Text());

  while (true) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) {
      continue;
    }
    if (signal_number == SIGHUP) {
      static_cast<void>(reload());  // it logs the outcome itself
      continue;
    }
    spdlog::info("{}", portwatch::LogLine("shutting down").Add("signal", signal_number).Text());
    break;
  }
  web.reset();
  return 0;
}
