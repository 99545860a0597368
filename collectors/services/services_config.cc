#include "collectors/services/services_config.h"

#include <arpa/inet.h>

#include <re2/re2.h>
#include <set>

#include "collectors/common/config_yaml.h"

namespace portwatch {

namespace {

OwnerMatch ParseOwner(const YAML::Node& node, const std::string& path) {
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"process", "cmdline", "exe"});
  OwnerMatch owner;
  if (const YAML::Node process = node["process"]) {
    owner.process = ParseString(process, path + ".process");
    // The kernel truncates comm to 15 bytes: a longer name could never match.
    if (owner.process.size() > 15) {
      throw ConfigProblem(process.Mark(), path + ".process \"" + owner.process +
                                              "\" is longer than the 15 characters the kernel "
                                              "keeps in comm; use cmdline or exe");
    }
  }
  if (const YAML::Node cmdline = node["cmdline"]) {
    owner.cmdline = ParseString(cmdline, path + ".cmdline");
    Result<std::shared_ptr<const re2::RE2>> regex = CompileCmdlineRegex(owner.cmdline);
    if (!regex) {
      throw ConfigProblem(cmdline.Mark(), path + ".cmdline is not a valid regular expression (" +
                                              regex.Error() + "): " + owner.cmdline);
    }
    owner.cmdline_regex = std::move(regex).Value();
  }
  if (const YAML::Node exe = node["exe"]) {
    owner.exe = ParseString(exe, path + ".exe");
  }
  if (!owner.Any()) {
    throw ConfigProblem(node.Mark(), path + " needs at least one of process, cmdline, exe");
  }
  return owner;
}

PodSelector ParsePodSelector(const YAML::Node& node, const std::string& path) {
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"namespace", "name"});
  PodSelector selector;
  if (const YAML::Node pod_namespace = node["namespace"]) {
    selector.namespace_name = ParseString(pod_namespace, path + ".namespace");
  }
  if (const YAML::Node name = node["name"]) {
    selector.name = ParseString(name, path + ".name");
    Result<std::shared_ptr<const re2::RE2>> regex = CompilePodNameRegex(selector.name);
    if (!regex) {
      throw ConfigProblem(name.Mark(), path + ".name is not a valid regular expression (" +
                                           regex.Error() + "): " + selector.name);
    }
    selector.name_regex = std::move(regex).Value();
  }
  if (selector.namespace_name.empty() && selector.name_regex == nullptr) {
    throw ConfigProblem(node.Mark(), path + " needs at least one of namespace, name");
  }
  return selector;
}

ServiceConfig ParseService(const YAML::Node& node, const std::string& path) {
  RequireMap(node, path);
  RejectUnknownKeys(
      node, path,
      {"name", "port", "protocol", "address", "ipv6_only", "owner", "instances", "pods"});
  ServiceConfig service;
  const YAML::Node name = node["name"];
  if (!name) {
    throw ConfigProblem(node.Mark(), path + " needs a name");
  }
  service.name = ParseString(name, path + ".name");
  const YAML::Node port = node["port"];
  if (!port) {
    throw ConfigProblem(node.Mark(), path + " (" + service.name + ") needs a port");
  }
  const size_t port_number = ParseCount(port, path + ".port", 1);
  if (port_number > 65535) {
    throw ConfigProblem(port.Mark(),
                        path + ".port must be 1-65535, got " + std::to_string(port_number));
  }
  service.port = static_cast<uint16_t>(port_number);
  if (const YAML::Node protocol = node["protocol"]) {
    const std::string text = protocol.IsScalar() ? protocol.Scalar() : "";
    if (text != "tcp" && text != "udp") {
      throw ConfigProblem(protocol.Mark(),
                          path + ".protocol must be tcp or udp, got " + DescribeNode(protocol));
    }
    service.protocol = text == "tcp" ? ServiceProtocol::kTcp : ServiceProtocol::kUdp;
  }
  if (const YAML::Node address = node["address"]) {
    if (!SetServiceAddress(ParseString(address, path + ".address"), service)) {
      throw ConfigProblem(address.Mark(), path + ".address must be an IPv4 or IPv6 address, got " +
                                              DescribeNode(address));
    }
  }
  if (const YAML::Node v6only = node["ipv6_only"]) {
    service.ipv6_only = ParseBool(v6only, path + ".ipv6_only");
    if (!service.ipv6) {
      throw ConfigProblem(v6only.Mark(), path + ".ipv6_only applies to IPv6 addresses only");
    }
  }
  if (const YAML::Node owner = node["owner"]) {
    service.owner = ParseOwner(owner, path + ".owner");
  }
  if (const YAML::Node instances = node["instances"]) {
    service.instances = static_cast<uint32_t>(ParseCount(instances, path + ".instances", 1));
  }
  if (const YAML::Node pods = node["pods"]) {
    service.pods = ParsePodSelector(pods, path + ".pods");
  }
  return service;
}

}  // namespace

