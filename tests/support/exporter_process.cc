#include "tests/support/exporter_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/http.h"

namespace portwatch::testing {

namespace {

/// fork + exec with stdout/stderr to `log_path`; the child gets SIGKILL when the calling thread
/// dies. Returns the child's pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> arguments;
  for (const std::string& argument : argv) {
    arguments.push_back(const_cast<char*>(argument.c_str()));
  }
  arguments.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);  // the parent died before prctl took effect
    }
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
    }
    ::execvp(arguments[0], arguments.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits up to `timeout` for `pid`; returns its exit code, 128+signal, or -1 if still running.
int WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 || std::chrono::steady_clock::now() >= deadline) {
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string TempPath() {
  char path[] = "/tmp/portwatch-test-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd >= 0) {
    ::close(fd);
  }
  return path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ExporterProcess::ExporterProcess(const std::string& binary, const std::vector<std::string>& args)
    : log_path_(TempPath()) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = Spawn(argv, log_path_);
}

ExporterProcess::~ExporterProcess() {
  Stop();
  ::unlink(log_path_.c_str());
}

bool ExporterProcess::WaitReady(uint16_t port) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (pid_ < 0 || WaitExit(0) != -1) {
      return false;
    }
    if (HttpRequest(port, "GET", "/-/ready").status == 200) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool ExporterProcess::Signal(int signal_number) const {
  return pid_ > 0 && ::kill(pid_, signal_number) == 0;
}

int ExporterProcess::WaitExit(int seconds) {
  if (pid_ < 0) {
    return exit_code_;
  }
  int code = WaitFor(pid_, std::chrono::seconds(seconds));
  if (code != -1) {
    exit_code_ = code;
    pid_ = -1;
  }
  return code;
}

int ExporterProcess::Stop() {
  if (pid_ < 0) {
    return exit_code_;
  }
  ::kill(pid_, SIGTERM);
  if (WaitExit(5) == -1) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, std::chrono::seconds(5));
    pid_ = -1;
    exit_code_ = -1;
  }
  return exit_code_;
}

std::string ExporterProcess::Log() const { return ReadAll(log_path_); }

std::string ExporterProcess::WaitForLog(const std::string& text, int seconds) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string log = Log();
  while (log.find(text) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = Log();
  }
  return log;
}

int RunCommand(const std::vector<std::string>& argv, std::string& output, int seconds) {
  const std::string log_path = TempPath();
  pid_t pid = Spawn(argv, log_path);
  if (pid < 0) {
    return -1;
  }
  int code = WaitFor(pid, std::chrono::seconds(seconds));
  if (code == -1) {
    ::kill(pid, SIGKILL);
    WaitFor(pid, std::chrono::seconds(5));
  }
  output = ReadAll(log_path);
  ::unlink(log_path.c_str());
  return code;
}

}  // namespace portwatch::testing
