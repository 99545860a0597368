#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portwatch::testing {

/// The real portwatch_exporter binary, started in the caller's network namespace and stopped
/// (SIGTERM, then SIGKILL after 5 s) when this object goes away. It never outlives its starter:
/// it gets SIGKILL when the thread that started it dies (PR_SET_PDEATHSIG), so a test or
/// benchmark that crashes or is killed leaves no exporter behind holding its port.
class ExporterProcess {
 public:
  /// Starts the binary with `args`; its stdout and stderr go to a temporary log file.
  ExporterProcess(const std::string& binary, const std::vector<std::string>& args);
  ~ExporterProcess();
  ExporterProcess(const ExporterProcess&) = delete;
  ExporterProcess& operator=(const ExporterProcess&) = delete;

  /// Polls GET /-/ready on 127.0.0.1:port for up to 10 s. False if it never answered 200 or
  /// the process exited.
  bool WaitReady(uint16_t port);
  /// Sends a signal; returns false if the process is gone.
  bool Signal(int signal_number) const;
  /// Sends SIGTERM and waits up to 5 s; returns the exit status (-1: had to SIGKILL).
  int Stop();
  /// Waits up to `seconds` for the process to exit by itself; returns its exit code or -1.
  int WaitExit(int seconds);
  pid_t Pid() const { return pid_; }
  /// What the exporter wrote to stderr so far.
  std::string Log() const;
  /// Polls the log for up to `seconds` until it holds `text`: for lines written asynchronously
  /// (after a scrape has already answered). Returns the log as it was when the wait ended.
  std::string WaitForLog(const std::string& text, int seconds = 10) const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

/// Runs a command to completion, bounded by `seconds` and by the calling thread's life; returns
/// its exit code (-1 on timeout) and its stdout and stderr in `output`.
int RunCommand(const std::vector<std::string>& argv, std::string& output, int seconds = 60);

}  // namespace portwatch::testing
