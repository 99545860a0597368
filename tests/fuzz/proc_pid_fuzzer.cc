// The /proc/<pid> readers behind socket ownership: FindSocketOwners() and SocketOwnerCache over
// a fuzzed fake /proc (pid directory names, comm, cmdline, the exe link and the fd links).
//
// Input: fields separated by 0xff, five per process: the directory name (normally a pid), comm,
// cmdline (NULs included), the exe link's target, and the fd directory as lines "NAME=TARGET"
// (one symlink each, e.g. "3=socket:[1001]").
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "collectors/procfs/procfs.h"
#include "collectors/procfs/socket_owners.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using portwatch::fuzz::Check;

/// `name` as one directory entry: no '/' or NUL, not "." or "..", at most 255 bytes. Empty when
/// nothing is left.
std::string EntryName(std::string name) {
  for (char& c : name) {
    if (c == '/' || c == '\0') {
      c = '_';
    }
  }
  if (name == "." || name == "..") {
    return "";
  }
  return name.substr(0, 255);
}

void Link(const std::string& target, const std::string& path) {
  // A target the kernel refuses (empty, too long) is a missing link: the parser handles both.
  static_cast<void>(::symlink(target.c_str(), path.c_str()));
}

/// Builds <root>/<pid>/{comm,cmdline,exe,fd/*} from the fields.
void BuildProc(const std::string& root, const std::vector<std::string>& fields) {
  for (size_t first = 0; first < fields.size(); first += 5) {
    const std::string name = EntryName(fields[first]);
    if (name.empty()) {
      continue;
    }
    const std::string dir = root + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      continue;  // the same name twice
    }
    const auto field = [&fields, first](size_t i) {
      return first + i < fields.size() ? fields[first + i] : std::string();
    };
    portwatch::fuzz::WriteFile(dir + "/comm", field(1));
    portwatch::fuzz::WriteFile(dir + "/cmdline", field(2));
    Link(field(3), dir + "/exe");
    if (first + 4 >= fields.size()) {
      continue;
    }
    ::mkdir((dir + "/fd").c_str(), 0755);
    for (const std::string& line : portwatch::fuzz::Split(field(4), '\n')) {
      const size_t equals = line.find('=');
      const std::string fd = EntryName(line.substr(0, equals));
      if (!fd.empty() && equals != std::string::npos) {
        Link(line.substr(equals + 1), dir + "/fd/" + fd);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string kRoot = portwatch::fuzz::ScratchDir() + "/proc";
  static const std::unordered_set<uint32_t> kWanted = {1001, 1002, 1003, 4242, 4294967295U};
  std::error_code ignored;
  std::filesystem::remove_all(kRoot, ignored);
  std::filesystem::create_directories(kRoot, ignored);
  BuildProc(kRoot,
            portwatch::fuzz::Split(std::string_view(reinterpret_cast<const char*>(data), size)));
  const portwatch::ProcFs procfs(kRoot);

  const portwatch::SocketOwners owners = portwatch::FindSocketOwners(procfs, kWanted);
  for (const auto& [inode, processes] : owners.by_inode) {
    Check(kWanted.count(inode) != 0, "only wanted inodes are resolved");
    Check(!processes.empty(), "a resolved inode has a holder");
    for (const portwatch::ProcessInfo& process : processes) {
      Check(process.pid > 0, "a holder has a pid");
      portwatch::DescribeProcess(process);
    }
  }
  for (const auto& [inode, pid, fd] : owners.fds) {
    Check(kWanted.count(inode) != 0 && pid > 0 && fd >= 0, "a held fd is a wanted socket");
  }

  // The cache's first pass is a full one, every process identified; the second re-checks the
  // holders it found with one readlink each.
  portwatch::SocketOwnerCache cache(procfs);
  const auto now = std::chrono::steady_clock::now();
  const portwatch::SocketOwners everyone = cache.Resolve(kWanted, true, now);
  Check(everyone.processes.size() <= everyone.processes_scanned,
        "no process is listed that was not scanned");
  const portwatch::SocketOwners cached =
      cache.Resolve(kWanted, true, now + std::chrono::seconds(1));
  for (const auto& [inode, processes] : cached.by_inode) {
    Check(kWanted.count(inode) != 0, "only wanted inodes are resolved (cached)");
  }
  return 0;
}
