#include "collectors/netns/netns_discovery.h"

#include <dirent.h>

#include <algorithm>
#include <memory>

namespace portwatch {

namespace {

struct DirClose {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

}  // namespace

std::vector<ProcessNamespace> ReadProcessNamespaces(const ProcFs& procfs, uint64_t& unreadable) {
  std::vector<ProcessNamespace> processes;
  const std::unique_ptr<DIR, DirClose> proc(::opendir(procfs.Root().c_str()));
  if (!proc) {
    return processes;
  }
  while (const dirent* entry = ::readdir(proc.get())) {
    pid_t pid = 0;
    if (!ParsePid(entry->d_name, pid)) {
      continue;
    }
    const uint64_t netns = procfs.NetworkNamespace(entry->d_name);
    if (netns == 0) {
      ++unreadable;  // gone since readdir, or no ptrace access
      continue;
    }
    processes.push_back({pid, netns});
  }
  return processes;
}

std::vector<NetworkNamespace> GroupByNamespace(
    std::vector<ProcessNamespace> processes, uint64_t own,
    const std::function<std::optional<std::string>(pid_t)>& read_cgroup) {
  std::sort(processes.begin(), processes.end(),
            [](const ProcessNamespace& a, const ProcessNamespace& b) {
              return a.netns != b.netns ? a.netns < b.netns : a.pid < b.pid;
            });
  std::vector<NetworkNamespace> namespaces;
  size_t asked = 0;  // processes of the current namespace whose cgroup was read
  for (const ProcessNamespace& process : processes) {
    if (process.netns == own || process.netns == 0) {
      continue;
    }
    if (namespaces.empty() || namespaces.back().inode != process.netns) {
      namespaces.push_back({process.netns, process.pid, std::nullopt});
      asked = 0;
    }
    NetworkNamespace& current = namespaces.back();
    if (current.pod || asked >= kCgroupsTried) {
      continue;
    }
    ++asked;
    if (const std::optional<std::string> cgroup = read_cgroup(process.pid)) {
      current.pod = ParseCgroupContainer(*cgroup);
    }
  }
  return namespaces;
}

}  // namespace portwatch
