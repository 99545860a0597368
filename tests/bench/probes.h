#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portwatch::bench {

/// Seconds on the monotonic clock.
double Now();
/// CPU seconds (user + system) the calling thread has used.
double ThreadCpu();
/// CPU seconds every thread of `pid` has used so far (/proc/PID/task/*/schedstat, ns precise).
double ProcessCpu(pid_t pid);

/// A child process: fork + exec of `argv` with stdout and stderr to `output_path` ("/dev/null"
/// to discard). With `die_with_parent` the child gets SIGKILL if the forking thread dies.
/// Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& output_path,
            bool die_with_parent);

/// Waits up to `timeout_seconds` for `pid` to exit, without polling delays (pidfd), and reaps it
/// (its CPU time, user + system, into `cpu_seconds` if given). Returns its exit code,
/// 128+signal, or -1 if it is still running (or cannot be waited for).
int WaitExit(pid_t pid, double timeout_seconds, double* cpu_seconds = nullptr);

/// One HTTP/1.0 GET to 127.0.0.1:port, reading the whole response (bounded by `timeout_seconds`
/// per socket operation).
struct HttpResult {
  int status = 0;  ///< 0 on failure
  std::string body;
  std::string error;
};
HttpResult HttpGet(uint16_t port, const std::string& path, int timeout_seconds);

/// TCP states 1..12 (ESTABLISHED .. NEW_SYN_RECV): every state `ss -a` knows.
constexpr uint32_t kClassicTcpStates = 0x1ffe;
/// Plus 13, TCP_BOUND_INACTIVE (bound, neither listening nor connected). Kernels that know it
/// answer it by walking the whole bind hash (every socket with a local port) after the
/// established hash: roughly a second pass over the table. Older kernels ignore the bit.
constexpr uint32_t kTcpStatesWithBoundInactive = 0x3ffe;

/// The floor: NETLINK_SOCK_DIAG dumps of TCP `states`, AF_INET then AF_INET6, receiving into a
/// 64 KiB buffer and counting messages. Nothing else: no decoding, no validation beyond
/// NLMSG_DONE / NLMSG_ERROR.
struct BareDumpResult {
  uint64_t messages = 0;
  std::string error;  ///< empty on success
};
BareDumpResult BareTcpDump(uint32_t states);

/// kB values of a /proc/PID/status field ("VmHWM", "VmRSS"); 0 when missing.
uint64_t ProcStatusKb(pid_t pid, const std::string& field);

/// Active objects of the kernel's TCP socket slabs (TCP, TCPv6, tw_sock_TCP, tw_sock_TCPv6):
/// host-wide, so it shows whether a previous namespace's sockets are gone. -1 if unreadable.
int64_t KernelTcpObjects();

}  // namespace portwatch::bench
