#pragma once

#include <optional>
#include <set>
#include <string>

#include "exporter/diagnose.h"
#include "exporter/web.h"

namespace portwatch {

struct Options {
  WebOptions web;
  std::string config_file;  ///< empty: the embedded default
  bool config_check = false;
  std::string log_level = "info";
  std::set<std::string> enabled_collectors;
  std::string record_netlink;  ///< --debug.record-netlink: record one dump to this file and exit
  std::optional<DiagnoseRequest> diagnose;  ///< the `diagnose PORT` subcommand
};

struct FlagsResult {
  std::optional<Options> options;  ///< empty: exit with exit_code (help, version or an error)
  int exit_code = 0;
};

/// Parses exporter-convention flags (--web.listen-address, --collector.<name>, ...).
/// Prints help, version or the error itself.
FlagsResult ParseFlags(int argc, const char* const* argv, const std::string& version);

}  // namespace portwatch
