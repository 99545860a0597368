// portwatch_pods_bench: what counting every pod's sockets (collectors.sockets.pods) costs a
// scrape, measured against a bare host-wide sock_diag dump timed in the same run. Run it through
// `cmake --build build --target bench` (after the other benchmarks) or directly; it needs root.
//
//   portwatch_pods_bench [--quick] [--pods=1,10,100] [--hash=both|shared|private] [--runs=N]
//                        [--time-wait-share=F] [--backend=auto|netlink|bpf] [--verbose] [SIZE...]
//     SIZE: TCP sockets in the host namespace, 10000, 100k, 1M, ... (default 100k 1M);
//     --quick: 10k sockets, 1 and 10 pods, 5 runs (about a minute);
//     --backend: both exporters' collectors.sockets.backend (the node's and the pods' walks).
//
// Every size runs in a child process of its own (own process group, killed when it ends, fails
// or overruns) that makes a private PID and mount namespace (its own /proc, so the exporter sees
// only the benchmark's processes, never another test's pods) and, inside it, a private network
// namespace: "the host". There it builds the bulk of the socket table (SocketFarm, established
// connections held by worker processes), then runs each case: N fake pods (a process in a network
// namespace of its own, in a cgroup named as the kubelet's cgroupfs driver names it, with a
// listener and a few connections, named by a /var/log/pods-like directory), created with the
// host's net.ipv4.tcp_child_ehash_entries at 0 (pods share the node's TCP hash) or set (each pod
// gets a private hash). Two real exporters run in the host namespace, one with pods off and one
// with pods on. After the first scrape with pods on, and once no pod is pending, the benchmark
// times interleaved rounds of: a bare dump, a scrape with pods off, a scrape with pods on (the
// order rotates), and checks every pod's counts in every scrape. It reports medians, ratios to
// the bare dump, the oldest pod reading, and both exporters' VmHWM.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/common.h"
#include "tests/bench/probes.h"
#include "tests/bench/socket_farm.h"
#include "tests/support/child.h"
#include "tests/support/exporter_process.h"
#include "tests/support/fake_pods.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::bench {
namespace {

namespace fs = std::filesystem;
using testing::CgroupfsRoot;
using testing::NewPodUid;
using testing::RandomHex;
using testing::UniqueFd;

constexpr uint16_t kPodsOnPort = 9792;  // both outside the host's ephemeral range
constexpr uint16_t kPodsOffPort = 9793;
constexpr const char* kEphemeralRange = "10000 65000";
/// net.ipv4.tcp_child_ehash_entries for the private-hash cases (rounded up to a power of two).
constexpr const char* kChildEhashEntries = "1024";
/// Pod i listens on kFirstPodPort + i.
constexpr uint16_t kFirstPodPort = 7000;
constexpr const char* kPodNamespace = "bench";
constexpr double kSizeTimeoutSeconds = 3600;
/// Settling: scrapes until no pod is pending, at most 2N + 20 of them and this long.
constexpr double kSettleSeconds = 900;

struct Options {
  std::vector<uint64_t> sizes;
  std::vector<int> pods;
  bool shared = true;
  bool private_hash = true;
  int runs = 9;
  double time_wait_share = 0;
  std::string backend = "auto";  ///< collectors.sockets.backend of both exporters
  bool verbose = false;
};

/// One case's numbers, sent from the size's process to the parent through a pipe (plain data).
struct CaseResult {
  bool ok = false;
  char error[512] = {};
  uint64_t requested = 0;
  bool private_hash = false;
  int pods = 0;
  double pods_start_seconds = 0;  ///< making the pods
  uint64_t host_tcp = 0;          ///< TCP sockets the host's bare dump saw (median run)
  double first_scrape = 0;        ///< the first scrape with pods on (every pod unknown)
  double first_off = 0;           ///< the first scrape with pods off, for comparison
  double first_pending = 0;       ///< pods still pending after it
  int settle_scrapes = 0;         ///< scrapes after the first until none was pending
  double settle_seconds = 0;
  int runs = 0;
  double bare = 0;  ///< medians, wall clock
  double off = 0;
  double on = 0;
  double on_max = 0;
  double on_collector = 0;   ///< the exporter's own sockets collector duration, pods on
  double off_collector = 0;  ///< the same, pods off
  double on_ratio = 0;       ///< median over rounds of (scrape with pods) / (bare dump)
  double off_ratio = 0;
  double bare_cpu = 0;  ///< medians, CPU time
  double off_cpu = 0;
  double on_cpu = 0;
  double pods_read = 0;       ///< median count of pods read by a timed scrape (age 0)
  double max_age = 0;         ///< oldest pod reading over every timed scrape, seconds
  bool counts_exact = false;  ///< every pod's counts right in every scrape after settling
  bool all_fresh = false;     ///< every pod read by every timed scrape
  char mismatch[256] = {};
  uint64_t body_bytes = 0;
  uint64_t on_hwm_kb = 0;
  uint64_t on_rss_kb = 0;
  uint64_t off_hwm_kb = 0;
  uint64_t off_rss_kb = 0;
};

std::string MiB(uint64_t kb) { return Format("%.1f MiB", static_cast<double>(kb) / 1024.0); }

std::string Ratio(double a, double b) { return b > 0 ? Format("%.2fx", a / b) : "-"; }

/// What one pod read cost, from the difference of two medians (seconds) over the pods read.
std::string PerPod(double extra_seconds, double pods_read) {
  return pods_read > 0 ? Format("%.0f us", extra_seconds / pods_read * 1e6) : "-";
}

void Copy(char* to, size_t size, const std::string& text) {
  std::snprintf(to, size, "%s", text.c_str());
}

bool ParsePods(const std::string& text, std::vector<int>& pods) {
  pods.clear();
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    const int n = std::atoi(item.c_str());
    if (n < 1 || n > 500) {
      return false;
    }
    pods.push_back(n);
  }
  return !pods.empty();
}

