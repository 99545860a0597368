#pragma once

#include <string>
#include <vector>

#include "collectors/bind_events/bind_events_config.h"
#include "collectors/common/privacy_config.h"
#include "collectors/services/services_config.h"
#include "collectors/sockets/sockets_config.h"

namespace portwatch {

/// The whole configuration: each collector's own section type, as its folder defines it (with
/// its defaults and validation), plus the services every collector may consult.
struct Config {
  SocketsConfig sockets;
  BindEventsConfig bind_events;
  ServicesOptions services_options;
  std::vector<ServiceConfig> services;
  PrivacyConfig privacy;
  /// Where the config came from, for logs: a path or "<embedded default>".
  std::string source;
};

}  // namespace portwatch
