#include "exporter/config.h"

#include <arpa/inet.h>

#include <fstream>
#include <limits>
#include <re2/re2.h>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace portwatch {

namespace {

constexpr const char* kEmbeddedSource = "<embedded default>";

/// A config problem anchored at the YAML node it is about.
class ConfigProblem : public std::runtime_error {
 public:
  ConfigProblem(const YAML::Mark& mark, const std::string& what)
      : std::runtime_error(what), mark_(mark) {}
  const YAML::Mark& Mark() const { return mark_; }

 private:
  YAML::Mark mark_;
};

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "\"" + node.Scalar() + "\"";
  }
}

std::string JoinNames(const std::set<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) {
    joined += (joined.empty() ? "" : ", ") + name;
  }
  return joined;
}

void RequireMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) {
    throw ConfigProblem(node.Mark(), path + " must be a map, got " + Describe(node));
  }
}

void RejectUnknownKeys(const YAML::Node& map, const std::string& path,
                       const std::set<std::string>& known) {
  for (const auto& entry : map) {
    const std::string key = entry.first.Scalar();
    if (known.count(key) == 0) {
      throw ConfigProblem(entry.first.Mark(), "unknown key \"" + key + "\" in " + path +
                                                  " (known: " + JoinNames(known) + ")");
    }
  }
}

size_t ParseCount(const YAML::Node& node, const std::string& path, size_t minimum) {
  if (!node.IsScalar()) {
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + Describe(node));
  }
  long long value = 0;
  if (!YAML::convert<long long>::decode(node, value)) {
    throw ConfigProblem(node.Mark(), path + " must be an integer, got " + Describe(node));
  }
  constexpr long long kMaximum = std::numeric_limits<int32_t>::max();
  if (value < static_cast<long long>(minimum)) {
    throw ConfigProblem(node.Mark(), path + " must be at least " + std::to_string(minimum) +
                                         ", got " + std::to_string(value));
  }
  if (value > kMaximum) {
    throw ConfigProblem(node.Mark(), path + " must be between " + std::to_string(minimum) +
                                         " and " + std::to_string(kMaximum) + ", got " +
                                         std::to_string(value));
  }
  return static_cast<size_t>(value);
}

/// A list drawn from `allowed`, each at most once; returns the chosen names.
std::set<std::string> ParseChoiceList(const YAML::Node& node, const std::string& path,
                                      const std::set<std::string>& allowed) {
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), path + " must be a list, got " + Describe(node));
  }
  std::set<std::string> chosen;
  for (const auto& item : node) {
    if (!item.IsScalar() || allowed.count(item.Scalar()) == 0) {
      throw ConfigProblem(item.Mark(), path + " entries must be one of " + JoinNames(allowed) +
                                           ", got " + Describe(item));
    }
    if (!chosen.insert(item.Scalar()).second) {
      throw ConfigProblem(item.Mark(), path + " lists \"" + item.Scalar() + "\" twice");
    }
  }
  return chosen;
}

bool ParseBool(const YAML::Node& node, const std::string& path) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    throw ConfigProblem(node.Mark(), path + " must be true or false, got " + Describe(node));
  }
  return value;
}

SocketsConfig ParseSockets(const YAML::Node& node) {
  const std::string path = "collectors.sockets";
  SocketsConfig sockets;
  if (node.IsNull()) {
    return sockets;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path,
                    {"protocols", "families", "max_port_series", "max_peer_port_series",
                     "top_destinations", "bound_inactive"});
  if (const YAML::Node protocols = node["protocols"]) {
    std::set<std::string> chosen = ParseChoiceList(protocols, path + ".protocols", {"tcp", "udp"});
    sockets.tcp = chosen.count("tcp") != 0;
    sockets.udp = chosen.count("udp") != 0;
  }
  if (const YAML::Node families = node["families"]) {
    std::set<std::string> chosen = ParseChoiceList(families, path + ".families", {"ipv4", "ipv6"});
    sockets.ipv4 = chosen.count("ipv4") != 0;
    sockets.ipv6 = chosen.count("ipv6") != 0;
  }
  if (const YAML::Node cap = node["max_port_series"]) {
    sockets.max_port_series = ParseCount(cap, path + ".max_port_series", 1);
  }
  if (const YAML::Node cap = node["max_peer_port_series"]) {
    sockets.max_peer_port_series = ParseCount(cap, path + ".max_peer_port_series", 1);
  }
  if (const YAML::Node top = node["top_destinations"]) {
    sockets.top_destinations = ParseCount(top, path + ".top_destinations", 0);
  }
  if (const YAML::Node flag = node["bound_inactive"]) {
    sockets.bound_inactive = ParseBool(flag, path + ".bound_inactive");
  }
  return sockets;
}

std::string ParseString(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    throw ConfigProblem(node.Mark(), path + " must be a non-empty string, got " + Describe(node));
  }
  return node.Scalar();
}

ServicesOptions ParseServicesOptions(const YAML::Node& node) {
  const std::string path = "collectors.services";
  ServicesOptions options;
  if (node.IsNull()) {
    return options;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"listener_info", "pid_label", "max_listener_series"});
  if (const YAML::Node flag = node["listener_info"]) {
    options.listener_info = ParseBool(flag, path + ".listener_info");
  }
  if (const YAML::Node flag = node["pid_label"]) {
    options.pid_label = ParseBool(flag, path + ".pid_label");
  }
  if (const YAML::Node cap = node["max_listener_series"]) {
    options.max_listener_series = ParseCount(cap, path + ".max_listener_series", 1);
  }
  return options;
}

