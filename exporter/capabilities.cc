#include "exporter/capabilities.h"

#include <sys/capability.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace portwatch {

namespace {

struct CapFree {
  void operator()(void* object) const { cap_free(object); }
};
using CapState = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

CapabilityMask FlagMask(cap_t state, cap_flag_t flag, int last_known) {
  CapabilityMask mask = 0;
  for (int capability = 0; capability <= last_known; ++capability) {
    cap_flag_value_t value = CAP_CLEAR;
    if (cap_get_flag(state, capability, flag, &value) == 0 && value == CAP_SET) {
      mask |= CapabilityBit(capability);
    }
  }
  return mask;
}

int LastKnownCapability() {
  // cap_max_bits() asks the kernel (/proc/sys/kernel/cap_last_cap); the mask holds 64 bits.
  return std::min(static_cast<int>(cap_max_bits()) - 1, 63);
}

}  // namespace

std::string CapabilityName(int capability) {
  std::unique_ptr<char, CapFree> lower(cap_to_name(capability));
  std::string name = lower ? lower.get() : std::to_string(capability);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  // An unnamed capability of a newer kernel comes back as its number.
  return name.rfind("CAP_", 0) == 0 ? name : "CAP_" + name;
}

std::string CapabilityNames(CapabilityMask mask) {
  std::string names;
  for (int capability = 0; capability < 64; ++capability) {
    if ((mask & CapabilityBit(capability)) != 0) {
      names += (names.empty() ? "" : ",") + CapabilityName(capability);
    }
  }
  return names;
}

Result<ProcessCapabilities> ReadProcessCapabilities() {
  const CapState state(cap_get_proc());
  if (!state) {
    return Failure{ErrnoText("cannot read the process's capabilities", errno)};
  }
  ProcessCapabilities sets;
  sets.last_known = LastKnownCapability();
  sets.effective = FlagMask(state.get(), CAP_EFFECTIVE, sets.last_known);
  sets.permitted = FlagMask(state.get(), CAP_PERMITTED, sets.last_known);
  for (int capability = 0; capability <= sets.last_known; ++capability) {
    if (cap_get_bound(capability) > 0) {
      sets.bounding |= CapabilityBit(capability);
    }
  }
  return sets;
}

Status RestrictCapabilities(CapabilityMask keep, CapabilityMask permitted_only) {
  const int last_known = LastKnownCapability();
  const CapState current(cap_get_proc());
  if (!current) {
    return Failure{ErrnoText("cannot read the process's capabilities", errno)};
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which the next step removes.
  if (cap_get_bound(CAP_SETPCAP) > 0) {
    cap_flag_value_t setpcap = CAP_CLEAR;
    cap_get_flag(current.get(), CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
    for (int capability = 0; setpcap == CAP_SET && capability <= last_known; ++capability) {
      if ((keep & CapabilityBit(capability)) == 0 && cap_get_bound(capability) > 0 &&
          cap_drop_bound(capability) != 0) {
        return Failure{ErrnoText(
            "cannot drop " + CapabilityName(capability) + " from the bounding set", errno)};
      }
    }
  }
  const CapState wanted(cap_init());  // all three sets empty
  if (!wanted) {
    return Failure{ErrnoText("cannot allocate a capability state", errno)};
  }
  for (int capability = 0; capability <= last_known; ++capability) {
    cap_flag_value_t permitted = CAP_CLEAR;
    cap_get_flag(current.get(), capability, CAP_PERMITTED, &permitted);
    if ((keep & CapabilityBit(capability)) == 0 || permitted != CAP_SET) {
      continue;
    }
    const cap_value_t value[] = {capability};
    cap_set_flag(wanted.get(), CAP_PERMITTED, 1, value, CAP_SET);
    if ((permitted_only & CapabilityBit(capability)) == 0) {
      cap_set_flag(wanted.get(), CAP_EFFECTIVE, 1, value, CAP_SET);
    }
  }
  // Removing a capability from the permitted set also clears it from the ambient set.
  if (cap_set_proc(wanted.get()) != 0) {
    return Failure{ErrnoText("cannot set the process's capabilities", errno)};
  }
  return {};
}

}  // namespace portwatch
