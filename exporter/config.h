#pragma once

#include <optional>
#include <string>

#include "collectors/config.h"

namespace portwatch {

struct ConfigResult {
  std::optional<Config> config;
  /// "FILE:LINE:COLUMN: problem" when config is empty.
  std::string error;
};

/// The configuration compiled into the binary, used when --config.file is not given.
const std::string& EmbeddedDefaultConfig();

/// Parses YAML text. `source` names it in errors. Unknown keys and wrong types are errors. Each
/// `collectors.<name>` section goes to the parser its collector's registry row names.
ConfigResult ParseConfig(const std::string& text, const std::string& source);
/// Reads and parses a file; an empty path means the embedded default.
ConfigResult LoadConfig(const std::string& path);

}  // namespace portwatch
