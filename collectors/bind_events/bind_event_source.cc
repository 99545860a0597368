#include "collectors/bind_events/bind_event_source.h"

#include <malloc.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#if PORTWATCH_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collectors/bpf/bind_events_skel.h"
#include "collectors/common/libbpf_log.h"
#include "collectors/common/logfmt.h"
#include "collectors/common/result.h"
#endif

namespace portwatch {

namespace {

/// The source when BPF cannot be used: counts nothing and says why.
class UnavailableSource : public BindEventSource {
 public:
  UnavailableSource(std::string cause, std::string reason)
      : cause_(std::move(cause)), reason_(std::move(reason)) {}
  bool Available() const override { return false; }
  std::string UnavailableReason() const override { return reason_; }
  std::string UnavailableCause() const override { return cause_; }
  void SetNetnsFilter(uint32_t /*netns*/) override {}
  std::vector<std::pair<BindFailureKey, uint64_t>> ReadCounts() override { return {}; }
  uint64_t UncountedFailures() const override { return 0; }
  uint64_t LostEvents() const override { return 0; }

 private:
  std::string cause_;
  std::string reason_;
};

#if PORTWATCH_HAVE_BPF

class KernelSource : public BindEventSource {
 public:
  KernelSource(std::vector<BindEventsAttach> allowed, BindEventHandler on_event)
      : allowed_(std::move(allowed)), on_event_(std::move(on_event)) {}

  ~KernelSource() override {
    stop_ = true;
    if (poller_.joinable()) {
      poller_.join();
    }
    if (ring_ != nullptr) {
      ring_buffer__free(ring_);
    }
    portwatch_bpf_destroy(bpf_);  // detaches the program
  }
  KernelSource(const KernelSource&) = delete;
  KernelSource& operator=(const KernelSource&) = delete;

  /// Attaches, or says why BPF cannot be used (and sets cause_).
  Status Start() {
    RouteLibbpfLogs();
    struct stat btf {};
    if (::stat("/sys/kernel/btf/vmlinux", &btf) != 0) {
      cause_ = "no_btf";
      return Failure{
          "the kernel has no BTF (/sys/kernel/btf/vmlinux missing: CONFIG_DEBUG_INFO_BTF off "
          "or kernel older than 5.5)"};
    }
    unsigned allowed = 0;
    for (BindEventsAttach attach : allowed_) {
      allowed |= PORTWATCH_BPF_ATTACH_BIT(PathOf(attach));
    }
    Status tracefs;
    if ((allowed & PORTWATCH_BPF_ATTACH_BIT(PORTWATCH_BPF_ATTACH_TRACEPOINT)) != 0) {
      tracefs = EnsureTracefs();
    }
    portwatch_bpf_start_result result{};
    bpf_ = portwatch_bpf_start(SYS_bind, SYS_listen, SYS_connect, allowed, &result);
    std::string failed;  // why the paths tried before (or instead of) the one in use failed
    for (int path = PORTWATCH_BPF_ATTACH_FEXIT; path < PORTWATCH_BPF_ATTACH_COUNT; ++path) {
      if (result.error[path] == 0) {
        continue;
      }
      std::string why = Explain(std::string(PathName(path)) + ": cannot " + result.stage[path],
                                result.error[path]);
      if (path == PORTWATCH_BPF_ATTACH_TRACEPOINT && !tracefs) {
        why += " (" + tracefs.Error() + ")";
      }
      failed += (failed.empty() ? "" : "; ") + why;
    }
    if (bpf_ == nullptr) {
      return Failure{Unattached(allowed, failed, result.error[PORTWATCH_BPF_ATTACH_FEXIT])};
    }
    attach_path_ = PathName(result.used);
    fallback_reason_ = failed;
    ring_ = ring_buffer__new(portwatch_bpf_events_fd(bpf_), &KernelSource::OnSample, this, nullptr);
    if (ring_ == nullptr) {
      cause_ = "attach_failed";
      return Failure{Explain("cannot open the BPF ring buffer", errno)};
    }
    poller_ = std::thread([this] {
      while (!stop_) {
        const int result = ring_buffer__poll(ring_, 200);
        if (result < 0 && result != -EINTR) {
          spdlog::warn("{}", LogLine("bind_events: ring buffer poll failed, no more log lines")
                                 .Add("err", std::strerror(-result))
                                 .Text());
          return;
        }
      }
    });
    return {};
  }

  /// When Start() failed: why, in one word (see UnavailableCause()).
  std::string Cause() const { return cause_; }

  bool Available() const override { return true; }
  std::string UnavailableReason() const override { return ""; }
  void SetNetnsFilter(uint32_t netns) override { portwatch_bpf_set_netns_filter(bpf_, netns); }
  std::vector<std::pair<BindFailureKey, uint64_t>> ReadCounts() override {
    std::vector<std::pair<BindFailureKey, uint64_t>> counts;
    const int fd = portwatch_bpf_failures_fd(bpf_);
    const uint32_t max_entries = portwatch_bpf_failures_max_entries(bpf_);
    portwatch_bind_key key{};
    portwatch_bind_key next{};
    const void* previous = nullptr;  // nullptr: the first key
    // Bounded: the map never holds more than max_entries keys (no key is ever deleted, so the
    // walk cannot restart from the beginning).
    for (uint32_t i = 0; i <= max_entries && bpf_map_get_next_key(fd, previous, &next) == 0; ++i) {
      uint64_t value = 0;
      if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
        counts.emplace_back(DecodeBindKey(next), value);
      }
      key = next;
      previous = &key;
    }
    return counts;
  }
  uint64_t UncountedFailures() const override { return portwatch_bpf_dropped_keys(bpf_); }
  uint64_t LostEvents() const override { return portwatch_bpf_lost_events(bpf_); }
  std::string AttachPath() const override { return attach_path_; }
  std::string FallbackReason() const override { return fallback_reason_; }

