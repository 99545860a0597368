#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace portwatch {

/// The SO_REUSEADDR flag of the last listener seen on each service's port, kept between
/// scrapes. TIME_WAIT sockets inherit the flag of the listener that accepted them and outlive
/// it: this is how a restart is predicted after the old listener is gone. Not thread-safe: one
/// collector owns it.
class ListenerMemory {
 public:
  using Clock = std::chrono::steady_clock;

  /// How long a remembered flag explains TIME_WAIT sockets. They live 60 s after the listener's
  /// last connection closed, and the listener may have died up to a scrape interval after it
  /// was last seen: 120 s covers scrape intervals up to a minute. Older, the flag could belong
  /// to an incarnation whose TIME_WAIT sockets are long gone.
  static constexpr std::chrono::seconds kLifetime{120};

  /// Records the flag of the listener seen on `service`'s port at `now`.
  void Remember(const std::string& service, bool reuse_address, Clock::time_point now);
  /// The flag of the last listener seen on `service`'s port, when seen at most kLifetime
  /// before `now`.
  std::optional<bool> Recall(const std::string& service, Clock::time_point now) const;

 private:
  struct Remembered {
    bool reuse_address = false;
    Clock::time_point seen;
  };
  std::map<std::string, Remembered> by_service_;
};

}  // namespace portwatch
