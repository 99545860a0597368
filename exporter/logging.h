#pragma once

#include <string>

namespace portwatch {

/// logfmt lines on stderr (ts=... level=... msg="..." key=value), UTC, at the given level.
void SetupLogging(const std::string& level);

}  // namespace portwatch
