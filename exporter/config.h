#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace portwatch {

/// Options of the sockets collector.
struct SocketsConfig {
  bool tcp = true;
  bool udp = true;
  bool ipv4 = true;
  bool ipv6 = true;
  /// Distinct (protocol, port) values in portwatch_sockets; listening ports are always kept.
  size_t max_port_series = 1000;
  /// Distinct (protocol, peer_port) values in portwatch_peer_sockets.
  size_t max_peer_port_series = 100;
};

struct Config {
  SocketsConfig sockets;
  /// Where the config came from, for logs: a path or "<embedded default>".
  std::string source;
};

struct ConfigResult {
  std::optional<Config> config;
  /// "FILE:LINE:COLUMN: problem" when config is empty.
  std::string error;
};

/// The configuration compiled into the binary, used when --config.file is not given.
const std::string& EmbeddedDefaultConfig();

/// Parses YAML text. `source` names it in errors. Unknown keys and wrong types are errors.
ConfigResult ParseConfig(const std::string& text, const std::string& source);
/// Reads and parses a file; an empty path means the embedded default.
ConfigResult LoadConfig(const std::string& path);

}  // namespace portwatch
