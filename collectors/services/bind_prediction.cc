#include "collectors/services/bind_prediction.h"

#include <utility>
#include <vector>

namespace portwatch {

namespace {

using netlink::Protocol;

/// Collects the sockets that block one kind of bind and the reasons the answer may be unknown;
/// decides the verdict at the end. A known blocker outweighs any unknown: the bind fails
/// whatever the unknown facts are.
class PredictionBuilder {
 public:
  explicit PredictionBuilder(const BindContext& context)
      : free_is_trusted_(context.protocol == Protocol::kUdp || context.bound_inactive_visible) {}

  void Block(uint8_t state, uint64_t count) {
    if (count > 0) {
      blockers_by_state_[std::string(netlink::StateName(state))] += count;
    }
  }
  void Unknown(std::string because) { unknowns_.push_back(std::move(because)); }

  BindPrediction Finish() && {
    BindPrediction prediction;
    prediction.blockers_by_state = std::move(blockers_by_state_);
    if (!prediction.blockers_by_state.empty()) {
      prediction.verdict = Verdict::kBlocked;
    } else if (!unknowns_.empty()) {
      prediction.verdict = Verdict::kUnknown;
      prediction.unknown_because = unknowns_.front();
    } else if (!free_is_trusted_) {
      prediction.verdict = Verdict::kUnknown;
      prediction.unknown_because =
          "this kernel (before 6.10) does not show bound-but-inactive TCP sockets";
    }
    return prediction;
  }

 private:
  bool free_is_trusted_;
  std::map<std::string, uint64_t> blockers_by_state_;
  std::vector<std::string> unknowns_;
};

/// TIME_WAIT sockets block a reusing bind unless their own flag is set: a copy of the flag of the
/// listener that accepted them. Those whose record did not carry it are taken to have the
/// listener's flag as portwatch saw it.
void AddTimeWaitBlockers(const PortObservation& observed, const BindContext& context,
                         PredictionBuilder& builder) {
  const InodelessReuse& known = observed.reuse_without_inode;
  builder.Block(netlink::kTimeWait, known.unset[netlink::kTimeWait]);
  const uint64_t unknown = observed.overlapping_by_state[netlink::kTimeWait] -
                           known.set[netlink::kTimeWait] - known.unset[netlink::kTimeWait];
  if (unknown == 0) {
    return;
  }
  if (!context.time_wait_reuse) {
    builder.Unknown("TIME_WAIT sockets left by a listener whose SO_REUSEADDR portwatch never saw");
  } else if (!*context.time_wait_reuse) {
    builder.Block(netlink::kTimeWait, unknown);
  }
}

/// Sockets with an fd block a reusing bind unless they set the flag themselves.
void AddFlaggedSocketBlockers(const std::vector<uint32_t>& inodes, const BindContext& context,
                              PredictionBuilder& builder) {
  for (uint32_t inode : inodes) {
    auto flag = context.reuse_by_inode.find(inode);
    if (flag == context.reuse_by_inode.end()) {
      builder.Unknown("cannot read SO_REUSEADDR of a socket on the port (needs CAP_SYS_PTRACE)");
    } else if (!flag->second) {
      // The state is not kept per inode: UDP sockets count as unconn, TCP as established.
      builder.Block(context.protocol == Protocol::kUdp ? netlink::kClose : netlink::kEstablished,
                    1);
    }
  }
}

/// Sockets without an fd other than TIME_WAIT (orphans) block a reusing bind unless their flag
/// is set; without a record that carried it, no fd is left to read it from.
void AddInodelessBlockers(const PortObservation& observed, PredictionBuilder& builder) {
  const InodelessReuse& known = observed.reuse_without_inode;
  uint64_t with_known_flag = 0;
  for (size_t state = 1; state < kStateSlots; ++state) {
    if (state != netlink::kTimeWait) {
      builder.Block(static_cast<uint8_t>(state), known.unset[state]);
      with_known_flag += known.set[state] + known.unset[state];
    }
  }
  if (observed.others_without_inode > with_known_flag) {
    builder.Unknown("sockets on the port that no process holds");
  }
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kFree:
      return "free";
    case Verdict::kBlocked:
      return "blocked";
    default:
      return "unknown";
  }
}

std::optional<bool> CurrentListenerReuse(const PortObservation& observed, const ReuseFlags& flags) {
  std::optional<bool> reuse;
  for (uint32_t inode : observed.listener_inodes) {
    if (auto flag = flags.find(inode); flag != flags.end()) {
      reuse = reuse.value_or(true) && flag->second;
    }
  }
  return reuse;
}

BindPrediction PredictBindWithoutReuse(const PortObservation& observed,
                                       const BindContext& context) {
  PredictionBuilder builder(context);
  for (size_t state = 1; state < kStateSlots; ++state) {
    if (!IsRequestSocket(static_cast<uint8_t>(state))) {
      builder.Block(static_cast<uint8_t>(state), observed.overlapping_by_state[state]);
    }
  }
  return std::move(builder).Finish();
}

BindPrediction PredictBindWithReuse(const PortObservation& observed, const BindContext& context) {
  PredictionBuilder builder(context);
  if (context.protocol == Protocol::kTcp) {
    builder.Block(netlink::kListen, observed.overlapping_by_state[netlink::kListen]);
    AddTimeWaitBlockers(observed, context, builder);
  }
  AddFlaggedSocketBlockers(observed.other_inodes, context, builder);
  // A UDP "listener" is only a bound socket: SO_REUSEADDR on both sides lets a second one bind.
  if (context.protocol == Protocol::kUdp) {
    AddFlaggedSocketBlockers(observed.listener_inodes, context, builder);
  }
  AddInodelessBlockers(observed, builder);
  return std::move(builder).Finish();
}

}  // namespace portwatch
