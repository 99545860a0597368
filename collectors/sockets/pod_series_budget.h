#pragma once

#include <cstddef>
#include <vector>

#include <prometheus/metric_family.h>

namespace portwatch {

/// Series in `families`.
size_t CountSeries(const std::vector<prometheus::MetricFamily>& families);

/// Folds one pod's socket series into per-state totals: portwatch_sockets by (family, protocol,
/// state) under port="other", portwatch_peer_sockets by (protocol, state) under
/// peer_port="other", and its per-destination series into
/// portwatch_ephemeral_destination_untracked_sockets. Totals per state are unchanged; what is
/// lost is which port. Returns the series removed.
size_t FoldPodPorts(std::vector<prometheus::MetricFamily>& families);

/// Keeps the pods' series (each element one pod's families) within `budget` together: while over
/// it, the pod with the most series folds its ports (FoldPodPorts), so the many small pods keep
/// their detail and the few large ones pay. Ties go to the earlier pod in `pods`, which the caller
/// orders stably. Returns the series removed (0 when within budget). A budget below what the
/// pods need even folded is left exceeded: per-state totals are never dropped.
size_t FitPodsToBudget(const std::vector<std::vector<prometheus::MetricFamily>*>& pods,
                       size_t budget);

}  // namespace portwatch