Result<std::shared_ptr<const re2::RE2>> CompileCmdlineRegex(const std::string& pattern) {
  RE2::Options options;
  // A command line is arbitrary bytes: argv need not be UTF-8. In UTF-8 mode `.` and negated
  // classes never match an invalid byte, so "openhab.*bar" would fail across one. Latin-1 makes
  // every byte one character (byte semantics), and a UTF-8 literal in the pattern still matches
  // the same bytes in the command line.
  options.set_encoding(RE2::Options::EncodingLatin1);
  // An argument may hold a newline; Prometheus relabelling compiles "(?s:...)" too.
  options.set_dot_nl(true);
  // The error goes into the config error, not to stderr.
  options.set_log_errors(false);
  // For the program and the DFA cache of each pattern (RE2's default is 8 MiB). A pattern too
  // large for it is a config error; a match whose DFA outgrows it falls back to RE2's NFA,
  // slower but still linear in the command line's length.
  constexpr int64_t kMaxMem = int64_t{4} << 20;
  options.set_max_mem(kMaxMem);
  auto regex = std::make_shared<const re2::RE2>(pattern, options);
  if (!regex->ok()) {
    std::string error = regex->error();
    if (regex->error_code() == RE2::ErrorBadEscape || regex->error_code() == RE2::ErrorBadPerlOp) {
      error += "; RE2 has no backreferences or lookarounds";
    }
    return Failure{error};
  }
  return std::shared_ptr<const re2::RE2>(std::move(regex));
}

Result<std::shared_ptr<const re2::RE2>> CompilePodNameRegex(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  // Pod names are at most 253 characters: a small program and DFA cache suffice.
  constexpr int64_t kMaxMem = int64_t{1} << 20;
  options.set_max_mem(kMaxMem);
  auto regex = std::make_shared<const re2::RE2>(pattern, options);
  if (!regex->ok()) {
    return Failure{regex->error()};
  }
  return std::shared_ptr<const re2::RE2>(std::move(regex));
}

bool PodSelector::Matches(const std::string& pod_namespace, const std::string& pod_name) const {
  return (namespace_name.empty() || pod_namespace == namespace_name) &&
         (name_regex == nullptr || RE2::FullMatch(pod_name, *name_regex));
}

bool SetServiceAddress(const std::string& text, ServiceConfig& service) {
  std::string bare = text;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  std::array<uint8_t, 16> bytes{};
  if (::inet_pton(AF_INET6, bare.c_str(), bytes.data()) == 1) {
    service.ipv6 = true;
  } else if (::inet_pton(AF_INET, bare.c_str(), bytes.data()) == 1) {
    service.ipv6 = false;
  } else {
    return false;
  }
  service.address = text;
  service.address_bytes = bytes;
  return true;
}

ServicesOptions ParseServicesOptions(const YAML::Node& node, const std::string& path) {
  ServicesOptions options;
  if (node.IsNull()) {
    return options;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path,
                    {"listener_info", "pid_label", "max_listener_series", "container_logs_dir"});
  if (const YAML::Node flag = node["listener_info"]) {
    options.listener_info = ParseBool(flag, path + ".listener_info");
  }
  if (const YAML::Node flag = node["pid_label"]) {
    options.pid_label = ParseBool(flag, path + ".pid_label");
  }
  if (const YAML::Node cap = node["max_listener_series"]) {
    options.max_listener_series = ParseCount(cap, path + ".max_listener_series", 1);
  }
  if (const YAML::Node dir = node["container_logs_dir"]) {
    options.container_logs_dir = ParseString(dir, path + ".container_logs_dir");
  }
  return options;
}

std::vector<ServiceConfig> ParseServices(const YAML::Node& node) {
  std::vector<ServiceConfig> services;
  if (node.IsNull()) {
    return services;
  }
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), "services must be a list, got " + DescribeNode(node));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    ServiceConfig service = ParseService(entry, "services[" + std::to_string(i) + "]");
    if (!names.insert(service.name).second) {
      throw ConfigProblem(entry["name"].Mark(), "services[" + std::to_string(i) + "].name \"" +
                                                    service.name +
                                                    "\" is used by an earlier service");
    }
    services.push_back(std::move(service));
  }
  return services;
}

}  // namespace portwatch
