#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace portwatch {

struct CollectorSpec {
  std::string name;
  std::string help;
  bool enabled_by_default = true;
};

/// Every collector the exporter knows, in scrape order. An explicit list, not static
/// registration, so none is silently dropped by the linker.
const std::vector<CollectorSpec>& KnownCollectors();

/// Instances of the named collectors, reading the running kernel. `config` is the one loaded at
/// start (bind_events attaches at once, before the first scrape).
std::vector<std::unique_ptr<Collector>> BuildCollectors(const std::set<std::string>& enabled,
                                                        const Config& config);

}  // namespace portwatch
