#pragma once

#include <cstdint>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/procfs/socket_owners.h"
#include "collectors/services/service_report.h"
#include "collectors/services/services_config.h"
#include "collectors/services/socket_intake.h"

namespace portwatch {

/// portwatch_listener_info (one series per listener and holding process, capped by
/// options.max_listener_series) and portwatch_listener_info_dropped (`dropped` listeners the
/// intake left out, plus the series beyond the cap).
void AppendListenerMetrics(const std::vector<ListeningSocket>& listeners, uint64_t dropped,
                           const SocketOwners& owners, const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out);

/// The portwatch_service_* families, one sample set per report.
void AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                          std::vector<prometheus::MetricFamily>& out);

}  // namespace portwatch
