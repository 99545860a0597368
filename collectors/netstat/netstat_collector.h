#pragma once

#include "collectors/collector.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// TcpExt counters from /proc/net/netstat about TIME_WAIT and listen queue overflows.
class NetstatCollector : public Collector {
 public:
  explicit NetstatCollector(ProcFs procfs) : procfs_(std::move(procfs)) {}

  std::string_view Name() const override { return "netstat"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  ProcFs procfs_;
};

}  // namespace portwatch
