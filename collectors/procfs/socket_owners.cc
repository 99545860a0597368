#include "collectors/procfs/socket_owners.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

namespace portwatch {

namespace {

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

/// A /proc directory entry that is a number: a pid, or an fd below <pid>/fd.
bool ParseNumber(const char* name, int& number) {
  const char* end = name + std::strlen(name);
  auto [next, error] = std::from_chars(name, end, number);
  return error == std::errc() && next == end && number >= 0;
}

/// Returns the inode of "socket:[12345]", or 0 for any other link.
uint32_t SocketInode(const char* link, size_t length) {
  constexpr std::string_view kPrefix = "socket:[";
  std::string_view text(link, length);
  if (text.size() < kPrefix.size() + 2 || text.substr(0, kPrefix.size()) != kPrefix ||
      text.back() != ']') {
    return 0;
  }
  uint32_t inode = 0;
  auto [next, error] =
      std::from_chars(text.data() + kPrefix.size(), text.data() + text.size() - 1, inode);
  return error == std::errc() && next == text.data() + text.size() - 1 ? inode : 0;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0')) {
    text.pop_back();
  }
  return text;
}

/// What portwatch reads of /proc/<pid>/stat ("pid (comm) state ppid ..."), read after the last
/// ')': a command may contain spaces and parentheses.
struct StatFields {
  char state = '?';
  pid_t parent = 0;  ///< 0 when the text is not that
};
StatFields ParseStat(std::string_view stat) {
  StatFields fields;
  const size_t comm_end = stat.rfind(')');
  if (comm_end == std::string_view::npos || comm_end + 4 >= stat.size()) {
    return fields;
  }
  fields.state = stat[comm_end + 2];
  const std::string_view after_state = stat.substr(comm_end + 4);  // ") S "
  pid_t parent = 0;
  const auto [next, error] =
      std::from_chars(after_state.data(), after_state.data() + after_state.size(), parent);
  fields.parent = error == std::errc() && next != after_state.data() && parent >= 0 ? parent : 0;
  return fields;
}

/// Who `pid` is; command and cmdline empty when it is gone, also when it has exited but was not
/// reaped yet (a zombie: no fds, no network namespace, no longer a running instance of anything).
ProcessInfo Identify(const ProcFs& procfs, pid_t pid, const std::string& pid_dir) {
  ProcessInfo info;
  info.pid = pid;
  const StatFields stat = ParseStat(procfs.ReadFile(pid_dir + "/stat").value_or(""));
  if (stat.state == 'Z' || stat.state == 'X') {
    return info;
  }
  info.parent_pid = stat.parent;
  struct stat status {};
  if (::stat((procfs.Root() + "/" + pid_dir).c_str(), &status) == 0) {
    info.uid = status.st_uid;
  }
  info.command = Trimmed(procfs.ReadFile(pid_dir + "/comm").value_or(""));
  std::string cmdline = procfs.ReadFile(pid_dir + "/cmdline").value_or("");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  info.cmdline = Trimmed(std::move(cmdline));
  char exe[4096];
  const std::string exe_path = procfs.Root() + "/" + pid_dir + "/exe";
  ssize_t length = ::readlink(exe_path.c_str(), exe, sizeof(exe));
  if (length > 0) {
    info.exe.assign(exe, static_cast<size_t>(length));
  }
  return info;
}

/// The wanted sockets one process holds: (inode, fd), one fd per inode (the first seen).
using Held = std::vector<std::pair<uint32_t, int>>;

/// The fds `find_fds` found, by process, keeping the first fd of each (inode, process) as the
/// /proc pass does (fds come in ascending order in both). Records of sockets not asked for or
/// of a process it could not number are dropped.
std::map<pid_t, Held> HeldByProcess(const std::vector<SocketFd>& found,
                                    const std::unordered_set<uint32_t>& inodes) {
  std::map<pid_t, Held> by_pid;
  for (const SocketFd& socket : found) {
    if (socket.pid <= 0 || inodes.count(socket.inode) == 0) {
      continue;
    }
    Held& held = by_pid[socket.pid];
    if (std::none_of(held.begin(), held.end(),
                     [&socket](const auto& entry) { return entry.first == socket.inode; })) {
      held.emplace_back(socket.inode, socket.fd);
    }
  }
  return by_pid;
}

/// Reads <proc>/<pid>/fd: the wanted sockets the process holds. False when the directory
/// cannot be opened (gone, or another user's without privilege).
bool ReadHeldFromFdLinks(const ProcFs& procfs, const std::string& pid_dir,
                         const std::unordered_set<uint32_t>& inodes, Held& held) {
  const std::string fd_path = procfs.Root() + "/" + pid_dir + "/fd";
  UniqueDir fds(::opendir(fd_path.c_str()));
  if (!fds) {
    return false;
  }
  while (const dirent* fd_entry = ::readdir(fds.get())) {
    if (fd_entry->d_name[0] == '.') {
      continue;
    }
    char link[64];
    const std::string link_path = fd_path + "/" + fd_entry->d_name;
    ssize_t length = ::readlink(link_path.c_str(), link, sizeof(link));
    if (length <= 0) {
      continue;  // closed since readdir: not an error
    }
    uint32_t inode = SocketInode(link, static_cast<size_t>(length));
    if (inode != 0 && inodes.count(inode) != 0 &&
        std::none_of(held.begin(), held.end(),
                     [inode](const auto& entry) { return entry.first == inode; })) {
      int fd = -1;
      held.emplace_back(inode, ParseNumber(fd_entry->d_name, fd) ? fd : -1);
    }
  }
  return true;
}

/// Records what `pid` holds in `owners` and identifies it; nullopt (counted as skipped) when
/// the process vanished meanwhile.
std::optional<ProcessInfo> AddHolder(const ProcFs& procfs, pid_t pid, const std::string& pid_dir,
                                     const Held& held, SocketOwners& owners) {
  for (const auto& [inode, fd] : held) {
    if (fd >= 0) {
      owners.first_fd.try_emplace(inode, pid, fd);
      owners.fds.emplace_back(inode, pid, fd);
    }
  }
  ProcessInfo info = Identify(procfs, pid, pid_dir);
  if (info.command.empty() && info.cmdline.empty()) {
    owners.processes_skipped++;  // vanished (or exited) between finding its fds and now
    return std::nullopt;
  }
  for (const auto& entry : held) {
    owners.by_inode[entry.first].push_back(info);
  }
  return info;
}

}  // namespace

