#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "collectors/services/bind_prediction.h"
#include "collectors/services/service_holders.h"
#include "collectors/services/services_config.h"

namespace portwatch {

/// Everything portwatch knows about one service's port right now: what the metrics show and
/// what the diagnose command prints.
struct ServiceReport {
  ServiceConfig service;
  ServiceHolders holders;
  std::map<std::string, uint64_t> sockets_by_state;  ///< every socket on the port, by state name
  std::optional<bool> listener_reuse;                ///< SO_REUSEADDR of the current listener
  std::optional<bool> remembered_reuse;  ///< of the last listener seen (see ListenerMemory)
  BindPrediction without_reuse;
  BindPrediction with_reuse;
  double time_wait_remaining_seconds = 0;
  bool in_ephemeral_range = false;
  bool reserved = false;  ///< listed in ip_local_reserved_ports
};

}  // namespace portwatch