bool ParseOptions(int argc, char** argv, Options& options) {
  bool quick = false;
  bool pods_given = false;
  bool runs_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    uint64_t size = 0;
    if (argument == "--quick") {
      quick = true;
    } else if (argument.rfind("--pods=", 0) == 0) {
      if (!ParsePods(argument.substr(7), options.pods)) {
        return false;
      }
      pods_given = true;
    } else if (argument.rfind("--hash=", 0) == 0) {
      const std::string hash = argument.substr(7);
      options.shared = hash == "both" || hash == "shared";
      options.private_hash = hash == "both" || hash == "private";
      if (!options.shared && !options.private_hash) {
        return false;
      }
    } else if (argument.rfind("--runs=", 0) == 0) {
      options.runs = std::atoi(argument.c_str() + 7);
      runs_given = true;
      if (options.runs < 1 || options.runs > 101) {
        return false;
      }
    } else if (argument.rfind("--time-wait-share=", 0) == 0) {
      options.time_wait_share = std::strtod(argument.c_str() + 18, nullptr);
      if (!(options.time_wait_share >= 0 && options.time_wait_share <= 0.5)) {
        return false;
      }
    } else if (argument.rfind("--backend=", 0) == 0) {
      options.backend = argument.substr(10);
      if (options.backend != "auto" && options.backend != "netlink" && options.backend != "bpf") {
        return false;
      }
    } else if (argument == "--verbose" || argument == "-v") {
      options.verbose = true;
    } else if (ParseSize(argument, size)) {
      options.sizes.push_back(size);
    } else {
      return false;
    }
  }
  if (options.sizes.empty()) {
    options.sizes = quick ? std::vector<uint64_t>{10000} : std::vector<uint64_t>{100000, 1000000};
  }
  if (!pods_given) {
    options.pods = quick ? std::vector<int>{1, 10} : std::vector<int>{1, 10, 100};
  }
  if (quick && !runs_given) {
    options.runs = 5;
  }
  return true;
}

// ---- cgroups -------------------------------------------------------------------------------

/// Removes an empty cgroup directory; the kernel may hold on to it briefly after its last
/// process was reaped (bounded retries). True when it is gone.
bool RemoveCgroup(const fs::path& path) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) {
      return true;
    }
    if (errno != EBUSY) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// Removes a tree of (empty) cgroup directories, deepest first. Bounded by the tree's size.
void RemoveCgroupTree(const fs::path& root) {
  std::error_code error;
  if (!fs::exists(root, error)) {
    return;
  }
  std::vector<fs::path> directories;
  for (auto it = fs::recursive_directory_iterator(root, error);
       !error && it != fs::recursive_directory_iterator() && directories.size() < 100000;
       it.increment(error)) {
    if (it->is_directory(error) && !it->is_symlink(error)) {
      directories.push_back(it->path());
    }
  }
  std::sort(directories.begin(), directories.end(), [](const fs::path& a, const fs::path& b) {
    return a.native().size() > b.native().size();
  });
  for (const fs::path& directory : directories) {
    RemoveCgroup(directory);
  }
  RemoveCgroup(root);
}

// ---- fake pods -----------------------------------------------------------------------------

/// What a pod holds and what the exporter must count for it.
struct PodSpec {
  std::string name;
  uint16_t port = 0;
  int connections = 0;  ///< each: a client end (ephemeral port) and a server end (`port`)
  int Sockets() const { return 1 + 2 * connections; }
};

/// N fake pods: each a process in a network namespace of its own, in a cgroup
/// <base>/kubepods/besteffort/pod<uid>/<64 hex> (the kubelet's cgroupfs names below a prefix of
/// the benchmark's own), named by <logs>/<namespace>_<pod>_<uid>. The destructor kills and reaps
/// the processes and removes the cgroups and the log directories.
class PodSet {
 public:
  PodSet(const fs::path& cgroup_base, const fs::path& logs) : base_(cgroup_base), logs_(logs) {}
  ~PodSet() {
    for (Pod& pod : pods_) {
      pod.process.reset();  // SIGKILL and reaped: the cgroup is empty
      for (auto made = pod.made.rbegin(); made != pod.made.rend(); ++made) {
        RemoveCgroup(*made);
      }
      std::error_code error;
      fs::remove_all(pod.log_dir, error);
    }
  }
  PodSet(const PodSet&) = delete;
  PodSet& operator=(const PodSet&) = delete;

