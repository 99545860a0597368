#pragma once

#include <sys/stat.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portwatch {

/// Where the kubelet links each container's log, as <pod>_<namespace>_<container>-<id>.log: the
/// one node-local place that names a container from the id its cgroup shows.
constexpr char kDefaultContainerLogsDir[] = "/var/log/containers";

/// One /var/log/containers entry name, taken apart.
struct ContainerLogName {
  std::string pod;
  std::string namespace_name;
  std::string container;
  std::string container_id;  ///< 64 lower-case hex digits

  bool operator==(const ContainerLogName&) const = default;
};

/// "<pod>_<namespace>_<container>-<64 hex>.log", or nullopt for any other name. Pod, namespace
/// and container names cannot hold '_' (DNS names), which makes the split unambiguous.
std::optional<ContainerLogName> ParseContainerLogName(std::string_view entry);

/// Container names by container id.
class ContainerNames {
 public:
  ContainerNames() = default;
  /// From entry names as a directory listing gives them; names that do not parse are skipped.
  explicit ContainerNames(const std::vector<std::string>& entry_names);

  /// The name of the container with this 64-hex id, or the id's first 12 digits (as `crictl ps`
  /// shows it) when no entry names it.
  std::string NameOf(const std::string& container_id) const;
  size_t Size() const { return by_id_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> by_id_;
};

/// ContainerNames of a directory, listed again only when the directory changed (its mtime moves
/// whenever an entry is added or removed): one stat per scrape on a quiet node. A directory that
/// cannot be read names nothing (ids are shown shortened). Not thread-safe: one collector owns it.
class ContainerNamesCache {
 public:
  const ContainerNames& Read(const std::string& dir);

 private:
  std::string dir_;
  std::optional<timespec> read_mtime_;
  ContainerNames names_;
};

}  // namespace portwatch
