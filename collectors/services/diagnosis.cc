#include "collectors/services/diagnosis.h"

#include <pwd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

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

/// Rounded up: "wait 43 s" must not end a moment before the socket does.
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

const char* ProtocolText(const ServiceConfig& service) {
  return service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp";
}

/// Fixes about who holds the port: someone else, someone hidden, the service itself.
void AddHolderFixes(const ServiceReport& report, std::vector<std::string>& fixes) {
  const ServiceConfig& service = report.service;
  const ServiceHolders& holders = report.holders;
  const std::string port = std::to_string(service.port);
  for (const ProcessInfo& process : holders.foreign_holders) {
    fixes.push_back("stop or reconfigure " + DescribeProcess(process) + ", which holds port " +
                    port + ", or move the service to another port");
  }
  if (holders.invisible_holders) {
    fixes.emplace_back(
        "a process portwatch cannot see holds the port: run as root (or with "
        "CAP_SYS_PTRACE) in the host PID namespace to name it");
  }
  if (holders.instances > service.instances) {
    fixes.push_back("stop the duplicate instance: " + std::to_string(holders.instances) +
                    " instances listen where " + std::to_string(service.instances) +
                    " expected (separately started copies, each with its own SO_REUSEPORT "
                    "socket, share the connections)");
  } else if (holders.owned_listeners > 0 && service.owner.Any()) {
    fixes.push_back("the service is running (" + DescribeProcess(holders.owner_processes.front()) +
                    "): stop it before starting another instance");
  } else if (holders.owned_listeners > 0) {
    // Without an owner every holder "matches": the port is simply taken by whoever has it.
    fixes.push_back("port " + port + " is in use by " +
                    DescribeProcess(holders.owner_processes.front()) +
                    ": stop it, or move the new service to another port");
  }
  if (holders.matching_instances && *holders.matching_instances > holders.instances &&
      holders.instances > 0) {
    fixes.emplace_back(
        "another matching process is running without the port: a duplicate that "
        "failed to bind (ps -ef shows it)");
  }
}

/// When only TIME_WAIT blocks, whether SO_REUSEADDR helps depends on the old listener's flag.
void AddTimeWaitFixes(const ServiceReport& report, std::vector<std::string>& fixes) {
  const auto& plain = report.without_reuse.blockers_by_state;
  if (plain.size() != 1 || plain.count("time_wait") != 1) {
    return;
  }
  const std::string wait = Seconds(report.time_wait_remaining_seconds);
  if (report.with_reuse.verdict == Verdict::kFree) {
    fixes.emplace_back(
        "only TIME_WAIT blocks: set SO_REUSEADDR on the new listener (the old one set it too), "
        "or wait " +
        wait);
  } else {
    fixes.push_back("wait " + wait +
                    " for the TIME_WAIT sockets to expire; SO_REUSEADDR on the restart alone "
                    "does not help here: set it on both incarnations from now on");
  }
}

/// A port in the ephemeral range can be taken by any outgoing connection while it is free.
void AddEphemeralRangeFix(const ServiceReport& report, const KernelFacts& facts,
                          std::vector<std::string>& fixes) {
  if (!report.in_ephemeral_range || report.reserved) {
    return;
  }
  const std::string port = std::to_string(report.service.port);
  const std::string range =
      std::to_string(facts.range.first) + "-" + std::to_string(facts.range.last);
  if (report.scope.InPod()) {
    // The pod's own sysctls: set in its spec, not on the node.
    fixes.push_back("port " + port + " is inside the pod's ip_local_port_range " + range +
                    ": reserve it (the pod's securityContext.sysctls: "
                    "net.ipv4.ip_local_reserved_ports=" +
                    port + ") or move the service out of the range");
    return;
  }
  fixes.push_back("port " + port + " is inside ip_local_port_range " + range +
                  ": reserve it (sysctl -w net.ipv4.ip_local_reserved_ports=" + port +
                  ") or move the service out of the range");
}