  /// Starts pod `index`; returns an error, empty on success. `private_hash`: the pod checks that
  /// its namespace got a TCP hash of its own (net.ipv4.tcp_ehash_entries > 0), or else that it
  /// shares the node's.
  std::string Start(int index, bool private_hash, std::mt19937_64& random) {
    char name[32];
    std::snprintf(name, sizeof(name), "pod-%03d", index);
    PodSpec spec{name, static_cast<uint16_t>(kFirstPodPort + index), 1 + index % 3};
    Pod& pod = pods_.emplace_back();
    const std::string uid = NewPodUid(random);
    fs::path path = base_;
    for (const fs::path& part :
         fs::path("kubepods") / "besteffort" / ("pod" + uid) / RandomHex(random, 64)) {
      path /= part;
      std::error_code error;
      if (!fs::exists(path, error)) {
        if (!fs::create_directory(path, error)) {
          return "cannot make cgroup " + path.string() + ": " + error.message();
        }
        pod.made.push_back(path);
      }
    }
    const std::string procs = (path / "cgroup.procs").string();
    pod.process = std::make_unique<testing::ChildProcess>(
        spec.name, [procs, spec, private_hash](std::vector<UniqueFd>& keep) {
          if (!testing::EnterPrivateNetworkNamespace().empty()) {
            ::_exit(3);
          }
          long long ehash = 0;  // NOLINT(runtime/int)
          std::ifstream("/proc/sys/net/ipv4/tcp_ehash_entries") >> ehash;
          if (private_hash != (ehash > 0)) {
            ::_exit(4);
          }
          {
            std::ofstream cgroup(procs);
            cgroup << ::getpid() << "\n";
            cgroup.close();
            if (!cgroup) {
              ::_exit(5);
            }
          }
          UniqueFd listener = testing::Listen("127.0.0.1", spec.port);
          if (!listener.Valid()) {
            ::_exit(6);
          }
          const linger abortive{1, 0};  // reset at exit: no TIME_WAIT left behind
          for (int i = 0; i < spec.connections; ++i) {
            UniqueFd client = testing::Connect(SOCK_STREAM, "127.0.0.1", spec.port);
            UniqueFd server = testing::Accept(listener);
            if (!client.Valid() || !server.Valid()) {
              ::_exit(7);
            }
            ::setsockopt(client.Get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
            ::setsockopt(server.Get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
            keep.push_back(std::move(client));
            keep.push_back(std::move(server));
          }
          keep.push_back(std::move(listener));
        });
    if (!pod.process->Ready()) {
      return "pod " + spec.name +
             " did not start (no network namespace, wrong TCP hash kind, cgroup or sockets)";
    }
    pod.log_dir = logs_ / (std::string(kPodNamespace) + "_" + spec.name + "_" + uid);
    std::error_code error;
    if (!fs::create_directories(pod.log_dir, error)) {
      return "cannot make " + pod.log_dir.string() + ": " + error.message();
    }
    specs_.push_back(spec);
    return "";
  }

  const std::vector<PodSpec>& Specs() const { return specs_; }

 private:
  struct Pod {
    std::vector<fs::path> made;  ///< cgroup directories made for it, outermost first
    fs::path log_dir;
    std::unique_ptr<testing::ChildProcess> process;
  };
  fs::path base_;
  fs::path logs_;
  std::vector<Pod> pods_;
  std::vector<PodSpec> specs_;
};

// ---- scrapes -------------------------------------------------------------------------------

struct PodsScrape {
  double seconds = 0;
  double cpu = 0;
  double collector = 0;
  uint64_t host_tcp = 0;
  double pending = 0;
  double collected = 0;
  double failed = 0;
  double max_age = 0;
  int fresh = 0;  ///< pods whose reading is from this scrape (age 0)
  int wrong = 0;  ///< pods whose counts are not what they hold
  std::string first_wrong;
  uint64_t bytes = 0;
  /// Every collector's own duration, "name=12.3ms ...": where a scrape's time goes (--verbose).
  std::string collectors;
  std::string error;
};

/// One timed scrape of the exporter on `port` (process `pid`), then its checks: the sockets
/// collector succeeded, and, given `pods`, every pod's counts (listener, established on its
/// port, established client ends on ephemeral ports, nothing else).
PodsScrape TimedScrape(uint16_t port, pid_t pid, const std::vector<PodSpec>* pods) {
  PodsScrape scrape;
  const double cpu_start = ProcessCpu(pid);
  const double start = Now();
  const HttpResult response = HttpGet(port, "/metrics", 300);
  scrape.seconds = Now() - start;
  scrape.cpu = ProcessCpu(pid) - cpu_start;
  if (response.status != 200) {
    scrape.error = "scrape: HTTP " + std::to_string(response.status) + " " + response.error;
    return scrape;
  }
  scrape.bytes = response.body.size();
  const testing::Exposition metrics(response.body);
  if (metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}).value_or(0) !=
      1) {
    scrape.error = "scrape: the sockets collector failed";
    return scrape;
  }
  scrape.collector =
      metrics.Value("portwatch_scrape_collector_duration_seconds", {{"collector", "sockets"}})
          .value_or(0);
  const std::string duration_prefix = "portwatch_scrape_collector_duration_seconds{";
  for (auto it = metrics.Samples().lower_bound(duration_prefix);
       it != metrics.Samples().end() && it->first.rfind(duration_prefix, 0) == 0; ++it) {
    const size_t name = it->first.find("collector=\"");
    if (name != std::string::npos) {
      const size_t begin = name + 11;
      scrape.collectors +=
          it->first.substr(begin, it->first.find('"', begin) - begin) + "=" + Ms(it->second) + " ";
    }
  }
  for (const char* family : {"ipv4", "ipv6"}) {
    scrape.host_tcp += static_cast<uint64_t>(
        metrics.Value("portwatch_scrape_sockets_read", {{"family", family}, {"protocol", "tcp"}})
            .value_or(0));
  }
  if (pods == nullptr) {
    return scrape;
  }
  scrape.pending =
      metrics.Value("portwatch_pod_network_namespaces", {{"state", "pending"}}).value_or(-1);
  scrape.collected =
      metrics.Value("portwatch_pod_network_namespaces", {{"state", "collected"}}).value_or(-1);
  scrape.failed =
      metrics.Value("portwatch_pod_network_namespaces", {{"state", "failed"}}).value_or(-1);
  const std::string age_prefix = "portwatch_pod_sockets_age_seconds{";
  for (auto it = metrics.Samples().lower_bound(age_prefix);
       it != metrics.Samples().end() && it->first.rfind(age_prefix, 0) == 0; ++it) {
    scrape.max_age = std::max(scrape.max_age, it->second);
    scrape.fresh += it->second == 0 ? 1 : 0;
  }
  for (const PodSpec& pod : *pods) {
    const auto count = [&](const std::string& port_label, const char* state) {
      return metrics
          .Value("portwatch_sockets", {{"family", "ipv4"},
                                       {"namespace", kPodNamespace},
                                       {"pod", pod.name},
                                       {"port", port_label},
                                       {"protocol", "tcp"},
                                       {"state", state}})
          .value_or(-1);
    };
    const std::string own_port = std::to_string(pod.port);
    const double listen = count(own_port, "listen");
    const double served = count(own_port, "established");
    const double clients = count("ephemeral", "established");
    const double total = metrics.Sum("portwatch_sockets", {{"pod", pod.name}});
    if (listen != 1 || served != pod.connections || clients != pod.connections ||
        total != pod.Sockets()) {
      if (scrape.wrong++ == 0) {
        scrape.first_wrong = pod.name + ": listen " + Format("%g", listen) + ", established " +
                             Format("%g", served) + " + " + Format("%g", clients) + ", total " +
                             Format("%g", total) + " (want 1, " + std::to_string(pod.connections) +
                             " + " + std::to_string(pod.connections) + ", " +
                             std::to_string(pod.Sockets()) + ")";
      }
    }
  }
  return scrape;
}

