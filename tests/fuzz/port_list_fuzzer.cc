// ParsePortList() (net.ipv4.ip_local_reserved_ports: "8080,9000-9010") and
// ParseEphemeralRange() (net.ipv4.ip_local_port_range: "32768\t60999") over fuzzed text.
//
// Input: the text of either sysctl.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collectors/procfs/procfs.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using portwatch::fuzz::Check;
  const std::string text(reinterpret_cast<const char*>(data), size);

  const std::optional<std::vector<uint16_t>> ports = portwatch::ParsePortList(text);
  if (ports) {
    bool blank = true;
    for (char c : text) {
      blank = blank && std::isspace(static_cast<unsigned char>(c)) != 0;
    }
    Check(ports->empty() == blank, "only a blank list has no ports");
    for (size_t i = 1; i < ports->size(); ++i) {
      Check((*ports)[i - 1] < (*ports)[i], "ports come sorted, each once");
    }
  }

  const std::optional<portwatch::EphemeralRange> range = portwatch::ParseEphemeralRange(text);
  if (range) {
    Check(range->first <= range->last, "a range is ordered");
    Check(range->Size() >= 1 && range->Size() <= 65536, "a range holds 1..65536 ports");
    Check(range->Contains(range->first) && range->Contains(range->last),
          "a range contains its ends");
  }
  return 0;
}
