#include "exporter/diagnose.h"

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

}  // namespace

int RunDiagnose(const DiagnoseRequest& request, const Config& config, std::ostream& out,
                std::ostream& err) {
  const ServiceProtocol protocol =
      request.protocol == "udp" ? ServiceProtocol::kUdp : ServiceProtocol::kTcp;
  ServiceConfig service;
  bool configured = false;
  for (const ServiceConfig& candidate : config.services) {
    if (candidate.port == request.port && candidate.protocol == protocol) {
      service = candidate;
      configured = true;
      break;
    }
  }
  if (!configured) {
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

  ServicesCollector collector(ProcFs(), KernelTransportFactory());
  Result<ServicesCollector::Diagnosis> diagnosis = collector.Diagnose(one_service);
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