std::string StartExporter(testing::ExporterProcess& exporter, uint16_t port) {
  if (exporter.WaitReady(port)) {
    return "";
  }
  const int code = exporter.WaitExit(0);
  return "exporter on port " + std::to_string(port) + ": " +
         (code != -1 ? "exited with status " + std::to_string(code)
                     : std::string("not ready after 10 s")) +
         ": " + exporter.Log();
}

/// The paths a size's process works with, made (and swept) by the parent.
struct Paths {
  fs::path temp;         ///< config files, pod log directory
  fs::path cgroup_base;  ///< below the cgroupfs root: the pods' cgroups
};

/// One case inside the size's host namespace, whose table is built: N pods, both exporters,
/// the first scrape, settling, timed rounds.
void RunCase(uint64_t size, bool private_hash, int pod_count, const Options& options,
             const Paths& paths, std::mt19937_64& random, CaseResult& result) {
  result.requested = size;
  result.private_hash = private_hash;
  result.pods = pod_count;
  const std::string label = "[" + HumanCount(size) + ", " + (private_hash ? "private" : "shared") +
                            " hash, " + std::to_string(pod_count) + " pods] ";
  const auto fail = [&result](const std::string& error) {
    Copy(result.error, sizeof(result.error), error);
  };
  // Read by the kernel when a namespace is created: set before the pods are.
  if (std::string error = testing::WriteSysctl("net/ipv4/tcp_child_ehash_entries",
                                               private_hash ? kChildEhashEntries : "0");
      !error.empty() && private_hash) {
    return fail(error + " (private TCP hashes need Linux 6.1+)");
  }

  const fs::path logs = paths.temp / "pods";
  PodSet pods(paths.cgroup_base, logs);  // outlives both exporters (declared first)
  double start = Now();
  for (int i = 0; i < pod_count; ++i) {
    if (std::string error = pods.Start(i, private_hash, random); !error.empty()) {
      return fail(error);
    }
  }
  result.pods_start_seconds = Now() - start;

  const fs::path on_config = paths.temp / "pods-on.yaml";
  const fs::path off_config = paths.temp / "pods-off.yaml";
  std::ofstream(on_config) << "collectors:\n  sockets:\n    pods: true\n    pod_logs_dir: "
                           << logs.string() << "\n    backend: " << options.backend << "\n";
  std::ofstream(off_config) << "collectors:\n  sockets:\n    pods: false\n    backend: "
                            << options.backend << "\n";
  testing::ExporterProcess off(PORTWATCH_EXPORTER_BINARY,
                               {"--web.listen-address=127.0.0.1:" + std::to_string(kPodsOffPort),
                                "--config.file=" + off_config.string()});
  testing::ExporterProcess on(PORTWATCH_EXPORTER_BINARY,
                              {"--web.listen-address=127.0.0.1:" + std::to_string(kPodsOnPort),
                               "--config.file=" + on_config.string()});
  for (const auto& [exporter, port] :
       {std::pair{&off, kPodsOffPort}, std::pair{&on, kPodsOnPort}}) {
    if (std::string error = StartExporter(*exporter, port); !error.empty()) {
      return fail(error);
    }
  }
  const std::vector<PodSpec>& specs = pods.Specs();

  // Warm-up of the rest: the pods-off exporter and the bare dump.
  const PodsScrape warm = TimedScrape(kPodsOffPort, off.Pid(), nullptr);
  if (!warm.error.empty()) {
    return fail(warm.error + "\n" + off.Log());
  }
  result.first_off = warm.seconds;
  if (BareDumpResult bare = BareTcpDump(kClassicTcpStates); !bare.error.empty()) {
    return fail(bare.error);
  }

  // The first scrape with pods on: every pod is new (namespaces entered, sockets opened).
  PodsScrape scrape = TimedScrape(kPodsOnPort, on.Pid(), &specs);
  if (!scrape.error.empty()) {
    return fail(scrape.error + "\n" + on.Log());
  }
  result.first_scrape = scrape.seconds;
  result.first_pending = scrape.pending;
  start = Now();
  for (int attempt = 0;
       scrape.pending != 0 && attempt < 2 * pod_count + 20 && Now() - start < kSettleSeconds;
       ++attempt) {
    scrape = TimedScrape(kPodsOnPort, on.Pid(), &specs);
    if (!scrape.error.empty()) {
      return fail(scrape.error + "\n" + on.Log());
    }
    result.settle_scrapes++;
  }
  result.settle_seconds = Now() - start;
  if (scrape.pending != 0 || scrape.collected != pod_count || scrape.failed != 0) {
    return fail("pods did not settle after " + std::to_string(result.settle_scrapes) +
                " scrapes: pending " + Format("%g", scrape.pending) + ", collected " +
                Format("%g", scrape.collected) + ", failed " + Format("%g", scrape.failed) +
                " of " + std::to_string(pod_count));
  }
  Say(label + "pods up in " + Format("%.1f s", result.pods_start_seconds) + "; first scrape " +
      Ms(result.first_scrape) + " (" + Format("%g", result.first_pending) +
      " pending after it; first with pods off " + Ms(result.first_off) + "), settled after " +
      std::to_string(result.settle_scrapes) + " more scrapes in " +
      Format("%.1f s", result.settle_seconds));

  // Timed rounds: bare dump, scrape with pods off, scrape with pods on, the order rotating.
  std::vector<double> bares, offs, ons, collectors, off_collectors, bare_cpu, off_cpu, on_cpu, read,
      on_ratios, off_ratios;
  std::vector<uint64_t> host_tables;
  result.counts_exact = scrape.wrong == 0;
  if (scrape.wrong != 0) {
    Copy(result.mismatch, sizeof(result.mismatch), scrape.first_wrong);
  }
  result.all_fresh = true;
  for (int run = 0; run < options.runs; ++run) {
    double round[3] = {};
    std::string breakdown[3];
    for (int step = 0; step < 3; ++step) {
      const int what = (run + step) % 3;
      if (what == 0) {
        const double cpu_start = ThreadCpu();
        const double bare_start = Now();
        const BareDumpResult bare = BareTcpDump(kClassicTcpStates);
        round[0] = Now() - bare_start;
        bare_cpu.push_back(ThreadCpu() - cpu_start);
        if (!bare.error.empty()) {
          return fail(bare.error);
        }
        host_tables.push_back(bare.messages);
      } else if (what == 1) {
        const PodsScrape s = TimedScrape(kPodsOffPort, off.Pid(), nullptr);
        if (!s.error.empty()) {
          return fail(s.error);
        }
        round[1] = s.seconds;
        off_cpu.push_back(s.cpu);
        off_collectors.push_back(s.collector);
        breakdown[1] = s.collectors;
      } else {
        const PodsScrape s = TimedScrape(kPodsOnPort, on.Pid(), &specs);
        if (!s.error.empty()) {
          return fail(s.error);
        }
        round[2] = s.seconds;
        on_cpu.push_back(s.cpu);
        collectors.push_back(s.collector);
        breakdown[2] = s.collectors;
        read.push_back(s.fresh);
        result.max_age = std::max(result.max_age, s.max_age);
        result.body_bytes = s.bytes;
        if (s.fresh != pod_count) {
          result.all_fresh = false;
        }
        if (s.wrong != 0 || s.pending != 0 || s.collected != pod_count || s.failed != 0) {
          if (result.counts_exact) {
            Copy(result.mismatch, sizeof(result.mismatch),
                 s.wrong != 0
                     ? s.first_wrong
                     : "pods pending " + Format("%g", s.pending) + ", collected " +
                           Format("%g", s.collected) + ", failed " + Format("%g", s.failed));
          }
          result.counts_exact = false;
        }
      }
    }
    bares.push_back(round[0]);
    offs.push_back(round[1]);
    ons.push_back(round[2]);
    on_ratios.push_back(round[2] / round[0]);
    off_ratios.push_back(round[1] / round[0]);
    result.runs = run + 1;
    if (options.verbose) {
      Say(label + "run " + std::to_string(run + 1) + ": bare " + Ms(round[0]) + ", pods off " +
          Ms(round[1]) + ", pods on " + Ms(round[2]) + " (" + Format("%g", read.back()) +
          " pods read, collector " + Ms(collectors.back()) + ")");
      Say(label + "  collectors, pods off: " + breakdown[1]);
      Say(label + "  collectors, pods on:  " + breakdown[2]);
    }
  }
  result.bare = Median(bares);
  result.off = Median(offs);
  result.on = Median(ons);
  result.on_max = *std::max_element(ons.begin(), ons.end());
  result.on_collector = Median(collectors);
  result.off_collector = Median(off_collectors);
  result.on_ratio = Median(on_ratios);
  result.off_ratio = Median(off_ratios);
  result.bare_cpu = Median(bare_cpu);
  result.off_cpu = Median(off_cpu);
  result.on_cpu = Median(on_cpu);
  result.pods_read = Median(read);
  std::sort(host_tables.begin(), host_tables.end());
  result.host_tcp = host_tables[host_tables.size() / 2];
  result.on_hwm_kb = ProcStatusKb(on.Pid(), "VmHWM");
  result.on_rss_kb = ProcStatusKb(on.Pid(), "VmRSS");
  result.off_hwm_kb = ProcStatusKb(off.Pid(), "VmHWM");
  result.off_rss_kb = ProcStatusKb(off.Pid(), "VmRSS");
  result.ok = true;
  Say(label + std::to_string(result.runs) + " runs: bare " + Ms(result.bare) + ", pods off " +
      Ms(result.off) + ", pods on " + Ms(result.on) + " (max " + Ms(result.on_max) +
      ", sockets collector " + Ms(result.on_collector) + ", pods off " + Ms(result.off_collector) +
      ", " + Format("%g", result.pods_read) + " pods read per scrape, oldest reading " +
      Format("%.2f s", result.max_age) + "); on/bare " + Format("%.2fx", result.on_ratio) +
      ", off/bare " + Format("%.2fx", result.off_ratio) + "; counts " +
      (result.counts_exact ? "exact" : std::string("WRONG: ") + result.mismatch) + "; VmHWM on " +
      MiB(result.on_hwm_kb) + ", off " + MiB(result.off_hwm_kb));
}

