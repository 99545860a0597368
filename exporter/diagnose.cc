#include "exporter/diagnose.h"

#include <pwd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collectors/services/services_collector.h"

namespace portwatch {

namespace {

std::string UserName(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  char buffer[1024];
  if (::getpwuid_r(uid, &entry, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string Seconds(double seconds) {
  return std::to_string(static_cast<long>(std::ceil(seconds))) + " s";
}

std::string Counts(const std::map<std::string, uint64_t>& counts) {
  std::string text;
  for (const auto& [state, count] : counts) {
    text += (text.empty() ? "" : ", ") + state + " " + std::to_string(count);
  }
  return text.empty() ? "none" : text;
}

std::string Describe(const BindPrediction& prediction) {
  std::string text = VerdictName(prediction.verdict);
  if (prediction.verdict == Verdict::kBlocked) {
    text += " by " + Counts(prediction.blockers_by_state);
  } else if (prediction.verdict == Verdict::kUnknown) {
    text += ": " + prediction.unknown_because;
  }
  return text;
}

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

std::vector<std::string> SuggestFixes(const ServiceReport& report, const KernelFacts& facts) {
  std::vector<std::string> fixes;
  const ServiceConfig& service = report.service;
  const std::string port = std::to_string(service.port);
  for (const ProcessInfo& process : report.foreign_holders) {
    fixes.push_back("stop or reconfigure " + DescribeProcess(process) + ", which holds port " +
                    port + ", or move the service to another port");
  }
  if (report.invisible_holders) {
    fixes.emplace_back(
        "a process portwatch cannot see holds the port: run as root (or with "
        "CAP_SYS_PTRACE) in the host PID namespace to name it");
  }
  if (report.owned_listeners > service.instances) {
    fixes.push_back("stop the duplicate instance: " + std::to_string(report.owned_listeners) +
                    " listening sockets where " + std::to_string(service.instances) + " expected");
  } else if (report.owned_listeners > 0 && service.owner.Any()) {
    fixes.push_back("the service is running (" + DescribeProcess(report.owner_processes.front()) +
                    "): stop it before starting another instance");
  } else if (report.owned_listeners > 0) {
    fixes.push_back("port " + port + " is in use by " +
                    DescribeProcess(report.owner_processes.front()) +
                    ": stop it, or move the new service to another port");
  }
  if (report.matching_processes && *report.matching_processes > report.owned_listeners &&
      report.owned_listeners > 0) {
    fixes.emplace_back(
        "another matching process is running without the port: a duplicate that "
        "failed to bind (ps -ef shows it)");
  }
  const auto& plain = report.without_reuse.blockers_by_state;
  const bool only_time_wait = plain.size() == 1 && plain.count("time_wait") == 1;
  if (only_time_wait) {
    if (report.with_reuse.verdict == Verdict::kFree) {
      fixes.emplace_back(
          "only TIME_WAIT blocks: set SO_REUSEADDR on the new listener (the old one "
          "set it too), or wait " +
          Seconds(report.time_wait_remaining_seconds));
    } else {
      fixes.push_back("wait " + Seconds(report.time_wait_remaining_seconds) +
                      " for the TIME_WAIT sockets to expire; SO_REUSEADDR on the restart alone "
                      "does not help here: set it on both incarnations from now on");
    }
  }
  if (report.in_ephemeral_range && !report.reserved) {
    fixes.push_back("port " + port + " is inside ip_local_port_range " +
                    std::to_string(facts.range.first) + "-" + std::to_string(facts.range.last) +
                    ": reserve it (sysctl -w net.ipv4.ip_local_reserved_ports=" + port +
                    ") or move the service out of the range");
  }
  return fixes;
}

std::string DiagnoseText(const ServiceReport& report, const KernelFacts& facts) {
  const ServiceConfig& service = report.service;
  std::ostringstream text;
  text << "port " << service.port << "/"
       << (service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp") << " on " << service.address;
  if (service.owner.Any()) {
    text << " (service " << service.name << ")";
  }
  text << "\n";
  text << "  holders:\n";
  if (report.owner_processes.empty() && report.foreign_holders.empty()) {
    text << "    none"
         << (report.invisible_holders ? " visible (some socket's process is hidden)" : "") << "\n";
  }
  for (const auto* group : {&report.owner_processes, &report.foreign_holders}) {
    for (const ProcessInfo& process : *group) {
      text << "    pid " << process.pid << " user " << UserName(process.uid) << ": "
           << (process.cmdline.empty() ? process.command : ShownCmdline(process.cmdline))
           << (service.owner.Any()
                   ? (group == &report.owner_processes ? "  [owner]" : "  [not the owner]")
                   : "")
           << "\n";
    }
  }
  text << "  sockets:  " << Counts(report.sockets_by_state);
  if (report.time_wait_remaining_seconds > 0) {
    text << " (longest TIME_WAIT ends in " << Seconds(report.time_wait_remaining_seconds) << ")";
  }
  text << "\n";
  text << "  bind now without SO_REUSEADDR: " << Describe(report.without_reuse) << "\n";
  text << "  bind now with SO_REUSEADDR:    " << Describe(report.with_reuse) << "\n";
  text << "  ephemeral range " << facts.range.first << "-" << facts.range.last << ": port "
       << (report.in_ephemeral_range ? (report.reserved ? "inside, but reserved" : "inside")
                                     : "outside")
       << "\n";
  const std::vector<std::string> fixes = SuggestFixes(report, facts);
  text << "  fix:" << (fixes.empty() ? " nothing to do: the port is free\n" : "\n");
  for (const std::string& fix : fixes) {
    text << "    - " << fix << "\n";
  }
  return text.str();
}

std::string DiagnoseJson(const ServiceReport& report, const KernelFacts& facts) {
  const ServiceConfig& service = report.service;
  auto prediction = [](const BindPrediction& value) {
    nlohmann::json json = {{"result", VerdictName(value.verdict)},
                           {"blockers", value.blockers_by_state}};
    if (value.verdict == Verdict::kUnknown) {
      json["unknown_because"] = value.unknown_because;
    }
    return json;
  };
  nlohmann::json holders = nlohmann::json::array();
  for (const auto* group : {&report.owner_processes, &report.foreign_holders}) {
    for (const ProcessInfo& process : *group) {
      holders.push_back({{"pid", process.pid},
                         {"user", UserName(process.uid)},
                         {"command", process.command},
                         {"cmdline", ShownCmdline(process.cmdline)},
                         {"owner", group == &report.owner_processes}});
    }
  }
  nlohmann::json json = {
      {"port", service.port},
      {"protocol", service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp"},
      {"address", service.address},
      {"service", service.owner.Any() ? nlohmann::json(service.name) : nlohmann::json(nullptr)},
      {"holders", holders},
      {"hidden_holders", report.invisible_holders},
      {"sockets", report.sockets_by_state},
      {"time_wait_remaining_seconds", report.time_wait_remaining_seconds},
      {"bind",
       {{"without_so_reuseaddr", prediction(report.without_reuse)},
        {"with_so_reuseaddr", prediction(report.with_reuse)}}},
      {"ephemeral_range",
       {{"first", facts.range.first},
        {"last", facts.range.last},
        {"contains_port", report.in_ephemeral_range},
        {"reserved", report.reserved}}},
      {"fixes", SuggestFixes(report, facts)},
      {"status", VerdictName(report.without_reuse.verdict)},
  };
  return json.dump(2) + "\n";
}

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
  KernelFacts facts;
  CollectStatus status;
  std::vector<ServiceReport> reports = collector.Diagnose(one_service, facts, status);
  if (!status.ok || reports.size() != 1) {
    err << "portwatch_exporter diagnose: " << status.error << "\n";
    return kDiagnoseError;
  }
  out << (request.output == "json" ? DiagnoseJson(reports[0], facts)
                                   : DiagnoseText(reports[0], facts));
  return StatusOf(reports[0]);
}

}  // namespace portwatch
