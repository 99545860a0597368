#include "exporter/config.h"

#include <fstream>
#include <set>
#include <sstream>

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

std::string Locate(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) {
    return source;
  }
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& source) {
  try {
    Config config = ParseRoot(YAML::Load(text));
    config.source = source;
    return config;
  } catch (const ConfigProblem& problem) {
    return Failure{Locate(source, problem.Mark()) + ": " + problem.what()};
  } catch (const YAML::Exception& yaml_error) {
    return Failure{Locate(source, yaml_error.mark) + ": " + yaml_error.msg};
  }
}

Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) {
    return ParseConfig(EmbeddedDefaultConfig(), kEmbeddedSource);
  }
  std::ifstream in(path);
  if (!in) {
    return Failure{path + ": cannot open config file"};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace portwatch
