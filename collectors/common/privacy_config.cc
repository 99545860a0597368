#include "collectors/common/privacy_config.h"

#include "collectors/common/config_yaml.h"

namespace portwatch {

PrivacyConfig ParsePrivacyConfig(const YAML::Node& node, const std::string& path) {
  PrivacyConfig privacy;
  if (node.IsNull()) {
    return privacy;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"command_lines"});
  if (const YAML::Node flag = node["command_lines"]) {
    privacy.command_lines = ParseBool(flag, path + ".command_lines");
  }
  return privacy;
}

}  // namespace portwatch
