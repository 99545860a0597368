#pragma once

#include <string>

namespace portwatch::testing {

/// Moves the calling thread (and every process it forks later) into a new, private network
/// namespace with loopback up. Everything created there vanishes with its last socket.
/// Returns an error message, empty on success.
std::string EnterPrivateNetworkNamespace();

/// Writes a sysctl of the current network namespace, e.g. ("net/ipv4/ip_local_port_range",
/// "40000 40999"). Returns an error message, empty on success.
std::string WriteSysctl(const std::string& name, const std::string& value);

/// Mounts tracefs on /sys/kernel/tracing for the object's life when it is not mounted yet (a
/// fresh machine may not have it), so that tests of the bind_events tracepoint path count
/// failures rather than test the exporter's privileges: the exporter, which keeps no
/// CAP_SYS_ADMIN, cannot mount it itself. Unmounts only what it mounted.
class TracefsForTest {
 public:
  TracefsForTest();
  ~TracefsForTest();
  TracefsForTest(const TracefsForTest&) = delete;
  TracefsForTest& operator=(const TracefsForTest&) = delete;

  /// Empty when tracefs is mounted (already, or by this object), else why not.
  const std::string& Error() const { return error_; }

 private:
  bool mounted_here_ = false;
  std::string error_;
};

}  // namespace portwatch::testing
