// ParseConfig(): YAML text to Config, the path of --config.file and of every reload.
//
// Input: a config file, e.g. tests/fixtures/config/*.yaml.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "exporter/config.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using portwatch::fuzz::Check;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const portwatch::Result<portwatch::Config> result = portwatch::ParseConfig(text, "fuzz.yaml");
  Check(result.Ok() != !result.Error().empty(), "a config or an error, not both");
  if (!result.Ok()) {
    Check(result.Error().rfind("fuzz.yaml", 0) == 0, "an error names its source");
    return 0;
  }
  std::set<std::string> names;
  for (const portwatch::ServiceConfig& service : result->services) {
    Check(names.insert(service.name).second, "service names are unique");
    Check(service.port != 0, "a service has a port");
    Check(service.instances >= 1, "a service expects at least one instance");
  }
  return 0;
}
