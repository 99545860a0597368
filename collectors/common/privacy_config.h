#pragma once

#include <string>

namespace YAML {
class Node;
}  // namespace YAML

namespace portwatch {

/// What the exporter may reveal about the node's processes (the config's `privacy` section).
/// Metric labels name a process by its name (comm) only, whatever this says: command lines are
/// unbounded and may carry secrets passed as arguments.
struct PrivacyConfig {
  /// Whether command lines appear where the daemon names a process in its log lines (the holder
  /// of a port in a bind failure or in the exporter's own "cannot listen"). Off: "pid 42 (java)".
  bool command_lines = true;

  bool operator==(const PrivacyConfig&) const = default;
};

/// Reads the `privacy` section (throws ConfigProblem).
PrivacyConfig ParsePrivacyConfig(const YAML::Node& node, const std::string& path);

}  // namespace portwatch
