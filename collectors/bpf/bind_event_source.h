#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collectors/bind_events_table.h"

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
  /// Why the preferred paths tried before the one in use could not be used ("" when none).
  virtual std::string FallbackReason() const { return ""; }
};

/// Which attach path to use: the first of fexit, tracepoint, raw tracepoint that the kernel
/// allows (kAuto, the default), or only one of them.
enum class BindEventsAttach { kAuto, kFexit, kTracepoint, kRawTracepoint };

/// Called from the source's own thread for each failure.
using BindEventHandler = std::function<void(const BindFailureEvent&)>;

/// Loads and attaches the eBPF program (fexit on __sys_bind/__sys_listen/__sys_connect, else
/// the trace events syscalls:sys_exit_bind/listen/connect, mounting tracefs if needed, else the
/// raw tracepoint raw_syscalls:sys_exit) and starts a thread that hands each failure to
/// `on_event`. Never fails: when BPF cannot be used (a build without it, no BTF, no
/// CAP_BPF/CAP_PERFMON, an old kernel) the source is unavailable and says why. Destroying it
/// stops the thread and detaches the program. The environment variable
/// PORTWATCH_BIND_EVENTS_ATTACH (auto, fexit, tracepoint, raw_tracepoint) forces a path
/// (troubleshooting, tests); anything else is auto.
std::unique_ptr<BindEventSource> OpenKernelBindEventSource(BindEventHandler on_event);

/// The same with an explicit attach path (the environment is not read).
std::unique_ptr<BindEventSource> OpenKernelBindEventSourceUsing(BindEventsAttach attach,
                                                                BindEventHandler on_event);

/// The attach path named by PORTWATCH_BIND_EVENTS_ATTACH (kAuto when unset or unknown).
BindEventsAttach BindEventsAttachFromEnvironment();

/// Whether this binary was built with the eBPF program (CMake option PORTWATCH_BPF).
bool BindEventsBuiltWithBpf();

}  // namespace portwatch
