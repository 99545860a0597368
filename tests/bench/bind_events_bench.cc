// Overhead of the bind_events eBPF program: a bind/connect-heavy loop and a loop without any
// bind/listen/connect call, each timed with the program detached and attached through each
// attach path the kernel allows (fexit, tracepoint, raw_tracepoint), alternating in the same
// run (median of the rounds). Needs root; runs in a private network namespace.
//   portwatch_bind_events_bench [--rounds=N] [--iterations=N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "collectors/bind_events/bind_event_source.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace {

using portwatch::testing::UniqueFd;

constexpr uint16_t kBusyPort = 18080;
constexpr uint16_t kServerPort = 18090;

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

/// One iteration: a bind of a TCP socket (to the busy port when `kFail`: EADDRINUSE, counted;
/// else to an ephemeral port), a bind of a UDP socket to an ephemeral port and a connect to a
/// listener: each of the three hooks' paths. Without failures it is a bind/connect-heavy process
/// in normal operation, which pays the hooks but not the counting.
template <bool kFail>
void BindConnectLoop(int iterations) {
  const sockaddr_in first = Loopback(kFail ? kBusyPort : 0);
  const sockaddr_in any = Loopback(0);
  const sockaddr_in server = Loopback(kServerPort);
  for (int i = 0; i < iterations; ++i) {
    UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    (void)::bind(tcp.Get(), reinterpret_cast<const sockaddr*>(&first), sizeof(first));
    UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    (void)::bind(udp.Get(), reinterpret_cast<const sockaddr*>(&any), sizeof(any));
    (void)::connect(udp.Get(), reinterpret_cast<const sockaddr*>(&server), sizeof(server));
  }
}

/// System calls that are not bind/listen/connect: the cost every other process pays, at its
/// worst (the cheapest system call there is).
void OtherSyscallLoop(int iterations) {
  for (int i = 0; i < iterations * 20; ++i) {
    (void)::getppid();
  }
}

/// A process doing real work through system calls, none of them bind/listen/connect: 64-byte
/// request/response round trips over an established loopback TCP connection to an echo thread
/// (write, read on each side). The connection is made once, outside the timed loop.
void EchoLoop(int iterations) {
  static constexpr uint16_t kEchoPort = 18095;
  static UniqueFd listener = portwatch::testing::Listen("127.0.0.1", kEchoPort);
  UniqueFd client = portwatch::testing::Connect(SOCK_STREAM, "127.0.0.1", kEchoPort);
  UniqueFd server = portwatch::testing::Accept(listener);
  const int nodelay = 1;
  ::setsockopt(client.Get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
  ::setsockopt(server.Get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
  const int round_trips = iterations * 2;
  std::thread echo([&server, round_trips] {
    char buffer[64];
    for (int i = 0; i < round_trips; ++i) {
      if (::read(server.Get(), buffer, sizeof(buffer)) <= 0 ||
          ::write(server.Get(), buffer, sizeof(buffer)) != sizeof(buffer)) {
        return;
      }
    }
  });
  char message[64] = {};
  for (int i = 0; i < round_trips; ++i) {
    if (::write(client.Get(), message, sizeof(message)) != sizeof(message) ||
        ::read(client.Get(), message, sizeof(message)) <= 0) {
      break;
    }
  }
  echo.join();
}

double Seconds(void (*loop)(int), int iterations) {
  const auto start = std::chrono::steady_clock::now();
  loop(iterations);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  int iterations = 50000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--rounds=", 0) == 0) {
      rounds = std::max(1, std::atoi(arg.c_str() + 9));
    } else if (arg.rfind("--iterations=", 0) == 0) {
      iterations = std::max(1, std::atoi(arg.c_str() + 13));
    } else {
      std::fprintf(stderr, "usage: %s [--rounds=N] [--iterations=N]\n", argv[0]);
      return 2;
    }
  }
  const std::string error = portwatch::testing::EnterPrivateNetworkNamespace();
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  UniqueFd busy = portwatch::testing::Listen("127.0.0.1", kBusyPort);
  UniqueFd server = portwatch::testing::Listen("127.0.0.1", kServerPort);
  if (!busy.Valid() || !server.Valid()) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1:%u/%u\n", kBusyPort, kServerPort);
    return 1;
  }
  using portwatch::BindEventsAttach;
  struct Path {
    const char* name;
    BindEventsAttach attach;
  };
  std::vector<Path> paths;
  for (const Path& path :
       {Path{"fexit", BindEventsAttach::kFexit}, Path{"tracepoint", BindEventsAttach::kTracepoint},
        Path{"raw_tracepoint", BindEventsAttach::kRawTracepoint}}) {
    auto probe = portwatch::OpenKernelBindEventSource({path.attach}, nullptr);
    if (probe->Available()) {
      paths.push_back(path);
    } else {
      std::printf("  %s: unavailable (%s)\n", path.name, probe->UnavailableReason().c_str());
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr, "eBPF unavailable\n");
    return 1;
  }
  struct Case {
    const char* name;
    void (*loop)(int);
    std::vector<double> detached;
    std::vector<std::vector<double>> attached;  // per path
  };
  std::vector<Case> cases = {
      {"bind/connect loop (3 socket calls + 1 failure per iteration)",
       BindConnectLoop<true>,
       {},
       {}},
      {"bind/connect loop (3 socket calls, no failure)", BindConnectLoop<false>, {}, {}},
      {"getppid loop (no bind/listen/connect)", OtherSyscallLoop, {}, {}},
      {"loopback TCP echo, 64 B round trips (no bind/listen/connect)", EchoLoop, {}, {}}};
  std::vector<uint64_t> counted(paths.size(), 0);
  for (Case& c : cases) {
    c.attached.resize(paths.size());
    c.loop(iterations / 10);  // warm-up
    for (int round = 0; round < rounds; ++round) {
      c.detached.push_back(Seconds(c.loop, iterations));
      for (size_t p = 0; p < paths.size(); ++p) {
        auto source = portwatch::OpenKernelBindEventSource({paths[p].attach}, nullptr);
        c.attached[p].push_back(Seconds(c.loop, iterations));
        for (const auto& [key, count] : source->ReadCounts()) {
          counted[p] += key.port == kBusyPort ? count : 0;
        }
      }  // the source is destroyed: detached again
    }
  }
  std::printf("bind_events overhead: %d rounds x %d iterations, median seconds\n", rounds,
              iterations);
  for (const Case& c : cases) {
    const double detached = Median(c.detached);
    std::printf("  %s: detached %.4f\n", c.name, detached);
    for (size_t p = 0; p < paths.size(); ++p) {
      const double attached = Median(c.attached[p]);
      std::printf("    %-16s attached %.4f  ratio %.3f (%+.1f%%)\n", paths[p].name, attached,
                  attached / detached, (attached / detached - 1) * 100);
    }
  }
  // The bind loop's failures, once per round and path.
  const uint64_t expected = static_cast<uint64_t>(rounds) * iterations;
  bool exact = true;
  for (size_t p = 0; p < paths.size(); ++p) {
    std::printf("  %s: failures counted while attached: %llu (expected %llu)\n", paths[p].name,
                static_cast<unsigned long long>(counted[p]),
                static_cast<unsigned long long>(expected));
    exact = exact && counted[p] == expected;
  }
  return exact ? 0 : 1;
}
