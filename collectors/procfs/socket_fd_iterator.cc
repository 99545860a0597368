#include "collectors/procfs/socket_fd_iterator.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/bpf/owner_iter_abi.h"
#include "collectors/common/logfmt.h"
#include "collectors/netlink/transport.h"

#if PORTWATCH_HAVE_BPF
#include "collectors/bpf/owner_iter_skel.h"
#endif

namespace portwatch {

namespace {

constexpr size_t kRecordSize = PORTWATCH_OWNER_ITER_RECORD_SIZE;
static_assert(sizeof(portwatch_owner_record) == kRecordSize);
static_assert(sizeof(portwatch_owner_trailer) == kRecordSize);

/// The kernel fills at most 32 KiB per read() (bpf_seq_read's buffer); twice that, a whole
/// number of records, so that a read never splits one in the usual case.
constexpr size_t kReadBufferSize = kRecordSize * 4096;

/// EAGAIN comes after a million fds visited in one read() with nothing written (a walk that finds
/// few sockets among many fds); more than this many in a row means something else is wrong.
constexpr int kMaxRetriesInARow = 64;

Failure WalkFailure(const std::string& what) { return Failure{"socket owner walk: " + what}; }

}  // namespace

Result<std::vector<SocketFd>> ReadOwnerWalk(const ReadOwnerWalkBytes& read) {
  std::vector<SocketFd> found;
  std::vector<std::byte> buffer(kReadBufferSize);
  size_t held = 0;  // bytes of an incomplete record kept from the previous read
  bool trailer_seen = false;
  int retries = 0;
  for (;;) {
    const ssize_t got = read(std::span(buffer).subspan(held));
    if (got == -EAGAIN || got == -EINTR) {
      if (++retries > kMaxRetriesInARow) {
        return WalkFailure(ErrnoText("read", static_cast<int>(-got)) + " " +
                           std::to_string(retries) + " times in a row");
      }
      continue;
    }
    if (got < 0) {
      return WalkFailure(ErrnoText("read", static_cast<int>(-got)));
    }
    retries = 0;
    if (got == 0) {
      break;
    }
    held += static_cast<size_t>(got);
    size_t offset = 0;
    for (; held - offset >= kRecordSize; offset += kRecordSize) {
      const std::byte* bytes = buffer.data() + offset;
      if (trailer_seen) {
        return WalkFailure("data after the end of the walk");
      }
      const auto kind = static_cast<uint8_t>(bytes[0]);
      if (kind == PORTWATCH_OWNER_ITER_TRAILER) {
        trailer_seen = true;
        continue;
      }
      if (kind != PORTWATCH_OWNER_ITER_RECORD) {
        return WalkFailure("unknown record kind " + std::to_string(kind));
      }
      portwatch_owner_record raw{};
      std::memcpy(&raw, bytes, kRecordSize);
      found.push_back(SocketFd{raw.inode, static_cast<pid_t>(raw.tgid), static_cast<int>(raw.fd)});
    }
    held -= offset;
    std::memmove(buffer.data(), buffer.data() + offset, held);
  }
  if (held != 0) {
    return WalkFailure("the walk ended inside a record");
  }
  if (!trailer_seen) {
    return WalkFailure("the walk ended without its trailer");
  }
  return found;
}

Result<std::unique_ptr<SocketFdIterator>> SocketFdIterator::Load() {
#if PORTWATCH_HAVE_BPF
  int error = 0;
  const char* stage = "";
  portwatch_owner_iter* program = portwatch_owner_iter_open(&error, &stage);
  // Loading parses the kernel's BTF (about 10 MiB on 6.18), freed by libbpf right after: give
  // it back to the system rather than keep it in the heap.
  ::malloc_trim(0);
  if (program == nullptr) {
    return Failure{ErrnoText(std::string("socket owner iterator: ") + stage, error) +
                   (error == EPERM ? " (needs CAP_BPF and CAP_PERFMON)" : "")};
  }
  // The constructor is private: make_unique cannot call it.
  return std::unique_ptr<SocketFdIterator>(new SocketFdIterator(program));
#else
  return Failure{"socket owner iterator: built without eBPF support (cmake -DPORTWATCH_BPF=OFF)"};
#endif
}

SocketFdIterator::~SocketFdIterator() {
#if PORTWATCH_HAVE_BPF
  portwatch_owner_iter_destroy(program_);
#endif
}

Status SocketFdIterator::SetWanted(const std::unordered_set<uint32_t>& inodes) {
#if PORTWATCH_HAVE_BPF
  if (!in_map_known_) {
    if (int result = portwatch_owner_iter_clear(program_); result != 0) {
      return Failure{ErrnoText("socket owner iterator: clear the wanted inodes", -result)};
    }
    in_map_.clear();
    in_map_known_ = true;
  }
  // Scrapes mostly want the sockets of the one before: change only the difference.
  std::vector<uint32_t> add;
  std::vector<uint32_t> remove;
  for (uint32_t inode : inodes) {
    if (in_map_.count(inode) == 0) {
      add.push_back(inode);
    }
  }
  for (uint32_t inode : in_map_) {
    if (inodes.count(inode) == 0) {
      remove.push_back(inode);
    }
  }
  if (add.empty() && remove.empty()) {
    return {};
  }
  const int result =
      portwatch_owner_iter_update(program_, add.data(), static_cast<__u32>(add.size()),
                                  remove.data(), static_cast<__u32>(remove.size()));
  if (result != 0) {
    in_map_known_ = false;
    return Failure{
        ErrnoText("socket owner iterator: set " + std::to_string(inodes.size()) + " wanted inodes",
                  -result) +
        (result == -E2BIG ? " (more than " + std::to_string(PORTWATCH_OWNER_ITER_MAX_WANTED) + ")"
                          : "")};
  }
  in_map_ = inodes;
  return {};
#else
  (void)inodes;
  return Failure{"socket owner iterator: built without eBPF support"};
#endif
}

Result<std::vector<SocketFd>> SocketFdIterator::Find(const std::unordered_set<uint32_t>& inodes) {
  if (inodes.empty()) {
    return std::vector<SocketFd>{};
  }
#if PORTWATCH_HAVE_BPF
  std::lock_guard lock(mutex_);
  if (Status set = SetWanted(inodes); !set) {
    return Failure{set.Error()};
  }
  const int created = portwatch_owner_iter_create(program_);
  if (created < 0) {
    return Failure{ErrnoText("socket owner iterator: create", -created)};
  }
  const netlink::UniqueFd walk(created);
  return ReadOwnerWalk([fd = walk.Get()](std::span<std::byte> buffer) -> ssize_t {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    return got >= 0 ? got : -errno;
  });
#else
  return Failure{"socket owner iterator: built without eBPF support"};
#endif
}

FindSocketFds KernelSocketFdFinder(const ProcFs& procfs) {
  if (procfs.Root() != "/proc") {
    return nullptr;
  }
  struct State {
    std::mutex mutex;
    std::unique_ptr<SocketFdIterator> iterator;
    std::string load_error;
    uint64_t walk_failures = 0;
  };
  auto state = std::make_shared<State>();
  // Loaded now, when the collector is built at start, not by the first scrape: the load parses
  // the kernel's BTF (several MiB, freed at once), which would otherwise stack on that scrape's
  // working set (measured: VmHWM 34.3 MiB against 25 MiB at 1M sockets).
  if (Result<std::unique_ptr<SocketFdIterator>> loaded = SocketFdIterator::Load()) {
    state->iterator = std::move(loaded).Value();
    spdlog::debug("{}", LogLine("socket owner iterator loaded").Text());
  } else {
    state->load_error = loaded.Error();
    spdlog::info("{}", LogLine("socket owner iterator unavailable, finding the processes "
                               "holding sockets by reading every /proc/<pid>/fd")
                           .Add("err", state->load_error)
                           .Text());
  }
  return [state](const std::unordered_set<uint32_t>& inodes) -> Result<std::vector<SocketFd>> {
    SocketFdIterator* iterator = nullptr;
    {
      std::lock_guard lock(state->mutex);
      if (!state->iterator) {
        return Failure{state->load_error};
      }
      iterator = state->iterator.get();
    }
    Result<std::vector<SocketFd>> found = iterator->Find(inodes);
    if (!found) {
      std::lock_guard lock(state->mutex);
      if (state->walk_failures++ == 0) {
        spdlog::warn("{}", LogLine("socket owner walk failed, reading every /proc/<pid>/fd instead")
                               .Add("err", found.Error())
                               .Text());
      }
    }
    return found;
  };
}

}  // namespace portwatch