/// Writes one result to the parent.
void Report(int fd, const CaseResult& result) {
  [[maybe_unused]] const ssize_t written = ::write(fd, &result, sizeof(result));
}

/// One size, in the process that is PID 1 of a fresh PID namespace (everything it starts dies
/// with it): its own /proc, the host network namespace, the table, every case.
int RunSize(uint64_t size, const Options& options, const Paths& paths, int report) {
  const auto fail_all = [&](const std::string& error) {
    for (const bool private_hash : {false, true}) {
      if (private_hash ? !options.private_hash : !options.shared) {
        continue;
      }
      for (const int pods : options.pods) {
        CaseResult result;
        result.requested = size;
        result.private_hash = private_hash;
        result.pods = pods;
        Copy(result.error, sizeof(result.error), error);
        Report(report, result);
      }
    }
    return 1;
  };
  ::signal(SIGPIPE, SIG_IGN);
  // A /proc of our own: the exporter lists only the benchmark's processes, not another run's
  // pods. Mounts made private first so nothing propagates to the real host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return fail_all(std::string("mounting a private /proc: ") + std::strerror(errno));
  }
  if (std::string error = testing::EnterPrivateNetworkNamespace(); !error.empty()) {
    return fail_all(error);
  }
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"net/ipv4/ip_local_port_range", kEphemeralRange},
           {"net/ipv4/tcp_max_tw_buckets", "4000000"},
           {"net/ipv4/tcp_tw_reuse", "0"},
           {"net/core/somaxconn", "4096"}}) {
    if (std::string error = testing::WriteSysctl(name, value); !error.empty()) {
      return fail_all(error);
    }
  }
  const std::string label = "[" + HumanCount(size) + "] ";
  SocketFarm farm;
  const SocketFarm::Layout layout =
      SocketFarm::PlanLayout({size, options.time_wait_share}, Ipv6Loopback());
  Say(label + "building: " + std::to_string(layout.established_connections) +
      " established connections (2 sockets each) in " + std::to_string(layout.workers) +
      " workers (" + std::to_string(layout.ipv6_workers) + " on ::1)" +
      (layout.time_wait > 0 ? ", then " + std::to_string(layout.time_wait) + " TIME_WAIT" : ""));
  const double start = Now();
  if (std::string error = farm.Establish(layout, 300); !error.empty()) {
    return fail_all("building the table: " + error);
  }
  if (layout.time_wait > 0) {
    if (std::string error = farm.AddTimeWait(120); !error.empty()) {
      return fail_all("adding TIME_WAIT: " + error);
    }
  }
  Say(label + "built in " + Format("%.1f s", Now() - start) + "; host table " +
      std::to_string(BareTcpDump(kClassicTcpStates).messages) + " TCP sockets");
  std::mt19937_64 random(std::random_device{}());
  int failures = 0;
  for (const bool private_hash : {false, true}) {
    if (private_hash ? !options.private_hash : !options.shared) {
      continue;
    }
    for (const int pods : options.pods) {
      CaseResult result;
      RunCase(size, private_hash, pods, options, paths, random, result);
      if (!result.ok) {
        failures++;
        Say(label + (private_hash ? "private" : "shared") + " hash, " + std::to_string(pods) +
            " pods: FAILED: " + result.error);
      }
      Report(report, result);
    }
  }
  testing::WriteSysctl("net/ipv4/tcp_child_ehash_entries", "0");
  return failures == 0 ? 0 : 1;
}

