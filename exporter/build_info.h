#pragma once

#include "exporter/collector_runner.h"

namespace portwatch {

/// Version, git revision and compiler this binary was built from.
BuildInfo CurrentBuild();

}  // namespace portwatch
