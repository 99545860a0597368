#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "collectors/netlink/recorded_dump.h"

namespace portwatch {

/// The recordings of the sockets collector's dumps of this scrape, by network namespace, for the
/// collectors that run after it (see netlink::RecordedDump). Thread-safe.
///
/// A recording is served only while it is younger than the freshness window: the collectors of
/// one scrape run one after another within it, and scrapes are seconds apart, so the services
/// collector never answers from a previous scrape's dump of a pod the sockets collector skipped
/// this time (a pod sharing the node's hash that waits its turn). Memory is bounded by a total
/// record budget shared by every namespace; stale recordings are dropped when a new one is kept.
class KeptDumps {
 public:
  /// The key of the exporter's own network namespace (pods are keyed by their namespace inode,
  /// never 0).
  static constexpr uint64_t kOwnNamespace = 0;
  static constexpr std::chrono::milliseconds kFreshFor{1000};
  /// 64 bytes each: 2 MiB at most, whatever the number of pods.
  static constexpr size_t kDefaultRecordBudget = 32768;

  explicit KeptDumps(size_t record_budget = kDefaultRecordBudget);

  /// How many records a new recording may hold: what the budget has left once stale recordings
  /// and the one `namespace_key` had are let go.
  size_t Room(uint64_t namespace_key);
  /// Keeps `dump` as namespace `namespace_key`'s, replacing the one it had. A recording that gave
  /// up is not kept.
  void Keep(uint64_t namespace_key, std::shared_ptr<const netlink::RecordedDump> dump);
  /// The fresh recording of namespace `namespace_key`, or nullptr.
  std::shared_ptr<const netlink::RecordedDump> Find(uint64_t namespace_key) const;
  /// Lets go of every recording.
  void Clear();

  /// For tests: the clock the freshness window is measured on.
  void SetClockForTesting(std::chrono::steady_clock::time_point (*now)()) { now_ = now; }

 private:
  struct Kept {
    std::shared_ptr<const netlink::RecordedDump> dump;
    std::chrono::steady_clock::time_point at;
  };
  void DropStale(std::chrono::steady_clock::time_point now);  ///< under mutex_
  void Drop(uint64_t namespace_key);                          ///< under mutex_

  const size_t record_budget_;
  mutable std::mutex mutex_;
  std::map<uint64_t, Kept> kept_;
  size_t records_ = 0;  ///< held by kept_
  std::chrono::steady_clock::time_point (*now_)() = &std::chrono::steady_clock::now;
};

}  // namespace portwatch