const char* FdScanMethodName(FdScanMethod method) {
  switch (method) {
    case FdScanMethod::kProcfs:
      return "procfs";
    case FdScanMethod::kBpfTaskFile:
      return "bpf_task_file";
    default:
      return "";
  }
}

SocketOwners FindSocketOwners(const ProcFs& procfs, const std::unordered_set<uint32_t>& inodes,
                              bool identify_all, const std::set<uint64_t>& identify_netns,
                              const FindSocketFds& find_fds) {
  SocketOwners owners;
  if (inodes.empty() && !identify_all) {
    return owners;
  }
  // The holders found without reading any fd link, when the strategy answers.
  std::optional<std::map<pid_t, Held>> found;
  if (!inodes.empty()) {
    owners.method = FdScanMethod::kProcfs;
    if (find_fds) {
      Result<std::vector<SocketFd>> fds = find_fds(inodes);
      if (fds) {
        found = HeldByProcess(*fds, inodes);
        owners.method = FdScanMethod::kBpfTaskFile;
      } else {
        owners.find_fds_error = fds.Error();
      }
    }
  }
  if (found && !identify_all) {
    // Only the holders are read: three small files and a link each.
    for (const auto& [pid, held] : *found) {
      owners.processes_scanned++;
      (void)AddHolder(procfs, pid, std::to_string(pid), held, owners);
    }
    return owners;
  }

  UniqueDir proc(::opendir(procfs.Root().c_str()));
  if (!proc) {
    return owners;
  }
  const uint64_t monitored_netns = identify_all ? procfs.NetworkNamespace("self") : 0;
  while (const dirent* process_entry = ::readdir(proc.get())) {
    pid_t pid = 0;
    if (!ParsePid(process_entry->d_name, pid)) {
      continue;
    }
    owners.processes_scanned++;
    const std::string pid_dir = process_entry->d_name;
    Held held;
    if (found) {
      if (auto holder = found->find(pid); holder != found->end()) {
        held = std::move(holder->second);
        found->erase(holder);
      }
    } else if (!inodes.empty() && !ReadHeldFromFdLinks(procfs, pid_dir, inodes, held)) {
      owners.processes_skipped++;
    }
    if (held.empty() && !identify_all) {
      continue;
    }
    std::optional<ProcessInfo> info = AddHolder(procfs, pid, pid_dir, held, owners);
    if (!info || !identify_all) {
      continue;
    }
    const uint64_t netns = monitored_netns != 0 ? procfs.NetworkNamespace(pid_dir) : 0;
    if (netns != 0 && netns != monitored_netns) {
      owners.processes_in_other_netns++;
      if (identify_netns.count(netns) != 0) {
        owners.processes_by_netns[netns].push_back(std::move(*info));
      }
    } else {
      owners.processes.push_back(std::move(*info));
    }
  }
  if (found) {
    // Holders the directory listing did not show (started after readdir passed their number).
    for (const auto& [pid, held] : *found) {
      owners.processes_scanned++;
      (void)AddHolder(procfs, pid, std::to_string(pid), held, owners);
    }
  }
  return owners;
}

