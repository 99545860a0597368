#pragma once

#include "collectors/collector.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// Kernel limits that decide when TIME_WAIT and ephemeral ports run out.
class KernelLimitsCollector : public Collector {
 public:
  explicit KernelLimitsCollector(ProcFs procfs) : procfs_(std::move(procfs)) {}

  std::string_view Name() const override { return "kernel_limits"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  ProcFs procfs_;
};

}  // namespace portwatch
