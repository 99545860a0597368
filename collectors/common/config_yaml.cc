#include "collectors/common/config_yaml.h"

#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>

namespace portwatch {

namespace {

std::string JoinNames(const std::set<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) {
    joined += (joined.empty() ? "" : ", ") + name;
  }
  return joined;
}

}  // namespace

std::string DescribeNode(const YAML::Node& node) {
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

void RequireMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) {
    throw ConfigProblem(node.Mark(), path + " must be a map, got " + DescribeNode(node));
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
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + DescribeNode(node));
  }
  long long value = 0;
  if (!YAML::convert<long long>::decode(node, value)) {
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + DescribeNode(node));
  }
  constexpr long long kMaximum = std::numeric_limits<int32_t>::max();
  if (value < static_cast<long long>(minimum)) {
    throw ConfigProblem(node.Mark(), path + " must be at least " + std::to_string(minimum) +
                                         ", got " + std::to_string(value));
  }
  if (value > kMaximum) {
    throw ConfigProblem(node.Mark(), path + " must be between " + std::to_string(minimum) +
                                         " and " + std::to_string(kMaximum) + ", got " +
                                         std::to_string(value));
  }
  return static_cast<size_t>(value);
}

/// A list drawn from `allowed`, each at most once; returns the chosen names.
std::set<std::string> ParseChoiceList(const YAML::Node& node, const std::string& path,
                                      const std::set<std::string>& allowed) {
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), path + " must be a list, got " + DescribeNode(node));
  }
  std::set<std::string> chosen;
  for (const auto& item : node) {
    if (!item.IsScalar() || allowed.count(item.Scalar()) == 0) {
      throw ConfigProblem(item.Mark(), path + " entries must be one of " + JoinNames(allowed) +
                                           ", got " + DescribeNode(item));
    }
    if (!chosen.insert(item.Scalar()).second) {
      throw ConfigProblem(item.Mark(), path + " lists \"" + item.Scalar() + "\" twice");
    }
  }
  return chosen;
}

bool ParseBool(const YAML::Node& node, const std::string& path) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    throw ConfigProblem(node.Mark(), path + " must be true or false, got " + DescribeNode(node));
  }
  return value;
}

std::string ParseString(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    throw ConfigProblem(node.Mark(),
                        path + " must be a non-empty string, got " + DescribeNode(node));
  }
  return node.Scalar();
}

std::string Locate(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) {
    return source;
  }
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Result<std::string> ReadConfigFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) {
    return Failure{path + ": cannot open " + what};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace portwatch