bool SocketOwnerCache::StillHolds(const Holder& holder, uint32_t inode) const {
  const std::string path = procfs_.Root() + "/" + std::to_string(holder.process.pid) + "/fd/" +
                           std::to_string(holder.fd);
  char link[64];
  ssize_t length = ::readlink(path.c_str(), link, sizeof(link));
  return length > 0 && SocketInode(link, static_cast<size_t>(length)) == inode;
}

SocketOwners SocketOwnerCache::Resolve(const std::unordered_set<uint32_t>& inodes,
                                       bool identify_all, std::chrono::steady_clock::time_point now,
                                       const std::set<uint64_t>& identify_netns) {
  bool full_scan = full_scans_ == 0 || now - last_full_scan_ >= kFullScanInterval;
  for (uint32_t inode : inodes) {
    if (full_scan) {
      break;
    }
    auto cached = holders_.find(inode);
    if (cached != holders_.end()) {
      std::erase_if(cached->second,
                    [this, inode](const Holder& holder) { return !StillHolds(holder, inode); });
      if (!cached->second.empty()) {
        continue;
      }
    }
    auto unresolved = unresolved_since_.find(inode);
    full_scan =
        unresolved == unresolved_since_.end() || now - unresolved->second >= kRetryUnresolved;
  }

  SocketOwners owners;
  if (full_scan) {
    owners = FindSocketOwners(procfs_, inodes, identify_all, identify_netns, find_fds_);
    full_scans_++;
    if (owners.method != FdScanMethod::kNone) {
      last_method_ = owners.method;
    }
    last_full_scan_ = now;
    holders_.clear();
    std::map<pid_t, const ProcessInfo*> processes;
    for (const auto& [inode, holders] : owners.by_inode) {
      for (const ProcessInfo& process : holders) {
        processes[process.pid] = &process;
      }
    }
    for (const auto& [inode, pid, fd] : owners.fds) {
      if (auto process = processes.find(pid); process != processes.end()) {
        holders_[inode].push_back(Holder{fd, *process->second});
      }
    }
    std::map<uint32_t, std::chrono::steady_clock::time_point> still_unresolved;
    for (uint32_t inode : inodes) {
      if (holders_.count(inode) == 0) {
        auto before = unresolved_since_.find(inode);
        still_unresolved[inode] = before != unresolved_since_.end() ? before->second : now;
        if (before != unresolved_since_.end() && now - before->second >= kRetryUnresolved) {
          still_unresolved[inode] = now;
        }
      }
    }
    unresolved_since_ = std::move(still_unresolved);
    return owners;
  }

  // Every wanted socket has a verified holder (or is known to have none visible): no full pass.
  if (identify_all) {
    owners = FindSocketOwners(procfs_, {}, true, identify_netns);
  }
  for (uint32_t inode : inodes) {
    auto cached = holders_.find(inode);
    if (cached == holders_.end()) {
      continue;
    }
    for (Holder& holder : cached->second) {
      // The fd survives exec(): read who the process is now (three small files per holder).
      ProcessInfo now_running =
          Identify(procfs_, holder.process.pid, std::to_string(holder.process.pid));
      if (!now_running.command.empty() || !now_running.cmdline.empty()) {
        holder.process = std::move(now_running);
      }
      owners.by_inode[inode].push_back(holder.process);
      owners.first_fd.try_emplace(inode, holder.process.pid, holder.fd);
    }
  }
  return owners;
}

std::string DescribeProcess(const ProcessInfo& process) {
  std::string text = "pid " + std::to_string(process.pid) + " (" + process.command;
  if (!process.cmdline.empty()) {
    text += ": " + ShownCmdline(process.cmdline);
  }
  return text + ")";
}

std::string ShownCmdline(const std::string& cmdline) {
  if (cmdline.size() <= kShownCmdlineBytes) {
    return cmdline;
  }
  auto continues = [&cmdline](size_t at) {
    return (static_cast<unsigned char>(cmdline[at]) & 0xC0U) == 0x80U;  // 10xxxxxx
  };
  // cmdline[cut] is the first byte left out: when it continues a UTF-8 character, leave that
  // whole character out. A character has at most 4 bytes: more continuation bytes than that
  // are not UTF-8, and then the bytes are cut as they are.
  size_t cut = kShownCmdlineBytes;
  while (cut > kShownCmdlineBytes - 3 && continues(cut)) {
    --cut;
  }
  if (continues(cut)) {
    cut = kShownCmdlineBytes;
  }
  return cmdline.substr(0, cut) + "...";
}

}  // namespace portwatch
