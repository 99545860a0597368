#include "collectors/netns/netns_discovery.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace portwatch {

namespace {

struct DirClose {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

bool IsPid(const char* name) {
  if (*name == '\0') {
    return false;
  }
  for (const char* c = name; *c != '\0'; ++c) {
    if (std::isdigit(static_cast<unsigned char>(*c)) == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<ProcessNamespace> ReadProcessNamespaces(const ProcFs& procfs, uint64_t& unreadable) {
  std::vector<ProcessNamespace> processes;
  const std::unique_ptr<DIR, DirClose> proc(::opendir(procfs.Root().c_str()));
  if (!proc) {
    return processes;
  }
  while (const dirent* entry = ::readdir(proc.get())) {
    if (!IsPid(entry->d_name)) {
      continue;
    }
    struct stat namespace_file {};
    const std::string path = procfs.Root() + "/" + entry->d_name + "/ns/net";
    if (::stat(path.c_str(), &namespace_file) != 0) {
      ++unreadable;  // gone since readdir, a kernel thread's missing ns, or no ptrace access
      continue;
    }
    processes.push_back({static_cast<pid_t>(std::stol(entry->d_name)), namespace_file.st_ino});
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