 private:
  static int OnSample(void* context, void* data, size_t size) {
    if (size >= sizeof(portwatch_bind_event)) {
      portwatch_bind_event raw{};
      std::memcpy(&raw, data, sizeof(raw));
      auto* self = static_cast<KernelSource*>(context);
      if (self->on_event_) {
        self->on_event_(DecodeBindEvent(raw));
      }
    }
    return 0;
  }

  /// The C wrapper's name for each attach path.
  struct PathMapping {
    BindEventsAttach attach;
    portwatch_bpf_attach path;
  };
  static constexpr std::array<PathMapping, 3> kPathMappings = {
      PathMapping{BindEventsAttach::kFexit, PORTWATCH_BPF_ATTACH_FEXIT},
      PathMapping{BindEventsAttach::kTracepoint, PORTWATCH_BPF_ATTACH_TRACEPOINT},
      PathMapping{BindEventsAttach::kRawTracepoint, PORTWATCH_BPF_ATTACH_RAW_TRACEPOINT}};

  static portwatch_bpf_attach PathOf(BindEventsAttach attach) {
    for (const PathMapping& mapping : kPathMappings) {
      if (mapping.attach == attach) {
        return mapping.path;
      }
    }
    return PORTWATCH_BPF_ATTACH_NONE;
  }

  static const char* PathName(int path) {
    for (const PathMapping& mapping : kPathMappings) {
      if (mapping.path == path) {
        return BindEventsAttachName(mapping.attach);
      }
    }
    return "none";
  }

  /// Why nothing is attached (`failed`: each allowed path's error; `fexit_error`: the errno of
  /// the fexit attempt, 0 if not tried), and cause_ in one word.
  /// An EPERM is ambiguous: no privilege, or (for fexit) a kernel that refuses BPF
  /// trampolines even to root. Loading the trace-event programs without attaching them tells
  /// the two apart.
  std::string Unattached(unsigned allowed, const std::string& failed, int fexit_error) {
    std::string reason = "cannot attach the BPF program: " + failed;
    const int probe = portwatch_bpf_probe_load(SYS_bind, SYS_listen, SYS_connect);
    if (probe == -EPERM || probe == -EACCES) {
      cause_ = "no_permission";
      return reason;
    }
    const unsigned syscall_paths = PORTWATCH_BPF_ATTACH_BIT(PORTWATCH_BPF_ATTACH_TRACEPOINT) |
                                   PORTWATCH_BPF_ATTACH_BIT(PORTWATCH_BPF_ATTACH_RAW_TRACEPOINT);
    if (probe == 0 && (allowed & syscall_paths) == 0) {
      cause_ = "fexit_unsupported";
      return "this kernel refuses fexit programs although BPF itself works here (no BPF "
             "trampolines; fexit: " +
             std::string(std::strerror(fexit_error)) +
             "), and collectors.bind_events.attach allows only fexit: add tracepoint to count "
             "failures at the cost of slowing every system call of every process "
             "(docs/bind_events.md)";
    }
    cause_ = "attach_failed";
    return reason;
  }

  /// The syscall trace events are attached by id, read from tracefs: mounts it on
  /// /sys/kernel/tracing when neither it nor debugfs's tracing directory is there, or says why
  /// tracefs is not available.
  static Status EnsureTracefs() {
    if (::access("/sys/kernel/tracing/events", F_OK) == 0 ||
        ::access("/sys/kernel/debug/tracing/events", F_OK) == 0) {
      return {};
    }
    if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) == 0) {
      spdlog::info("{}", LogLine("bind_events: mounted tracefs on /sys/kernel/tracing").Text());
      return {};
    }
    return Failure{
        ErrnoText("tracefs not mounted and mounting it on /sys/kernel/tracing failed", errno)};
  }

  static std::string Explain(const std::string& what, int error) {
    std::string text = what + ": " + std::strerror(error);
    if (error == EPERM || error == EACCES) {
      text += " (needs CAP_BPF and CAP_PERFMON, or root; a seccomp filter may also deny bpf())";
    }
    return text;
  }

  std::vector<BindEventsAttach> allowed_;
  BindEventHandler on_event_;
  std::string cause_;
  std::string attach_path_;
  std::string fallback_reason_;
  portwatch_bpf* bpf_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
};

#endif  // PORTWATCH_HAVE_BPF

}  // namespace

std::unique_ptr<BindEventSource> OpenKernelBindEventSource(
    const std::vector<BindEventsAttach>& allowed, BindEventHandler on_event) {
#if PORTWATCH_HAVE_BPF
  auto source = std::make_unique<KernelSource>(allowed, std::move(on_event));
  const Status started = source->Start();
  // Loading parses the kernel's BTF (about 10 MiB on 6.18), freed by libbpf right after: give
  // it back to the system instead of keeping it in the heap for the exporter's lifetime.
  ::malloc_trim(0);
  if (started) {
    return source;
  }
  return std::make_unique<UnavailableSource>(source->Cause(), started.Error());
#else
  (void)allowed;
  (void)on_event;
  return std::make_unique<UnavailableSource>(
      "not_built", "built without eBPF support (cmake -DPORTWATCH_BPF=OFF)");
#endif
}

}  // namespace portwatch
