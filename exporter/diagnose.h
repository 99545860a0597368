#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "collectors/common/result.h"
#include "collectors/netns/pod_namespaces.h"
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
  /// "NAMESPACE/POD" or the pod's uid: diagnose inside that pod's network namespace. Empty: the
  /// node's (the exporter's own).
  std::string pod;
};

/// Exit statuses: whether a restart binding without SO_REUSEADDR would succeed now.
enum DiagnoseStatus : int {
  kDiagnoseFree = 0,
  kDiagnoseBlocked = 1,
  kDiagnoseUnknown = 2,
  kDiagnoseError = 3,
};

/// The pod `wanted` names among `discovery`'s: "NAMESPACE/POD", or the pod's uid (any spelling
/// CanonicalPodUid accepts). Fails saying why when there is none.
Result<const PodNamespace*> FindPod(const PodDiscovery& discovery, const std::string& wanted);

/// Reads the kernel and /proc through the services collector and prints the report. Uses the
/// configured service on that port and protocol (its owner and address) when there is one: with
/// request.pod, one whose pods selector matches the pod; without, one without a selector.
int RunDiagnose(const DiagnoseRequest& request, const Config& config, std::ostream& out,
                std::ostream& err);

}  // namespace portwatch
