#pragma once

#include <string>

#include "exporter/web.h"

namespace portwatch {

/// Explains why the exporter could not listen on `address`: the errno of a test bind() with
/// SO_REUSEADDR and, for EADDRINUSE, the sockets on the port and the processes holding them.
/// The product's own diagnosis, applied to itself. Without `command_lines` (privacy.command_lines)
/// the holders are named without their command lines.
std::string ExplainListenFailure(const ListenAddress& address, bool command_lines = true);

}  // namespace portwatch
