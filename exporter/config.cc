#include "exporter/config.h"

#include <set>

#include <yaml-cpp/yaml.h>

#include "collectors/common/config_yaml.h"
#include "exporter/registry.h"

namespace portwatch {

namespace {

constexpr const char* kEmbeddedSource = "<embedded default>";

void ParseCollectorSections(const YAML::Node& collectors, Config& config) {
  RequireMap(collectors, "collectors");
  std::set<std::string> configurable;
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (spec.parse_section != nullptr) {
      configurable.insert(spec.name);
    }
  }
  RejectUnknownKeys(collectors, "collectors", configurable);
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (spec.parse_section == nullptr) {
      continue;
    }
    if (const YAML::Node section = collectors[spec.name]) {
      spec.parse_section(section, "collectors." + spec.name, config);
    }
  }
}

Config ParseRoot(const YAML::Node& root) {
  Config config;
  if (root.IsNull()) {
    return config;
  }
  RequireMap(root, "the config");
  RejectUnknownKeys(root, "the config", {"collectors", "services", "privacy"});
  if (const YAML::Node collectors = root["collectors"]; collectors && !collectors.IsNull()) {
    ParseCollectorSections(collectors, config);
  }
  if (const YAML::Node services = root["services"]) {
    config.services = ParseServices(services);
  }
  if (const YAML::Node privacy = root["privacy"]) {
    config.privacy = ParsePrivacyConfig(privacy, "privacy");
  }
  return config;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& source) {
  return ParseYamlDocument<Config>(text, source, [&source](const YAML::Node& root) {
    Config config = ParseRoot(root);
    config.source = source;
    return config;
  });
}

Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) {
    return ParseConfig(EmbeddedDefaultConfig(), kEmbeddedSource);
  }
  Result<std::string> text = ReadConfigFile(path, "config file");
  if (!text) {
    return Failure{text.Error()};
  }
  return ParseConfig(*text, path);
}

}  // namespace portwatch
