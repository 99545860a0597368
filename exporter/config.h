#pragma once

#include <string>

#include "collectors/common/result.h"
#include "collectors/config.h"

namespace portwatch {

/// The configuration compiled into the binary, used when --config.file is not given.
const std::string& EmbeddedDefaultConfig();

/// Parses YAML text. `source` names it in errors ("FILE:LINE:COLUMN: problem"). Unknown keys and
/// wrong types are errors. Each `collectors.<name>` section goes to the parser its collector's
/// registry row names.
Result<Config> ParseConfig(const std::string& text, const std::string& source);
/// Reads and parses a file; an empty path means the embedded default.
Result<Config> LoadConfig(const std::string& path);

}  // namespace portwatch
