#pragma once

#include <cstddef>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

#include "collectors/common/result.h"

namespace portwatch {

/// A config problem anchored at the YAML node it is about; the loader turns it into
/// "FILE:LINE:COLUMN: problem". Every section parser reports through it.
class ConfigProblem : public std::runtime_error {
 public:
  ConfigProblem(const YAML::Mark& mark, const std::string& what)
      : std::runtime_error(what), mark_(mark) {}
  const YAML::Mark& Mark() const { return mark_; }

 private:
  YAML::Mark mark_;
};

// The checks every section parser shares. `path` names the key in messages
// ("collectors.sockets.max_port_series"); each throws ConfigProblem at the offending node.

/// How a node reads in an error: "a map", "a list", "null" or the quoted scalar.
std::string DescribeNode(const YAML::Node& node);
void RequireMap(const YAML::Node& node, const std::string& path);
void RejectUnknownKeys(const YAML::Node& map, const std::string& path,
                       const std::set<std::string>& known);
/// An integer from `minimum` to INT32_MAX.
size_t ParseCount(const YAML::Node& node, const std::string& path, size_t minimum);
/// A list drawn from `allowed`, each at most once; returns the chosen names.
std::set<std::string> ParseChoiceList(const YAML::Node& node, const std::string& path,
                                      const std::set<std::string>& allowed);
bool ParseBool(const YAML::Node& node, const std::string& path);
std::string ParseString(const YAML::Node& node, const std::string& path);

/// "SOURCE:LINE:COLUMN" of a YAML position, or SOURCE alone when the position is unknown.
std::string Locate(const std::string& source, const YAML::Mark& mark);

/// Loads `text` and hands its root to `parse`: a ConfigProblem or a YAML syntax error becomes
/// the failure "SOURCE:LINE:COLUMN: problem". Every config file the exporter reads goes this way.
template <typename T>
Result<T> ParseYamlDocument(const std::string& text, const std::string& source,
                            const std::function<T(const YAML::Node& root)>& parse) {
  try {
    return parse(YAML::Load(text));
  } catch (const ConfigProblem& problem) {
    return Failure{Locate(source, problem.Mark()) + ": " + problem.what()};
  } catch (const YAML::Exception& error) {
    return Failure{Locate(source, error.mark) + ": " + error.msg};
  }
}

/// The whole text of a config file, or "PATH: cannot open WHAT".
Result<std::string> ReadConfigFile(const std::string& path, const std::string& what);

}  // namespace portwatch
