#pragma once

#include <string>
#include <vector>

#include "collectors/services/bind_prediction.h"
#include "collectors/services/service_report.h"

namespace portwatch {

/// The fixes that fit the situation, most direct first: stop a foreign holder or a duplicate,
/// wait out TIME_WAIT, set SO_REUSEADDR on both incarnations, reserve the port or move it.
std::vector<std::string> SuggestFixes(const ServiceReport& report, const KernelFacts& facts);

/// The report as `portwatch_exporter diagnose` prints it for a person at a terminal.
std::string DiagnoseText(const ServiceReport& report, const KernelFacts& facts);
/// The report as `diagnose --output json` prints it, for scripts.
std::string DiagnoseJson(const ServiceReport& report, const KernelFacts& facts);

}  // namespace portwatch
