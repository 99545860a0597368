// The kernel-limits collector and the sysctl readers over a fuzzed /proc/sys tree:
// ProcFs::ReadInteger(), ReadEphemeralRange(), ReadReservedPorts() and KernelAtLeast().
//
// Input: up to four fields separated by 0xff, the contents of tcp_max_tw_buckets,
// ip_local_port_range, ip_local_reserved_ports and kernel/osrelease; a missing field is a
// missing file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "collectors/kernel_limits/kernel_limits_collector.h"
#include "collectors/procfs/procfs.h"
#include "exporter/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using portwatch::fuzz::Check;

/// The value of the sample of family `name`, if the collector emitted it.
std::optional<double> Sample(const std::vector<prometheus::MetricFamily>& families,
                             const std::string& name) {
  for (const prometheus::MetricFamily& family : families) {
    if (family.name == name && !family.metric.empty()) {
      return family.metric.front().gauge.value;
    }
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kRoot = portwatch::fuzz::ScratchDir();
  static const portwatch::Config kConfig;
  const char* const kFiles[] = {"sys/net/ipv4/tcp_max_tw_buckets",
                                "sys/net/ipv4/ip_local_port_range",
                                "sys/net/ipv4/ip_local_reserved_ports", "sys/kernel/osrelease"};
  const std::vector<std::string> fields =
      portwatch::fuzz::Split(std::string_view(reinterpret_cast<const char*>(data), size));
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    const std::string path = kRoot + "/" + kFiles[i];
    if (i < fields.size()) {
      portwatch::fuzz::WriteFile(path, fields[i]);
    } else {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  }

  const portwatch::ProcFs procfs(kRoot);
  const std::optional<int64_t> buckets = procfs.ReadInteger(kFiles[0]);
  const std::optional<portwatch::EphemeralRange> range = portwatch::ReadEphemeralRange(procfs);
  const std::optional<std::vector<uint16_t>> reserved = portwatch::ReadReservedPorts(procfs);

  portwatch::KernelLimitsCollector collector(procfs);
  std::vector<prometheus::MetricFamily> families;
  const portwatch::Status status = collector.Collect(kConfig, families);
  Check(status.Ok() == (buckets && range && reserved),
        "the collector fails on what it cannot read");
  Check(status.Ok() || !status.Error().empty(), "a failing collector says why");
  if (buckets) {
    Check(Sample(families, "portwatch_tcp_max_tw_buckets") == static_cast<double>(*buckets),
          "portwatch_tcp_max_tw_buckets is the sysctl");
  }
  if (const std::optional<double> available =
          Sample(families, "portwatch_ephemeral_ports_available")) {
    Check(range.has_value() && *available >= 0 && *available <= range->Size(),
          "available ephemeral ports are at most the range's size");
  }
  portwatch::fuzz::Render(families);

  const std::string release = fields.size() > 3 ? fields[3] : "";
  if (portwatch::KernelAtLeast(release, 6, 10)) {
    Check(portwatch::KernelAtLeast(release, 6, 9) && portwatch::KernelAtLeast(release, 5, 99),
          "KernelAtLeast is monotonic");
  }
  return 0;
}
