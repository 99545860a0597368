// What a walk of the socket table costs the node's busy sockets: the BPF socket iterator owns
// each socket while its program runs (lock_sock), sock_diag holds each hash bucket's lock while it
// formats the bucket. Measured in a private network namespace holding a large table (SocketFarm):
// round trips of one byte on an established loopback connection and connect()+accept() on a
// listener, their p50, p99 and max, with nothing else running, while another thread walks the
// table through the iterators in a loop, and while it dumps it through sock_diag in a loop.
//
//   portwatch_walk_latency_bench [SIZE] [--samples=N]     SIZE default 100k, N default 20000
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "collectors/socket_source/iterator_walk.h"
#include "collectors/socket_source/socket_iterators.h"
#include "tests/bench/common.h"
#include "tests/bench/probes.h"
#include "tests/bench/socket_farm.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::bench {
namespace {

using testing::UniqueFd;

constexpr uint16_t kEchoPort = 4000;
constexpr uint16_t kAcceptPort = 4001;

struct Percentiles {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

Percentiles Of(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const auto at = [&samples](double share) {
    return samples[std::min(samples.size() - 1, static_cast<size_t>(share * samples.size()))];
  };
  return {at(0.5), at(0.99), samples.back()};
}

std::string Us(double seconds) { return Format("%.1f us", seconds * 1e6); }

/// One byte there and back on an established connection whose other end echoes it, `samples`
/// times: the round trips' durations.
std::vector<double> RoundTrips(int client, int server, int samples) {
  std::vector<double> durations;
  durations.reserve(samples);
  char byte = 'x';
  for (int i = 0; i < samples; ++i) {
    const double start = Now();
    if (::write(client, &byte, 1) != 1 || ::read(server, &byte, 1) != 1 ||
        ::write(server, &byte, 1) != 1 || ::read(client, &byte, 1) != 1) {
      break;
    }
    durations.push_back(Now() - start);
  }
  return durations;
}

/// connect() and accept() of a new loopback connection (reset on close: no TIME_WAIT piles up).
std::vector<double> Connects(const UniqueFd& listener, int samples) {
  std::vector<double> durations;
  durations.reserve(samples);
  const linger reset{1, 0};
  for (int i = 0; i < samples; ++i) {
    const double start = Now();
    UniqueFd client = testing::Connect(SOCK_STREAM, "127.0.0.1", kAcceptPort);
    UniqueFd server = testing::Accept(listener);
    durations.push_back(Now() - start);
    ::setsockopt(client.Get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    if (!client.Valid() || !server.Valid()) {
      break;
    }
  }
  return durations;
}

}  // namespace
}  // namespace portwatch::bench

int main(int argc, char** argv) {
  using namespace portwatch;
  using namespace portwatch::bench;
  uint64_t size = 100000;
  int samples = 20000;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument.rfind("--samples=", 0) == 0) {
      samples = std::max(100, std::atoi(argument.c_str() + 10));
    } else if (!ParseSize(argument, size)) {
      std::fprintf(stderr, "usage: %s [SIZE] [--samples=N]\n", argv[0]);
      return 2;
    }
  }
  if (const std::string error = testing::EnterPrivateNetworkNamespace(); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  Result<std::shared_ptr<const SocketIterators>> iterators = SocketIterators::Load();
  if (!iterators) {
    std::fprintf(stderr, "%s\n", iterators.Error().c_str());
    return 1;
  }
  SocketFarm farm;
  const SocketFarm::Layout layout = SocketFarm::PlanLayout({size, 0}, Ipv6Loopback());
  if (const std::string error = farm.Establish(layout, 300); !error.empty()) {
    std::fprintf(stderr, "building the table: %s\n", error.c_str());
    return 1;
  }
  UniqueFd echo_listener = testing::Listen("127.0.0.1", kEchoPort);
  UniqueFd client = testing::Connect(SOCK_STREAM, "127.0.0.1", kEchoPort);
  UniqueFd server = testing::Accept(echo_listener);
  UniqueFd accept_listener = testing::Listen("127.0.0.1", kAcceptPort);
  const int on = 1;
  ::setsockopt(client.Get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  ::setsockopt(server.Get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  Say("portwatch walk latency bench: " + HumanCount(size) + " sockets, " + std::to_string(samples) +
      " samples per case");

  const netlink::DumpRequest everything{
      netlink::Protocol::kTcp, netlink::Family::kIpv4, netlink::kAllStates, {}, true};
  for (const std::string walker : {"none", "iterator", "sock_diag"}) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> walks{0};
    std::thread background([&] {
      while (!stop.load() && walker != "none") {
        if (walker == "iterator") {
          Result<netlink::UniqueFd> fd = (*iterators)->Create(netlink::Protocol::kTcp);
          if (!fd) {
            break;
          }
          ReadIteratorWalk(
              [&fd](std::span<std::byte> buffer) -> ssize_t {
                const ssize_t got = ::read(fd->Get(), buffer.data(), buffer.size());
                return got >= 0 ? got : -errno;
              },
              everything, [](const netlink::SocketRecord&) {});
        } else {
          BareTcpDump(netlink::kAllStates);
        }
        walks.fetch_add(1);
      }
    });
    const double start = Now();
    const Percentiles round_trip = Of(RoundTrips(client.Get(), server.Get(), samples));
    const Percentiles connect = Of(Connects(accept_listener, samples / 10));
    const double seconds = Now() - start;
    stop = true;
    background.join();
    Say("walks: " + walker + " (" + std::to_string(walks.load()) + " in " +
        Format("%.1f s", seconds) + "): round trip p50 " + Us(round_trip.p50) + ", p99 " +
        Us(round_trip.p99) + ", max " + Us(round_trip.max) + "; connect+accept p50 " +
        Us(connect.p50) + ", p99 " + Us(connect.p99) + ", max " + Us(connect.max));
  }
  return 0;
}
