// ParseNetstat() and the netstat collector over a fuzzed /proc/net/netstat.
//
// Input: the file's text, e.g. tests/fixtures/proc/net/netstat.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/netstat/netstat_collector.h"
#include "collectors/procfs/procfs.h"
#include "exporter/config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using portwatch::fuzz::Check;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto sections = portwatch::ParseNetstat(text);
  for (const auto& [prefix, counters] : sections) {
    Check(text.find(prefix + ":") != std::string::npos, "a section prefix comes from the text");
    for (const auto& [name, value] : counters) {
      Check(!name.empty() && text.find(name) != std::string::npos,
            "a counter name comes from the text");
    }
  }

  static const std::string kRoot = portwatch::fuzz::ScratchDir();
  static const portwatch::Config kConfig;
  portwatch::fuzz::WriteFile(kRoot + "/net/netstat", text);
  portwatch::NetstatCollector collector{portwatch::ProcFs(kRoot)};
  std::vector<prometheus::MetricFamily> families;
  const portwatch::Status status = collector.Collect(kConfig, families);
  Check(status.Ok() == (sections.count("TcpExt") != 0), "the collector needs a TcpExt section");
  portwatch::fuzz::Render(families);
  return 0;
}
