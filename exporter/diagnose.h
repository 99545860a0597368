#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "collectors/services/diagnosis.h"
#include "exporter/config.h"

namespace portwatch {

/// `portwatch_exporter diagnose PORT`: the "Address already in use" investigation, once, for a
/// person at a terminal.
struct DiagnoseRequest {
  uint16_t port = 0;
  std::string protocol = "tcp";
  std::string address;          ///< empty: the configured service's, else 0.0.0.0
  std::string output = "text";  ///< text or json
};

/// Exit statuses: whether a restart binding without SO_REUSEADDR would succeed now.
enum DiagnoseStatus : int {
  kDiagnoseFree = 0,
  kDiagnoseBlocked = 1,
  kDiagnoseUnknown = 2,
  kDiagnoseError = 3,
};

/// Reads the kernel and /proc through the services collector and prints the report. Uses the
/// configured service on that port and protocol (its owner and address) when there is one.
int RunDiagnose(const DiagnoseRequest& request, const Config& config, std::ostream& out,
                std::ostream& err);

}  // namespace portwatch
