#include "collectors/sockets/sockets_config.h"

#include <filesystem>
#include <map>
#include <set>
#include <system_error>

#include "collectors/common/config_yaml.h"

namespace portwatch {

bool CountsPodsOnThisNode(const SocketsConfig& config) {
  std::error_code error;
  return config.pods && std::filesystem::is_directory(config.pod_logs_dir, error);
}

SocketsConfig ParseSocketsConfig(const YAML::Node& node, const std::string& path) {
  SocketsConfig sockets;
  if (node.IsNull()) {
    return sockets;
  }
  RequireMap(node, path);
  RejectUnknownKeys(
      node, path,
      {"protocols", "families", "max_port_series", "max_peer_port_series", "top_destinations",
       "bound_inactive", "pods", "pod_logs_dir", "pod_max_port_series", "pod_max_peer_port_series",
       "pod_top_destinations", "max_pod_series", "pod_counts_max_age_seconds", "backend"});
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
  if (const YAML::Node cap = node["pod_max_port_series"]) {
    sockets.pod_max_port_series = ParseCount(cap, path + ".pod_max_port_series", 1);
  }
  if (const YAML::Node cap = node["pod_max_peer_port_series"]) {
    sockets.pod_max_peer_port_series = ParseCount(cap, path + ".pod_max_peer_port_series", 1);
  }
  if (const YAML::Node top = node["pod_top_destinations"]) {
    sockets.pod_top_destinations = ParseCount(top, path + ".pod_top_destinations", 0);
  }
  if (const YAML::Node cap = node["max_pod_series"]) {
    sockets.max_pod_series = ParseCount(cap, path + ".max_pod_series", 0);
  }
  if (const YAML::Node age = node["pod_counts_max_age_seconds"]) {
    sockets.pod_counts_max_age_seconds = ParseCount(age, path + ".pod_counts_max_age_seconds", 1);
  }
  if (const YAML::Node flag = node["bound_inactive"]) {
    sockets.bound_inactive = ParseBool(flag, path + ".bound_inactive");
  }
  if (const YAML::Node flag = node["pods"]) {
    sockets.pods = ParseBool(flag, path + ".pods");
  }
  if (const YAML::Node backend = node["backend"]) {
    const std::string name = ParseString(backend, path + ".backend");
    static const std::map<std::string, SocketBackendSetting> kBackends = {
        {"auto", SocketBackendSetting::kAuto},
        {"netlink", SocketBackendSetting::kNetlink},
        {"bpf", SocketBackendSetting::kBpf}};
    const auto found = kBackends.find(name);
    if (found == kBackends.end()) {
      throw ConfigProblem(
          backend.Mark(),
          path + ".backend must be one of auto, netlink, bpf, got " + DescribeNode(backend));
    }
    sockets.backend = found->second;
  }
  if (const YAML::Node dir = node["pod_logs_dir"]) {
    sockets.pod_logs_dir = ParseString(dir, path + ".pod_logs_dir");
  }
  return sockets;
}

}  // namespace portwatch
