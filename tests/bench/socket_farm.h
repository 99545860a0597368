#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portwatch::bench {

/// Builds a large TCP socket table in the current (private) network namespace with worker
/// processes, each holding up to the per-process fd limit: every worker listens on its own
/// loopback port (kFirstListenerPort + index; every fourth worker on ::1 when IPv6 is up) and
/// holds established connections to itself, both ends. AddTimeWait() then has every worker open
/// and close (client first) more connections, leaving client-side TIME_WAIT sockets that need no
/// fd but expire after 60 s.
///
/// Held sockets carry SO_LINGER {1, 0}, so stopping a worker resets them instead of leaving a
/// second table of TIME_WAIT behind. Workers die with the process that built them
/// (PR_SET_PDEATHSIG); Stop() or the destructor ends and reaps them.
class SocketFarm {
 public:
  static constexpr uint16_t kFirstListenerPort = 5000;

  struct Plan {
    uint64_t sockets = 0;          ///< total table size to aim at
    double time_wait_share = 0.1;  ///< part of it left in TIME_WAIT by AddTimeWait()
  };
  struct Layout {
    int workers = 0;
    int ipv6_workers = 0;
    uint64_t established_connections = 0;  ///< each is two sockets
    uint64_t time_wait = 0;
  };

  SocketFarm() = default;
  ~SocketFarm();
  SocketFarm(const SocketFarm&) = delete;
  SocketFarm& operator=(const SocketFarm&) = delete;

  /// How `plan` splits over workers, given the hard RLIMIT_NOFILE.
  static Layout PlanLayout(const Plan& plan, bool ipv6);

  /// Starts the workers and waits until every held connection is established (bounded by
  /// `timeout_seconds`). Returns an error message, empty on success.
  std::string Establish(const Layout& layout, double timeout_seconds);
  /// Has every worker leave its share of TIME_WAIT sockets. Returns an error, empty on success.
  std::string AddTimeWait(double timeout_seconds);
  /// Ends and reaps every worker (their held sockets are reset).
  void Stop();

 private:
  struct Worker {
    pid_t pid = -1;
    int control = -1;  ///< we write commands
    int status = -1;   ///< the worker writes one line per phase
  };
  std::string AwaitLines(char phase, double timeout_seconds);

  Layout layout_;
  std::vector<Worker> workers_;
};

}  // namespace portwatch::bench