/// The running size's process group, for the signal handler.
volatile sig_atomic_t g_child_group = 0;

void KillChildAndExit(int signal_number) {
  if (g_child_group > 0) {
    ::kill(-g_child_group, SIGKILL);
  }
  ::_exit(128 + signal_number);
}

/// Runs one size in a child process (and process group) of its own, which makes a PID and mount
/// namespace and runs the size as its PID 1; bounded, always swept (processes, cgroups, temp
/// dir). Returns the cases' results.
std::vector<CaseResult> RunSizeInChild(uint64_t size, const Options& options) {
  std::vector<CaseResult> results;
  const auto failed = [&](const std::string& error) {
    CaseResult result;
    result.requested = size;
    Copy(result.error, sizeof(result.error), error);
    results.push_back(result);
    return results;
  };
  Paths paths;
  std::string temp = "/tmp/portwatch-pods-bench-XXXXXX";
  if (::mkdtemp(temp.data()) == nullptr) {
    return failed(std::string("mkdtemp: ") + std::strerror(errno));
  }
  paths.temp = temp;
  paths.cgroup_base = CgroupfsRoot() / ("portwatch-pods-bench-" + std::to_string(::getpid()));
  std::error_code error;
  fs::create_directories(paths.temp / "pods", error);
  if (!fs::create_directory(paths.cgroup_base, error)) {
    fs::remove_all(paths.temp, error);
    return failed("cannot make " + paths.cgroup_base.string() + ": " + error.message());
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    RemoveCgroupTree(paths.cgroup_base);
    fs::remove_all(paths.temp, error);
    return failed("pipe failed");
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(1);
    }
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::close(pipe_fds[0]);
    if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
      CaseResult result;
      result.requested = size;
      Copy(result.error, sizeof(result.error),
           std::string("unshare(CLONE_NEWPID | CLONE_NEWNS): ") + std::strerror(errno));
      Report(pipe_fds[1], result);
      ::_exit(1);
    }
    const pid_t init = ::fork();  // PID 1 of the new namespace: everything dies with it
    if (init == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int code = RunSize(size, options, paths, pipe_fds[1]);
      ::_exit(code);
    }
    int status = 0;
    while (init > 0 && ::waitpid(init, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(init > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 1);
  }
  ::close(pipe_fds[1]);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    RemoveCgroupTree(paths.cgroup_base);
    fs::remove_all(paths.temp, error);
    return failed("fork failed");
  }
  ::setpgid(pid, pid);
  g_child_group = pid;
  // Read the results as they come (the pipe must not fill up), bounded by the size's timeout.
  const double deadline = Now() + kSizeTimeoutSeconds;
  CaseResult incoming;
  size_t have = 0;
  bool timed_out = false;
  while (true) {
    const int left_ms = static_cast<int>((deadline - Now()) * 1000);
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    pollfd wanted{pipe_fds[0], POLLIN, 0};
    const int ready = ::poll(&wanted, 1, std::min(left_ms, 1000));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    if (ready <= 0) {
      continue;
    }
    const ssize_t n =
        ::read(pipe_fds[0], reinterpret_cast<char*>(&incoming) + have, sizeof(incoming) - have);
    if (n <= 0) {
      break;  // EOF: every process of the size is gone (pods held the pipe too)
    }
    have += static_cast<size_t>(n);
    if (have == sizeof(incoming)) {
      results.push_back(incoming);
      have = 0;
    }
  }
  ::kill(-pid, SIGKILL);  // whatever is left of its group (PID 1 takes its namespace along)
  const int code = WaitExit(pid, 30);
  g_child_group = 0;
  ::close(pipe_fds[0]);
  if (results.empty() || timed_out) {
    failed(timed_out ? "timed out after " + Format("%.0f s", kSizeTimeoutSeconds)
                     : "the size's process died (status " + std::to_string(code) + ")");
  }
  // Every process of the PID namespace is gone by now: the cgroups are empty.
  RemoveCgroupTree(paths.cgroup_base);
  if (fs::exists(paths.cgroup_base, error)) {
    Say("warning: could not remove " + paths.cgroup_base.string());
  }
  fs::remove_all(paths.temp, error);
  return results;
}

