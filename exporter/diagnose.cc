#include "exporter/diagnose.h"

#include "collectors/pods/pod_identity.h"
#include "collectors/services/services_collector.h"

namespace portwatch {

namespace {

int StatusOf(const ServiceReport& report) {
  switch (report.without_reuse.verdict) {
    case Verdict::kFree:
      return kDiagnoseFree;
    case Verdict::kBlocked:
      return kDiagnoseBlocked;
    default:
      return kDiagnoseUnknown;
  }
}

/// The configured service the diagnosis is about: on the port and protocol, and meant for where
/// the diagnosis runs (the pod, or the node).
const ServiceConfig* ConfiguredService(const Config& config, uint16_t port,
                                       ServiceProtocol protocol, const PodNamespace* pod) {
  for (const ServiceConfig& candidate : config.services) {
    if (candidate.port != port || candidate.protocol != protocol) {
      continue;
    }
    const bool here =
        pod != nullptr ? candidate.pods && candidate.pods->Matches(pod->namespace_name, pod->name)
                       : !candidate.pods;
    if (here) {
      return &candidate;
    }
  }
  return nullptr;
}

}  // namespace

Result<const PodNamespace*> FindPod(const PodDiscovery& discovery, const std::string& wanted) {
  const std::optional<std::string> uid = CanonicalPodUid(wanted);
  const size_t slash = wanted.find('/');
  if (!uid && (slash == std::string::npos || slash == 0 || slash + 1 == wanted.size())) {
    return Failure{"--pod \"" + wanted + "\" is neither NAMESPACE/POD nor a pod uid"};
  }
  for (const PodNamespace& pod : discovery.pods) {
    const bool found =
        uid ? pod.uid == *uid
            : pod.namespace_name == wanted.substr(0, slash) && pod.name == wanted.substr(slash + 1);
    if (found) {
      return &pod;
    }
  }
  return Failure{"no pod " + wanted + " with a network namespace of its own on this node (" +
                 std::to_string(discovery.pods.size()) +
                 " found; a hostNetwork pod shares the node's: diagnose it without --pod)"};
}

int RunDiagnose(const DiagnoseRequest& request, const Config& config, std::ostream& out,
                std::ostream& err) {
  const ServiceProtocol protocol =
      request.protocol == "udp" ? ServiceProtocol::kUdp : ServiceProtocol::kTcp;
  std::shared_ptr<PodNamespaces> pods;
  std::shared_ptr<const PodDiscovery> discovery;
  const PodNamespace* pod = nullptr;
  if (!request.pod.empty()) {
    pods = std::make_shared<PodNamespaces>(ProcFs());
    discovery = pods->Discover(config.sockets.pod_logs_dir);
    Result<const PodNamespace*> found = FindPod(*discovery, request.pod);
    if (!found) {
      err << "portwatch_exporter diagnose: " << found.Error() << "\n";
      return kDiagnoseError;
    }
    pod = *found;
  }
  ServiceConfig service;
  if (const ServiceConfig* configured = ConfiguredService(config, request.port, protocol, pod)) {
    service = *configured;
  } else {
    service.name = "port-" + std::to_string(request.port);
    service.port = request.port;
    service.protocol = protocol;
  }
  if (!request.address.empty() && !SetServiceAddress(request.address, service)) {
    err << "portwatch_exporter diagnose: --address \"" << request.address
        << "\" is not an IPv4 or IPv6 address\n";
    return kDiagnoseError;
  }
  Config one_service = config;
  one_service.services = {service};
  one_service.services_options.listener_info = false;

  // The iterators' records carry every socket's SO_REUSEADDR, TIME_WAIT included: the one-shot
  // answer needs no listener seen alive before.
  ServicesCollector collector(
      ProcFs(), KernelTransportFactory(), pods ? std::make_shared<SharedPods>(pods) : nullptr,
      nullptr, std::make_shared<SocketSources>(KernelTransportFactory(), SocketIterators::Load));
  Result<ServicesCollector::Diagnosis> diagnosis =
      pod != nullptr ? collector.Diagnose(one_service, *pod) : collector.Diagnose(one_service);
  if (!diagnosis || diagnosis->reports.size() != 1) {
    err << "portwatch_exporter diagnose: " << diagnosis.Error() << "\n";
    return kDiagnoseError;
  }
  const ServiceReport& report = diagnosis->reports.front();
  out << (request.output == "json" ? DiagnoseJson(report, diagnosis->facts)
                                   : DiagnoseText(report, diagnosis->facts));
  return StatusOf(report);
}

}  // namespace portwatch
