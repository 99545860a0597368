#include "exporter/config.h"

#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace portwatch {

namespace {

constexpr const char* kEmbeddedSource = "<embedded default>";

/// A config problem anchored at the YAML node it is about.
class ConfigProblem : public std::runtime_error {
 public:
  ConfigProblem(const YAML::Mark& mark, const std::string& what)
      : std::runtime_error(what), mark_(mark) {}
  const YAML::Mark& Mark() const { return mark_; }

 private:
  YAML::Mark mark_;
};

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "\"" + node.Scalar() + "\"";
  }
}

std::string JoinNames(const std::set<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) {
    joined += (joined.empty() ? "" : ", ") + name;
  }
  return joined;
}

void RequireMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) {
    throw ConfigProblem(node.Mark(), path + " must be a map, got " + Describe(node));
  }
}

void RejectUnknownKeys(const YAML::Node& map, const std::string& path,
                       const std::set<std::string>& known) {
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (known.count(key) == 0) {
      throw ConfigProblem(entry.first.Mark(), "unknown key \"" + key + "\" in " + path +
                                                  " (known: " + JoinNames(known) + ")");
    }
  }
}

size_t ParseCount(const YAML::Node& node, const std::string& path, size_t minimum) {
  if (!node.IsScalar()) {
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + Describe(node));
  }
  long long value = 0;
  if (!YAML::convert<long long>::decode(node, value)) {
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + Describe(node));
  }
  if (value < static_cast<long long>(minimum) || value > std::numeric_limits<int32_t>::max()) {
    throw ConfigProblem(node.Mark(), path + " must be at least " + std::to_string(minimum) +
                                         ", got " + std::to_string(value));
  }
  return static_cast<size_t>(value);
}

/// A list drawn from `allowed`, each at most once; returns the chosen names.
std::set<std::string> ParseChoiceList(const YAML::Node& node, const std::string& path,
                                      const std::set<std::string>& allowed) {
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), path + " must be a list, got " + Describe(node));
  }
  std::set<std::string> chosen;
  for (const auto& item : node) {
    if (!item.IsScalar() || allowed.count(item.Scalar()) == 0) {
      throw ConfigProblem(item.Mark(), path + " entries must be one of " + JoinNames(allowed) +
                                           ", got " + Describe(item));
    }
    if (!chosen.insert(item.Scalar()).second) {
      throw ConfigProblem(item.Mark(), path + " lists \"" + item.Scalar() + "\" twice");
    }
  }
  return chosen;
}

SocketsConfig ParseSockets(const YAML::Node& node) {
  const std::string path = "collectors.sockets";
  SocketsConfig sockets;
  if (node.IsNull()) {
    return sockets;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path,
                    {"protocols", "families", "max_port_series", "max_peer_port_series"});
  if (const YAML::Node protocols = node["protocols"]) {
    std::set<std::string> chosen = ParseChoiceList(protocols, path + ".protocols", {"tcp", "udp"});
    sockets.tcp = chosen.count("tcp") != 0;
    sockets.udp = chosen.count("udp") != 0;
  }
  if (const YAML::Node families = node["families"]) {
    std::set<std::string> chosen = ParseChoiceList(families, path + ".families", {"ipv4", "ipv6"});
    sockets.ipv4 = chosen.count("ipv4") != 0;
    sockets.ipv6 = chosen.count("ipv6") != 0;
  }
  if (const YAML::Node cap = node["max_port_series"]) {
    sockets.max_port_series = ParseCount(cap, path + ".max_port_series", 1);
  }
  if (const YAML::Node cap = node["max_peer_port_series"]) {
    sockets.max_peer_port_series = ParseCount(cap, path + ".max_peer_port_series", 1);
  }
  return sockets;
}

Config ParseRoot(const YAML::Node& root) {
  Config config;
  if (root.IsNull()) {
    return config;
  }
  RequireMap(root, "the config");
  RejectUnknownKeys(root, "the config", {"collectors"});
  if (const YAML::Node collectors = root["collectors"]) {
    if (!collectors.IsNull()) {
      RequireMap(collectors, "collectors");
      RejectUnknownKeys(collectors, "collectors", {"sockets"});
      if (const YAML::Node sockets = collectors["sockets"]) {
        config.sockets = ParseSockets(sockets);
      }
    }
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

ConfigResult ParseConfig(const std::string& text, const std::string& source) {
  ConfigResult result;
  try {
    Config config = ParseRoot(YAML::Load(text));
    config.source = source;
    result.config = std::move(config);
  } catch (const ConfigProblem& problem) {
    result.error = Locate(source, problem.Mark()) + ": " + problem.what();
  } catch (const YAML::Exception& yaml_error) {
    result.error = Locate(source, yaml_error.mark) + ": " + yaml_error.msg;
  }
  return result;
}

ConfigResult LoadConfig(const std::string& path) {
  if (path.empty()) {
    return ParseConfig(EmbeddedDefaultConfig(), kEmbeddedSource);
  }
  std::ifstream in(path);
  if (!in) {
    return ConfigResult{std::nullopt, path + ": cannot open config file"};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace portwatch
