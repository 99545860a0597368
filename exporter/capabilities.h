#pragma once

#include <cstdint>
#include <string>

#include "collectors/common/result.h"

namespace portwatch {

/// A set of Linux capabilities, bit n for capability n (as /proc/<pid>/status shows them).
using CapabilityMask = uint64_t;

constexpr CapabilityMask CapabilityBit(int capability) { return CapabilityMask{1} << capability; }

/// "CAP_BPF" for 39: the name the kernel headers, systemd units and the README use.
std::string CapabilityName(int capability);

/// Comma-separated names of the capabilities in `mask`, lowest number first ("" when empty).
std::string CapabilityNames(CapabilityMask mask);

/// The calling thread's capability sets (libcap). Capabilities are per thread: read and change
/// them before any other thread exists so that every thread has the same.
struct ProcessCapabilities {
  CapabilityMask effective = 0;
  CapabilityMask permitted = 0;
  CapabilityMask bounding = 0;
  /// The highest capability number the running kernel knows (CAP_BPF is 39 since Linux 5.8).
  int last_known = 0;
};

Result<ProcessCapabilities> ReadProcessCapabilities();

/// Keeps only `keep` (of what is permitted): raises those into the effective set, except
/// `permitted_only` (kept permitted for a thread to raise while it uses one: see
/// RaiseOnThisThread), and removes every other capability from the effective, permitted,
/// inheritable and ambient sets and, when CAP_SETPCAP allows it, from the bounding set, so
/// neither this process nor anything it might execute can get them back.
Status RestrictCapabilities(CapabilityMask keep, CapabilityMask permitted_only = 0);

}  // namespace portwatch