BindEventsConfig ParseBindEvents(const YAML::Node& node) {
  const std::string path = "collectors.bind_events";
  BindEventsConfig options;
  if (node.IsNull()) {
    return options;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"attach", "namespaces", "max_port_series"});
  if (const YAML::Node attach = node["attach"]) {
    std::set<std::string> names;
    for (BindEventsAttach kind : kBindEventsAttachPaths) {
      names.insert(BindEventsAttachName(kind));
    }
    const std::set<std::string> allowed = ParseChoiceList(attach, path + ".attach", names);
    if (allowed.empty()) {
      throw ConfigProblem(attach.Mark(),
                          path +
                              ".attach must list at least one of fexit, raw_tracepoint, "
                              "tracepoint (--no-collector.bind_events turns the collector off)");
    }
    // Cheapest first, whatever the order written.
    options.attach.clear();
    for (BindEventsAttach kind : kBindEventsAttachPaths) {
      if (allowed.count(BindEventsAttachName(kind)) != 0) {
        options.attach.push_back(kind);
      }
    }
  }
  if (const YAML::Node namespaces = node["namespaces"]) {
    const std::string text = namespaces.IsScalar() ? namespaces.Scalar() : "";
    if (text != "all" && text != "own") {
      throw ConfigProblem(namespaces.Mark(),
                          path + ".namespaces must be all or own, got " + Describe(namespaces));
    }
    options.all_namespaces = text == "all";
  }
  if (const YAML::Node cap = node["max_port_series"]) {
    options.max_port_series = ParseCount(cap, path + ".max_port_series", 1);
  }
  return options;
}

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
    std::string error;
    owner.cmdline_regex = CompileCmdlineRegex(owner.cmdline, error);
    if (owner.cmdline_regex == nullptr) {
      throw ConfigProblem(cmdline.Mark(), path + ".cmdline is not a valid regular expression (" +
                                              error + "): " + owner.cmdline);
    }
  }
  if (const YAML::Node exe = node["exe"]) {
    owner.exe = ParseString(exe, path + ".exe");
  }
  if (!owner.Any()) {
    throw ConfigProblem(node.Mark(), path + " needs at least one of process, cmdline, exe");
  }
  return owner;
}

ServiceConfig ParseService(const YAML::Node& node, const std::string& path) {
  RequireMap(node, path);
  RejectUnknownKeys(node, path,
                    {"name", "port", "protocol", "address", "ipv6_only", "owner", "instances"});
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
                          path + ".protocol must be tcp or udp, got " + Describe(protocol));
    }
    service.protocol = text == "tcp" ? ServiceProtocol::kTcp : ServiceProtocol::kUdp;
  }
  if (const YAML::Node address = node["address"]) {
    if (!SetServiceAddress(ParseString(address, path + ".address"), service)) {
      throw ConfigProblem(address.Mark(), path + ".address must be an IPv4 or IPv6 address, got " +
                                              Describe(address));
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
  return service;
}

std::vector<ServiceConfig> ParseServices(const YAML::Node& node) {
  std::vector<ServiceConfig> services;
  if (node.IsNull()) {
    return services;
  }
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), "services must be a list, got " + Describe(node));
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

Config ParseRoot(const YAML::Node& root) {
  Config config;
  if (root.IsNull()) {
    return config;
  }
  RequireMap(root, "the config");
  RejectUnknownKeys(root, "the config", {"collectors", "services"});
  if (const YAML::Node collectors = root["collectors"]) {
    if (!collectors.IsNull()) {
      RequireMap(collectors, "collectors");
      RejectUnknownKeys(collectors, "collectors", {"bind_events", "services", "sockets"});
      if (const YAML::Node sockets = collectors["sockets"]) {
        config.sockets = ParseSockets(sockets);
      }
      if (const YAML::Node services = collectors["services"]) {
        config.services_options = ParseServicesOptions(services);
      }
      if (const YAML::Node bind_events = collectors["bind_events"]) {
        config.bind_events = ParseBindEvents(bind_events);
      }
    }
  }
  if (const YAML::Node services = root["services"]) {
    config.services = ParseServices(services);
  }
  return config;
}

std::string Locate(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) {
    return source;
  }
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

std::shared_ptr<const re2::RE2> CompileCmdlineRegex(const std::string& pattern,
                                                    std::string& error) {
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
    error = regex->error();
    if (regex->error_code() == RE2::ErrorBadEscape || regex->error_code() == RE2::ErrorBadPerlOp) {
      error += "; RE2 has no backreferences or lookarounds";
    }
    return nullptr;
  }
  return regex;
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

ConfigResult ParseConfig(const std::string& text, const std::string& source) {
  ConfigResult result;
  try {
    Config config = ParseRoot(YAML::Load(text));
    config.source = source;
    result.config = std::move(config);
  } catch (const ConfigProblem& problem) {
    result.error = Locate(source, problem.Mark()) + ": " + problem.what();
  } catch (const YAML::Exception& yaml_error) {
    result.error = Locate(source, yaml_error.mark) + ": " + yaml_error.msg;
  }
  return result;
}

ConfigResult LoadConfig(const std::string& path) {
  if (path.empty()) {
    return ParseConfig(EmbeddedDefaultConfig(), kEmbeddedSource);
  }
  std::ifstream in(path);
  if (!in) {
    return ConfigResult{std::nullopt, path + ": cannot open config file"};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

const char* BindEventsAttachName(BindEventsAttach attach) {
  switch (attach) {
    case BindEventsAttach::kFexit:
      return "fexit";
    case BindEventsAttach::kTracepoint:
      return "tracepoint";
    case BindEventsAttach::kRawTracepoint:
      return "raw_tracepoint";
  }
  return "unknown";
}

}  // namespace portwatch
