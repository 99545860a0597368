#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "collectors/netns/kept_dumps.h"
#include "collectors/netns/pod_namespaces.h"
#include "collectors/socket_source/socket_iterators.h"
#include "exporter/privileges.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace portwatch {

/// What the collectors of one exporter share: made once by BuildCollectors.
struct SharedKernelViews {
  /// The node's pods' network namespaces, entered once for every collector that looks inside.
  std::shared_ptr<PodNamespaces> pods;
  /// The sockets collector's dumps of this scrape, answering the services collector's requests.
  std::shared_ptr<KeptDumps> dumps;
  /// What reads the exporter's own namespace: BPF socket iterators (loaded once) or sock_diag.
  std::shared_ptr<SocketSources> sources;
};

/// One row per collector: everything the exporter needs to offer, configure and build it.
struct CollectorSpec {
  std::string name;
  std::string help;
  bool enabled_by_default = true;
  /// Reads the collector's `collectors.<name>` section into `config` (throws ConfigProblem);
  /// nullptr when the collector has no options.
  void (*parse_section)(const YAML::Node& section, const std::string& path,
                        Config& config) = nullptr;
  /// A collector reading the running kernel. `config` is the one loaded at start (bind_events
  /// attaches at once, before the first scrape).
  std::unique_ptr<Collector> (*make)(const Config& config,
                                     const SharedKernelViews& shared) = nullptr;
  /// The capabilities it needs on a node with `config` (the exporter drops every other one at
  /// start), and what it cannot do without each; nullptr: none.
  std::vector<CapabilityNeed> (*capabilities)(const Config& config) = nullptr;
};

/// Every collector the exporter knows, in scrape order. An explicit list, not static
/// registration, so none is silently dropped by the linker.
const std::vector<CollectorSpec>& KnownCollectors();

/// Instances of the named collectors, in KnownCollectors() order.
std::vector<std::unique_ptr<Collector>> BuildCollectors(const std::set<std::string>& enabled,
                                                        const Config& config);

/// The capability needs of the named collectors with `config`, in KnownCollectors() order.
std::vector<CollectorNeeds> CollectorCapabilityNeeds(const std::set<std::string>& enabled,
                                                     const Config& config);

}  // namespace portwatch