void WriteHolders(const ServiceReport& report, std::ostringstream& text) {
  const ServiceHolders& holders = report.holders;
  const bool has_owner = report.service.owner.Any();
  text << "  holders:\n";
  if (holders.owner_processes.empty() && holders.foreign_holders.empty()) {
    text << "    none"
         << (holders.invisible_holders ? " visible (some socket's process is hidden)" : "") << "\n";
  }
  for (const auto* group : {&holders.owner_processes, &holders.foreign_holders}) {
    const char* role = group == &holders.owner_processes ? "  [owner]" : "  [not the owner]";
    for (const ProcessInfo& process : *group) {
      text << "    pid " << process.pid << " user " << UserName(process.uid) << ": "
           << (process.cmdline.empty() ? process.command : ShownCmdline(process.cmdline))
           << (has_owner ? role : "") << "\n";
    }
  }
}

nlohmann::json PredictionJson(const BindPrediction& prediction) {
  nlohmann::json json = {{"result", VerdictName(prediction.verdict)},
                         {"blockers", prediction.blockers_by_state}};
  if (prediction.verdict == Verdict::kUnknown) {
    json["unknown_because"] = prediction.unknown_because;
  }
  return json;
}

nlohmann::json HoldersJson(const ServiceHolders& holders) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto* group : {&holders.owner_processes, &holders.foreign_holders}) {
    for (const ProcessInfo& process : *group) {
      json.push_back({{"pid", process.pid},
                      {"user", UserName(process.uid)},
                      {"command", process.command},
                      {"cmdline", ShownCmdline(process.cmdline)},
                      {"owner", group == &holders.owner_processes}});
    }
  }
  return json;
}

}  // namespace

std::vector<std::string> SuggestFixes(const ServiceReport& report, const KernelFacts& facts) {
  std::vector<std::string> fixes;
  AddHolderFixes(report, fixes);
  AddTimeWaitFixes(report, fixes);
  AddEphemeralRangeFix(report, facts, fixes);
  return fixes;
}

std::string DiagnoseText(const ServiceReport& report, const KernelFacts& facts) {
  const ServiceConfig& service = report.service;
  std::ostringstream text;
  text << "port " << service.port << "/" << ProtocolText(service) << " on " << service.address;
  if (report.scope.InPod()) {
    text << " in pod " << report.scope.PodText();
  }
  if (service.owner.Any()) {
    text << " (service " << service.name << ")";
  }
  text << "\n";
  WriteHolders(report, text);
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
  // Without an owner the "service" is the port itself (diagnose on an unconfigured port).
  const nlohmann::json name = service.owner.Any() ? nlohmann::json(service.name) : nullptr;
  nlohmann::json json = {
      {"port", service.port},
      {"protocol", ProtocolText(service)},
      {"address", service.address},
      {"service", name},
      {"holders", HoldersJson(report.holders)},
      {"hidden_holders", report.holders.invisible_holders},
      {"sockets", report.sockets_by_state},
      {"time_wait_remaining_seconds", report.time_wait_remaining_seconds},
      {"bind",
       {{"without_so_reuseaddr", PredictionJson(report.without_reuse)},
        {"with_so_reuseaddr", PredictionJson(report.with_reuse)}}},
      {"ephemeral_range",
       {{"first", facts.range.first},
        {"last", facts.range.last},
        {"contains_port", report.in_ephemeral_range},
        {"reserved", report.reserved}}},
      {"fixes", SuggestFixes(report, facts)},
      {"status", VerdictName(report.without_reuse.verdict)},
  };
  if (report.scope.InPod()) {
    json["pod"] = {{"namespace", report.scope.namespace_name},
                   {"name", report.scope.pod},
                   {"uid", report.scope.pod_uid}};
  }
  return json.dump(2) + "\n";
}

}  // namespace portwatch
