#include "collectors/netns/namespace_sockets.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace portwatch {

const char* NamespaceSettingPath(NamespaceSetting setting) {
  switch (setting) {
    case NamespaceSetting::kPortRange:
      return "ipv4/ip_local_port_range";
    case NamespaceSetting::kReservedPorts:
      return "ipv4/ip_local_reserved_ports";
    case NamespaceSetting::kMaxTimeWaitBuckets:
      return "ipv4/tcp_max_tw_buckets";
    case NamespaceSetting::kEhashEntries:
      return "ipv4/tcp_ehash_entries";
  }
  return "";
}

std::map<uint64_t, std::string> NamespaceSockets::Refresh(
    const std::vector<NetworkNamespace>& present) {
  std::set<uint64_t> seen;
  std::map<uint64_t, std::string> failures;
  for (const NetworkNamespace& target : present) {
    seen.insert(target.inode);
    if (entered_.count(target.inode) != 0) {
      continue;
    }
    Result<Entered> entered = Enter(target);
    if (!entered) {
      failures[target.inode] = entered.Error();
      continue;
    }
    entered_.emplace(target.inode, std::move(entered).Value());
  }
  std::erase_if(entered_, [&seen](const auto& entry) { return seen.count(entry.first) == 0; });
  return failures;
}

Result<NamespaceSockets::Entered> NamespaceSockets::Enter(const NetworkNamespace& target) const {
  const std::string path = procfs_.Root() + "/" + std::to_string(target.pid) + "/ns/net";
  netlink::UniqueFd namespace_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!namespace_fd.Valid()) {
    return Failure{ErrnoText("open " + path, errno)};
  }
  struct stat opened {};
  if (::fstat(namespace_fd.Get(), &opened) != 0 || opened.st_ino != target.inode) {
    return Failure{path + ": the process left the namespace (pid reused?)"};
  }
  Entered entered;
  int error = 0;
  const char* step = "";
  std::thread inside([&] {
    RaiseSysAdminOnThisThread();
    if (::setns(namespace_fd.Get(), CLONE_NEWNET) != 0) {
      error = errno;
      step = "setns";
      return;
    }
    entered.sock_diag =
        netlink::UniqueFd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!entered.sock_diag.Valid()) {
      error = errno;
      step = "netlink sock_diag socket";
      return;
    }
    // /proc/sys/net resolves to the namespace of the thread that opens it, for the file's life.
    for (size_t setting = 0; setting < kNamespaceSettings; ++setting) {
      const std::string file = std::string("/proc/sys/net/") +
                               NamespaceSettingPath(static_cast<NamespaceSetting>(setting));
      entered.settings[setting] = netlink::UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    }
  });
  inside.join();
  if (error != 0) {
    return Failure{ErrnoText(std::string(step) + " into network namespace " +
                                 std::to_string(target.inode) + " (pid " +
                                 std::to_string(target.pid) + ")",
                             error)};
  }
  entered.namespace_fd = std::move(namespace_fd);
  return entered;
}

Result<std::unique_ptr<netlink::Transport>> NamespaceSockets::Open(uint64_t inode) const {
  const auto found = entered_.find(inode);
  if (found == entered_.end()) {
    return Failure{"network namespace " + std::to_string(inode) + " not entered"};
  }
  netlink::UniqueFd copy(::fcntl(found->second.sock_diag.Get(), F_DUPFD_CLOEXEC, 0));
  if (!copy.Valid()) {
    return Failure{ErrnoText("dup of a namespace's netlink socket", errno)};
  }
  Result<std::unique_ptr<netlink::KernelTransport>> transport =
      netlink::KernelTransport::Adopt(std::move(copy));
  if (!transport) {
    return Failure{transport.Error()};
  }
  return std::unique_ptr<netlink::Transport>(std::move(transport).Value());
}

Result<netlink::UniqueFd> NamespaceSockets::CreateInside(uint64_t inode,
                                                         const NamespaceWorker::Make& make) const {
  const auto found = entered_.find(inode);
  if (found == entered_.end()) {
    return Failure{"network namespace " + std::to_string(inode) + " not entered"};
  }
  return worker_->Run(found->second.namespace_fd.Get(), make);
}

namespace {

/// The text of a sysctl file kept open (pread from 0: each read is the current value). The
/// reserved ports list is the only long one; 64 KiB holds any list of distinct ranges.
std::optional<std::string> ReadKept(const netlink::UniqueFd& file) {
  if (!file.Valid()) {
    return std::nullopt;
  }
  constexpr size_t kMaxSettingText = size_t{64} * 1024;
  std::string text(256, '\0');
  size_t length = 0;
  while (length < kMaxSettingText) {
    if (length == text.size()) {
      text.resize(std::min(text.size() * 2, kMaxSettingText));
    }
    const ssize_t read =
        ::pread(file.Get(), text.data() + length, text.size() - length, static_cast<off_t>(length));
    if (read < 0) {
      return std::nullopt;
    }
    if (read == 0) {
      break;
    }
    length += static_cast<size_t>(read);
  }
  if (length == 0) {
    return std::nullopt;
  }
  text.resize(length);
  return text;
}

}  // namespace

std::optional<std::string> NamespaceSockets::Setting(uint64_t inode,
                                                     NamespaceSetting setting) const {
  const auto found = entered_.find(inode);
  if (found == entered_.end()) {
    return std::nullopt;
  }
  const auto index = static_cast<size_t>(setting);
  const netlink::UniqueFd& file = found->second.settings[index];
  const std::lock_guard lock(recent_mutex_);
  return found->second.recent[index].Get(now_(), kSettingFreshFor, [this, &file] {
    setting_reads_ += file.Valid() ? 1 : 0;
    return ReadKept(file);
  });
}

uint64_t NamespaceSockets::SettingReads() const {
  const std::lock_guard lock(recent_mutex_);
  return setting_reads_;
}

std::optional<EphemeralRange> NamespaceSockets::EphemeralRangeOf(uint64_t inode) const {
  const std::optional<std::string> text = Setting(inode, NamespaceSetting::kPortRange);
  return text ? ParseEphemeralRange(*text) : std::nullopt;
}

bool NamespaceSockets::HasPrivateHash(uint64_t inode) const {
  // Negative: the namespace uses the initial namespace's hash. Missing (before 6.1): shared.
  const std::optional<std::string> text = Setting(inode, NamespaceSetting::kEhashEntries);
  return text && std::atol(text->c_str()) > 0;
}

}  // namespace portwatch