const char* kUsage =
    "usage: %s [--quick] [--pods=1,10,100] [--hash=both|shared|private] [--runs=N]\n"
    "          [--time-wait-share=F] [--backend=auto|netlink|bpf] [--verbose] [SIZE...]\n"
    "  SIZE: TCP sockets in the host namespace, e.g. 100k 1M (default: 100k 1M)\n"
    "  --quick: 10k sockets, 1 and 10 pods, 5 runs\n";

}  // namespace
}  // namespace portwatch::bench

int main(int argc, char** argv) {
  using namespace portwatch::bench;
  Options options;
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf(kUsage, argv[0]);
    return 0;
  }
  if (!ParseOptions(argc, argv, options)) {
    std::fprintf(stderr, kUsage, argv[0]);
    return 2;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "portwatch_pods_bench: needs root (network, PID and mount namespaces)\n");
    return 1;
  }
  ::signal(SIGINT, KillChildAndExit);
  ::signal(SIGTERM, KillChildAndExit);
  ::signal(SIGHUP, KillChildAndExit);

  utsname system{};
  ::uname(&system);
  std::string pods_list;
  for (const int pods : options.pods) {
    pods_list += (pods_list.empty() ? "" : ",") + std::to_string(pods);
  }
  Say(std::string("portwatch pods bench: kernel ") + system.release + ", " +
      std::to_string(std::thread::hardware_concurrency()) + " CPUs, build type " +
      PORTWATCH_BUILD_TYPE + ", pods " + pods_list + ", hash " +
      (options.shared && options.private_hash ? "shared and private"
       : options.shared                       ? "shared"
                                              : "private") +
      ", " + std::to_string(options.runs) + " timed rounds per case, backend " + options.backend +
      ", cgroups under " + CgroupfsRoot().string());
  Say(std::string("exporter: ") + PORTWATCH_EXPORTER_BINARY);
  if (std::string(PORTWATCH_BUILD_TYPE) == "Debug" || PORTWATCH_SANITIZED) {
    Say("warning: not an optimized, unsanitized build; numbers are not representative");
  }

  const double start = Now();
  const int64_t baseline = KernelTcpObjects();
  std::vector<CaseResult> results;
  bool all_ok = true;
  for (const uint64_t size : options.sizes) {
    WaitForKernelToSettle(baseline);
    for (const CaseResult& result : RunSizeInChild(size, options)) {
      if (!result.ok) {
        all_ok = false;
        Say("[" + HumanCount(size) + "] FAILED: " + result.error);
      }
      results.push_back(result);
    }
  }

  Say("");
  Say("Total run time: " + Format("%.0f s", Now() - start) + ".");
  Say("");
  Say("Wall-clock medians of interleaved rounds. bare dump: one host-wide sock_diag dump of TCP "
      "(states 1-12, IPv4 and IPv6) in the host namespace, the baseline; ratios are medians of "
      "per-round ratios. first: the first scrape with pods on / with pods off. settle: scrapes "
      "after it until "
      "no pod was pending. read: pods read per timed scrape (median). age: the oldest pod "
      "reading seen. sockets collector: the exporter's own "
      "portwatch_scrape_collector_duration_seconds"
      "{collector=\"sockets\"} (median), without the other collectors. per pod read: (sockets "
      "collector with pods - without) / pods read, and the same of the exporter's CPU time. "
      "counts: every pod's per-port counts right in every scrape.");
  Say("");
  Say("| sockets | hash | pods | bare dump | scrape, pods off | scrape, pods on | first, on / off "
      "| "
      "on/bare | off/bare | on/bare, CPU | sockets collector on/bare | settle | read | age | "
      "per pod read: sockets collector, CPU | counts | VmHWM off | "
      "VmHWM on |");
  Say("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
  for (const CaseResult& r : results) {
    const std::string head = "| " + HumanCount(r.requested) + " | " +
                             (r.private_hash ? "private" : "shared") + " | " +
                             std::to_string(r.pods) + " | ";
    if (!r.ok) {
      Say(head + "failed | | | | | | | | | | | | | | |");
      continue;
    }
    Say(head + Ms(r.bare) + " | " + Ms(r.off) + " | " + Ms(r.on) + " | " + Ms(r.first_scrape) +
        " / " + Ms(r.first_off) + " | " + Format("%.2fx", r.on_ratio) + " | " +
        Format("%.2fx", r.off_ratio) + " | " + Ratio(r.on_cpu, r.bare_cpu) + " | " +
        Ratio(r.on_collector, r.bare) + " | " + std::to_string(r.settle_scrapes) + " | " +
        Format("%g", r.pods_read) + " | " + Format("%.1f s", r.max_age) + " | " +
        PerPod(r.on_collector - r.off_collector, r.pods_read) + ", " +
        PerPod(r.on_cpu - r.off_cpu, r.pods_read) + " | " + (r.counts_exact ? "exact" : "WRONG") +
        " | " + MiB(r.off_hwm_kb) + " | " + MiB(r.on_hwm_kb) + " |");
  }
  Say("");

  // Targets.
  int largest = 0;
  for (const int pods : options.pods) {
    largest = std::max(largest, pods);
  }
  for (const CaseResult& r : results) {
    if (!r.ok) {
      continue;
    }
    const std::string which =
        HumanCount(r.requested) + " sockets, " + std::to_string(r.pods) + " pods: ";
    if (!r.private_hash && r.pods == largest) {
      Say("target shared hash, scrape with pods <= 2x one host-wide dump at " + which +
          (r.on_ratio <= 2.0 ? "met" : "MISSED") + " (" + Format("%.2fx", r.on_ratio) + "; CPU " +
          Ratio(r.on_cpu, r.bare_cpu) + "; every pod re-read within " +
          Format("%.1f s", r.max_age) + ")");
    }
    if (r.private_hash) {
      const bool met = r.on_ratio <= 1.3 && r.counts_exact && r.all_fresh;
      Say("target private hashes, every pod exact at every scrape and scrape <= 1.3x one "
          "host-wide dump at " +
          which + (met ? "met" : "MISSED") + " (" + Format("%.2fx", r.on_ratio) + "; CPU " +
          Ratio(r.on_cpu, r.bare_cpu) + "; counts " + (r.counts_exact ? "exact" : "WRONG") + ", " +
          (r.all_fresh ? "every pod read every scrape" : "NOT every pod read every scrape") + ")");
    }
  }
  // Memory: flat in the socket count (same hash and pods, every size: spread <= max(2 MiB,
  // 10%)), and modestly linear in namespaces (this benchmark's bar: <= 128 KiB per namespace
  // between the fewest and the most pods, same size and hash).
  for (const bool private_hash : {false, true}) {
    for (const int pods : options.pods) {
      uint64_t low = UINT64_MAX;
      uint64_t high = 0;
      int sizes = 0;
      for (const CaseResult& r : results) {
        if (r.ok && r.private_hash == private_hash && r.pods == pods) {
          low = std::min(low, r.on_hwm_kb);
          high = std::max(high, r.on_hwm_kb);
          sizes++;
        }
      }
      if (sizes >= 2) {
        const bool met = high - low <= std::max<uint64_t>(2048, low / 10);
        Say(std::string("target exporter VmHWM flat in the socket count (") +
            (private_hash ? "private" : "shared") + " hash, " + std::to_string(pods) + " pods, " +
            std::to_string(sizes) + " sizes): " + (met ? "met" : "MISSED") + " (" + MiB(low) +
            " .. " + MiB(high) + ")");
      }
    }
  }
  for (const uint64_t size : options.sizes) {
    for (const bool private_hash : {false, true}) {
      const CaseResult* fewest = nullptr;
      const CaseResult* most = nullptr;
      for (const CaseResult& r : results) {
        if (r.ok && r.requested == size && r.private_hash == private_hash) {
          if (fewest == nullptr || r.pods < fewest->pods) {
            fewest = &r;
          }
          if (most == nullptr || r.pods > most->pods) {
            most = &r;
          }
        }
      }
      if (fewest == nullptr || fewest == most || most->pods == fewest->pods) {
        continue;
      }
      const double per_namespace =
          (static_cast<double>(most->on_hwm_kb) - static_cast<double>(fewest->on_hwm_kb)) /
          (most->pods - fewest->pods);
      Say("target exporter VmHWM <= 128 KiB more per namespace (" + HumanCount(size) + ", " +
          (private_hash ? "private" : "shared") + " hash, " + std::to_string(fewest->pods) +
          " -> " + std::to_string(most->pods) +
          " pods): " + (per_namespace <= 128 ? "met" : "MISSED") + " (" +
          Format("%.0f KiB", per_namespace) + " per namespace; " + MiB(fewest->on_hwm_kb) + " -> " +
          MiB(most->on_hwm_kb) + ", pods off " + MiB(most->off_hwm_kb) + ")");
    }
  }
  return all_ok ? 0 : 1;
}
