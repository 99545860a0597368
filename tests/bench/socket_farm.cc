#include "tests/bench/socket_farm.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "tests/bench/probes.h"

namespace portwatch::bench {

namespace {

/// TIME_WAIT connections are opened and closed this many at a time.
constexpr int kTimeWaitBatch = 256;
/// Fds a worker keeps free beyond its held connections: a TIME_WAIT batch, listener, pipes.
constexpr uint64_t kFdReserve = 2 * kTimeWaitBatch + 64;
constexpr int kListenBacklog = 4096;

struct Job {
  int index = 0;
  bool ipv6 = false;
  uint64_t held = 0;       ///< established connections to keep (two fds each)
  uint64_t time_wait = 0;  ///< connections to open and close on 'T'
};

uint64_t HardFdLimit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_max == RLIM_INFINITY ? (1U << 20) : limit.rlim_max;
}

void WriteLine(int fd, const std::string& line) {
  const std::string text = line + "\n";
  size_t written = 0;
  for (int attempt = 0; attempt < 100 && written < text.size(); ++attempt) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return;
    }
  }
}

[[noreturn]] void Fail(int status, const std::string& what) {
  WriteLine(status, "E worker: " + what + ": " + std::strerror(errno));
  ::_exit(1);
}

class Worker {
 public:
  Worker(const Job& job, int status) : job_(job), status_(status) {}

  void Listen() {
    const int family = job_.ipv6 ? AF_INET6 : AF_INET;
    address_ = {};
    if (job_.ipv6) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&address_);
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(SocketFarm::kFirstListenerPort + job_.index));
      v6->sin6_addr = in6addr_loopback;
      address_length_ = sizeof(*v6);
    } else {
      auto* v4 = reinterpret_cast<sockaddr_in*>(&address_);
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(SocketFarm::kFirstListenerPort + job_.index));
      v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address_length_ = sizeof(*v4);
    }
    listener_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    if (job_.ipv6) {
      ::setsockopt(listener_, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (listener_ < 0 ||
        ::bind(listener_, reinterpret_cast<sockaddr*>(&address_), address_length_) != 0 ||
        ::listen(listener_, kListenBacklog) != 0) {
      Fail(status_,
           "listen on port " + std::to_string(SocketFarm::kFirstListenerPort + job_.index));
    }
  }

  /// One connection to our own listener: the client end, then the accepted end.
  void Open(int& client, int& server) {
    client = ::socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0) {
      Fail(status_, "socket");
    }
    if (::connect(client, reinterpret_cast<sockaddr*>(&address_), address_length_) != 0) {
      Fail(status_, "connect");
    }
    pollfd wanted{listener_, POLLIN, 0};
    if (::poll(&wanted, 1, 5000) != 1) {
      Fail(status_, "accept timed out");
    }
    server = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) {
      Fail(status_, "accept");
    }
  }

  void Hold() {
    const linger abortive{1, 0};
    for (uint64_t i = 0; i < job_.held; ++i) {
      int client = -1;
      int server = -1;
      Open(client, server);
      // Closed with a reset when we exit: no second table of TIME_WAIT at teardown.
      ::setsockopt(client, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
      ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
    }
  }

  void LeaveTimeWait() {
    int clients[kTimeWaitBatch];
    int servers[kTimeWaitBatch];
    for (uint64_t done = 0; done < job_.time_wait;) {
      const int batch = static_cast<int>(std::min<uint64_t>(kTimeWaitBatch, job_.time_wait - done));
      for (int i = 0; i < batch; ++i) {
        Open(clients[i], servers[i]);
      }
      // The client closes first, so the client end ends up in TIME_WAIT.
      for (int i = 0; i < batch; ++i) {
        ::close(clients[i]);
      }
      for (int i = 0; i < batch; ++i) {
        ::close(servers[i]);
      }
      done += static_cast<uint64_t>(batch);
    }
  }

 private:
  Job job_;
  int status_;
  int listener_ = -1;
  sockaddr_storage address_{};
  socklen_t address_length_ = 0;
};

/// Waits up to `seconds` for one command byte; 0 on EOF, error or timeout.
char ReadCommand(int control, int seconds) {
  pollfd wanted{control, POLLIN, 0};
  if (::poll(&wanted, 1, seconds * 1000) != 1) {
    return '\0';
  }
  char command = 0;
  return ::read(control, &command, 1) == 1 ? command : '\0';
}

[[noreturn]] void WorkerMain(const Job& job, int control, int status, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(1);
  }
  // Drop every descriptor inherited from the builder (other workers' pipes above all).
  const int limit = static_cast<int>(std::min<uint64_t>(HardFdLimit(), 1U << 16));
  for (int fd = 3; fd < limit; ++fd) {
    if (fd != control && fd != status) {
      ::close(fd);
    }
  }
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
    Fail(status, "setrlimit(RLIMIT_NOFILE)");
  }
  Worker worker(job, status);
  worker.Listen();
  worker.Hold();
  WriteLine(status, "R " + std::to_string(job.held));
  // Bounded waits: the builder answers within minutes or is gone (then PDEATHSIG ends us).
  for (int command = 0; command < 4; ++command) {
    switch (ReadCommand(control, 900)) {
      case 'T':
        worker.LeaveTimeWait();
        WriteLine(status, "T " + std::to_string(job.time_wait));
        break;
      default:  // 'Q', EOF, timeout
        ::_exit(0);
    }
  }
  ::_exit(0);
}

}  // namespace

