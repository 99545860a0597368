// OwnerMatches(): a service's owner, built by the config parser from a YAML snippet, against a
// fuzzed process (comm, command line, executable).
//
// Input: six fields separated by 0xff: the owner's process, cmdline (a regular expression) and
// exe as written in the config, then the process's comm, command line and exe. An empty owner
// field is left out of the snippet.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/procfs/socket_owners.h"
#include "collectors/services/service_table.h"
#include "exporter/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

/// `text` as a YAML double-quoted scalar that the parser reads back as the same bytes (bytes
/// outside printable ASCII as \xNN, which reads back as that code point).
std::string Quoted(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      char escape[5];
      std::snprintf(escape, sizeof(escape), "\\x%02x", byte);
      quoted += escape;
    } else {
      quoted += c;
    }
  }
  return quoted + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using portwatch::fuzz::Check;
  std::vector<std::string> fields =
      portwatch::fuzz::Split(std::string_view(reinterpret_cast<const char*>(data), size));
  fields.resize(6);
  std::string yaml = "services:\n  - name: fuzz\n    port: 8080\n    owner:\n";
  const char* const kKeys[] = {"process", "cmdline", "exe"};
  for (size_t i = 0; i < std::size(kKeys); ++i) {
    if (!fields[i].empty()) {
      yaml += std::string("      ") + kKeys[i] + ": " + Quoted(fields[i]) + "\n";
    }
  }
  const portwatch::Result<portwatch::Config> result = portwatch::ParseConfig(yaml, "owner.yaml");
  if (!result.Ok()) {
    return 0;
  }
  Check(result->services.size() == 1, "the snippet holds one service");
  const portwatch::OwnerMatch& owner = result->services.front().owner;

  portwatch::ProcessInfo process;
  process.pid = 4242;
  process.command = fields[3];
  process.cmdline = fields[4];
  process.exe = fields[5];
  const bool matches = portwatch::OwnerMatches(owner, process);
  const bool exact = (!owner.process.empty() && owner.process == process.command) ||
                     (!owner.exe.empty() && owner.exe == process.exe);
  if (exact) {
    Check(matches, "an exact comm or exe match is a match");
  } else if (owner.cmdline_regex == nullptr) {
    Check(!matches, "without a cmdline pattern only an exact comm or exe matches");
  }
  portwatch::DescribeProcess(process);
  return 0;
}
