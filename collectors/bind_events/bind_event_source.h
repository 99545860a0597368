#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collectors/bind_events/bind_events_config.h"
#include "collectors/bind_events/bind_events_table.h"

namespace portwatch {

/// Where bind failures come from: the eBPF program in the kernel, or a test's fake.
class BindEventSource {
 public:
  virtual ~BindEventSource() = default;
  /// Whether failures are being counted; when not, UnavailableReason() says why.
  virtual bool Available() const = 0;
  virtual std::string UnavailableReason() const = 0;
  /// Count only failures in this network namespace (inode); 0 counts every namespace.
  virtual void SetNetnsFilter(uint32_t netns) = 0;
  /// Every counter of the kernel map.
  virtual std::vector<std::pair<BindFailureKey, uint64_t>> ReadCounts() = 0;
  /// Failures not counted because the map was full.
  virtual uint64_t UncountedFailures() const = 0;
  /// Failures not sent for a log line (kernel-side limit of 50/s per network namespace, or ring
  /// buffer full).
  virtual uint64_t LostEvents() const = 0;
  /// How the program is attached when available: "fexit" (fexit programs on __sys_bind,
  /// __sys_listen and __sys_connect), "tracepoint" (syscalls:sys_exit_bind/listen/connect) or
  /// "raw_tracepoint" (raw_syscalls:sys_exit, every system call: the last resort).
  virtual std::string AttachPath() const { return ""; }
  /// Why the allowed paths tried before the one in use could not be used ("" when none).
  virtual std::string FallbackReason() const { return ""; }
  /// When unavailable, why in one word (a label value): not_built, no_btf, no_permission,
  /// fexit_unsupported (BPF works but the kernel refuses fexit and no other path is allowed)
  /// or attach_failed.
  virtual std::string UnavailableCause() const { return ""; }
};

/// Called from the source's own thread for each failure.
using BindEventHandler = std::function<void(const BindFailureEvent&)>;

/// Loads and attaches the eBPF program through the first of `allowed` the kernel accepts,
/// cheapest first (fexit on __sys_bind/__sys_listen/__sys_connect; the trace events
/// syscalls:sys_exit_bind/listen/connect, mounting tracefs if needed; the raw tracepoint
/// raw_syscalls:sys_exit), and starts a thread that hands each failure to `on_event`. Never
/// fails: when BPF cannot be used (a build without it, no BTF, no CAP_BPF/CAP_PERFMON, a kernel
/// refusing every allowed path) the source is unavailable and says why. Destroying it stops the
/// thread and detaches the program.
std::unique_ptr<BindEventSource> OpenKernelBindEventSource(
    const std::vector<BindEventsAttach>& allowed, BindEventHandler on_event);

}  // namespace portwatch