SocketFarm::~SocketFarm() { Stop(); }

SocketFarm::Layout SocketFarm::PlanLayout(const Plan& plan, bool ipv6) {
  Layout layout;
  const uint64_t hard = HardFdLimit();
  const uint64_t per_worker = hard > kFdReserve + 2 ? (hard - kFdReserve) / 2 : 1;
  layout.time_wait =
      static_cast<uint64_t>(static_cast<double>(plan.sockets) * plan.time_wait_share);
  const uint64_t rest = plan.sockets > layout.time_wait ? plan.sockets - layout.time_wait : 0;
  // Each worker: one listener plus up to per_worker connections (two sockets each).
  const uint64_t workers = std::max<uint64_t>(4, (rest + 2 * per_worker) / (2 * per_worker + 1));
  layout.workers = static_cast<int>(workers);
  layout.established_connections = rest > workers ? (rest - workers) / 2 : 0;
  layout.ipv6_workers = ipv6 ? layout.workers / 4 : 0;
  return layout;
}

std::string SocketFarm::Establish(const Layout& layout, double timeout_seconds) {
  layout_ = layout;
  const pid_t self = ::getpid();
  const auto share = [&layout](uint64_t total, int index) {
    const auto n = static_cast<uint64_t>(layout.workers);
    return total / n + (static_cast<uint64_t>(index) < total % n ? 1 : 0);
  };
  for (int index = 0; index < layout.workers; ++index) {
    Job job;
    job.index = index;
    job.ipv6 = layout.ipv6_workers > 0 && index % 4 == 3;
    job.held = share(layout.established_connections, index);
    job.time_wait = share(layout.time_wait, index);
    int control[2];
    int status[2];
    if (::pipe2(control, O_CLOEXEC) != 0) {
      return std::string("pipe: ") + std::strerror(errno);
    }
    if (::pipe2(status, O_CLOEXEC) != 0) {
      ::close(control[0]);
      ::close(control[1]);
      return std::string("pipe: ") + std::strerror(errno);
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      WorkerMain(job, control[0], status[1], self);
    }
    ::close(control[0]);
    ::close(status[1]);
    workers_.push_back({pid, control[1], status[0]});
    if (pid < 0) {
      return std::string("fork: ") + std::strerror(errno);
    }
  }
  return AwaitLines('R', timeout_seconds);
}

std::string SocketFarm::AddTimeWait(double timeout_seconds) {
  for (const Worker& worker : workers_) {
    if (::write(worker.control, "T", 1) != 1) {
      return std::string("worker control: ") + std::strerror(errno);
    }
  }
  return AwaitLines('T', timeout_seconds);
}

std::string SocketFarm::AwaitLines(char phase, double timeout_seconds) {
  std::vector<std::string> pending(workers_.size());
  std::vector<bool> done(workers_.size(), false);
  size_t remaining = workers_.size();
  const double deadline = Now() + timeout_seconds;
  while (remaining > 0) {
    std::vector<pollfd> wanted;
    std::vector<size_t> which;
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (!done[i]) {
        wanted.push_back({workers_[i].status, POLLIN, 0});
        which.push_back(i);
      }
    }
    const int left_ms = static_cast<int>((deadline - Now()) * 1000);
    if (left_ms <= 0) {
      return "workers timed out after " + std::to_string(static_cast<int>(timeout_seconds)) +
             " s (" + std::to_string(remaining) + " of " + std::to_string(workers_.size()) +
             " not done)";
    }
    const int ready = ::poll(wanted.data(), wanted.size(), left_ms);
    if (ready < 0 && errno != EINTR) {
      return std::string("poll: ") + std::strerror(errno);
    }
    for (size_t k = 0; k < wanted.size() && ready > 0; ++k) {
      if (wanted[k].revents == 0) {
        continue;
      }
      const size_t i = which[k];
      char buffer[256];
      const ssize_t n = ::read(workers_[i].status, buffer, sizeof(buffer));
      if (n <= 0) {
        return "worker " + std::to_string(i) + " exited unexpectedly" +
               (pending[i].empty() ? "" : ": " + pending[i]);
      }
      pending[i].append(buffer, static_cast<size_t>(n));
      const size_t end = pending[i].find('\n');
      if (end == std::string::npos) {
        continue;
      }
      const std::string line = pending[i].substr(0, end);
      pending[i].erase(0, end + 1);
      if (line.empty() || line[0] != phase) {
        return "worker " + std::to_string(i) + ": " + line;
      }
      done[i] = true;
      remaining--;
    }
  }
  return "";
}

void SocketFarm::Stop() {
  for (Worker& worker : workers_) {
    if (worker.control >= 0) {
      ::close(worker.control);  // EOF: the worker exits, resetting its held connections
      worker.control = -1;
    }
  }
  for (Worker& worker : workers_) {
    if (worker.pid > 0 && WaitExit(worker.pid, 20) == -1) {
      ::kill(worker.pid, SIGKILL);
      WaitExit(worker.pid, 20);
    }
    worker.pid = -1;
    if (worker.status >= 0) {
      ::close(worker.status);
      worker.status = -1;
    }
  }
  workers_.clear();
}

}  // namespace portwatch::bench
