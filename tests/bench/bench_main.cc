// portwatch_bench: how a full /metrics scrape of the real exporter compares with `ss -tan` and
// with a bare sock_diag dump (the floor; also timed with TCP_BOUND_INACTIVE, state 13, which the
// exporter asks for and the kernel answers with an extra walk of its bind hash), on TCP tables of
// 10k, 100k and 1M sockets built in a private network namespace. Run it through `cmake --build
// build --target bench` (or `tools/dev.sh bench [SIZES...]`); it needs root.
//
//   portwatch_bench [--runs=N] [--time-wait-share=F] [--verbose] [SIZE...]
//     SIZE: total TCP sockets, 10000, 100k, 1M, ... (default 10k 100k 1M); --runs default 11,
//     fewer when the TIME_WAIT share (default 0.1) would expire first; --verbose prints each run.
//
// Every size runs in a child process of its own, in a fresh network namespace: the child builds
// the table with worker processes (SocketFarm), starts the exporter inside the namespace, then
// times scrape, ss and the bare dumps interleaved (the order rotates every round), and reports
// medians plus the exporter's peak RSS. The child's process group is killed when it ends, fails
// or overruns, and everything in the namespace goes with it.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/common.h"
#include "tests/bench/probes.h"
#include "tests/bench/socket_farm.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"

namespace portwatch::bench {
namespace {

/// Outside the ephemeral range the namespace gets, like the listeners of the socket farm.
constexpr uint16_t kExporterPort = 9792;
/// The second exporter, reading through the BPF socket iterators (collectors.sockets.backend).
constexpr uint16_t kIteratorExporterPort = 9793;
constexpr const char* kEphemeralRange = "10000 65000";
/// TIME_WAIT lives 60 s: measuring stops early (after kMinRuns) rather than let another round
/// end later than this after the first TIME_WAIT socket was made.
constexpr double kTimeWaitBudgetSeconds = 56;
constexpr int kMinRuns = 5;
constexpr double kSizeTimeoutSeconds = 600;

struct Options {
  std::vector<uint64_t> sizes;
  int runs = 11;
  double time_wait_share = 0.1;
  bool verbose = false;
};

/// What one size's child reports back through a pipe (plain data, same binary on both ends).
struct SizeResult {
  bool ok = false;
  char error[512] = {};
  uint64_t requested = 0;
  SocketFarm::Layout layout;
  uint64_t table_min = 0;  ///< bare-dump message counts over the timed runs
  uint64_t table_max = 0;
  // Warm-up round, before the TIME_WAIT share: all three must see the same table.
  uint64_t warm_bare = 0;     ///< bare-dump message count
  uint64_t warm_scraped = 0;  ///< portwatch_scrape_sockets_read{protocol="tcp"}
  uint64_t warm_ss = 0;       ///< `ss -tan` lines without the header
  // Timed runs: what the exporter read, to compare with table_min/max.
  uint64_t scraped_min = 0;
  uint64_t scraped_max = 0;
  uint64_t body_bytes = 0;
  char revision[64] = {};  ///< portwatch_build_info{revision} of the exporter that was measured
  double establish_seconds = 0;
  double time_wait_seconds = 0;
  int runs = 0;
  double background_busy = 0;  ///< host CPU busy share just before the size started (others)
  double scrape_median = 0;
  double scrape_min = 0;
  double collector_median = 0;  ///< the exporter's own sockets collector duration
  double ss_median = 0;
  double ss_min = 0;
  double bare_median = 0;  ///< states 1..12
  double bare_min = 0;
  double bare13_median = 0;  ///< states 1..13, TCP_BOUND_INACTIVE too (what the exporter asks)
  double scrape_ratio_median = 0;  ///< median over runs of scrape/bare within the same run
  double ss_ratio_median = 0;
  double scrape_bare13_ratio_median = 0;
  // CPU time (user + system, kernel dump work included) instead of wall time: robust against
  // other load on the host. The exporter's is the sum over its threads.
  double scrape_cpu_median = 0;
  double ss_cpu_median = 0;
  double bare_cpu_median = 0;
  double bare13_cpu_median = 0;
  uint64_t hwm_kb = 0;
  uint64_t rss_kb = 0;
  // The same scrape through the BPF socket iterators (a second exporter, backend: bpf).
  bool iterator_used = false;  ///< its sockets collector really read through them
  double iterator_scrape_median = 0;
  double iterator_ratio_median = 0;  ///< median over runs of iterator scrape/bare
  double iterator_cpu_median = 0;
  uint64_t iterator_hwm_kb = 0;
  // The first scrape after start (before TIME_WAIT), each exporter, and the bare dump after them.
  double first_scrape = 0;
  double first_iterator_scrape = 0;
  double first_bare = 0;
  double measure_seconds = 0;
};

double Min(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}

bool ParseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    uint64_t size = 0;
    if (argument.rfind("--runs=", 0) == 0) {
      options.runs = std::atoi(argument.c_str() + 7);
      if (options.runs < 1 || options.runs > 101) {
        return false;
      }
    } else if (argument.rfind("--time-wait-share=", 0) == 0) {
      options.time_wait_share = std::strtod(argument.c_str() + 18, nullptr);
      if (!(options.time_wait_share >= 0 && options.time_wait_share <= 0.5)) {
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
    options.sizes = {10000, 100000, 1000000};
  }
  return true;
}

std::string TempPath(const char* stem) {
  std::string path = std::string("/tmp/") + stem + "-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd >= 0) {
    ::close(fd);
  }
  return path;
}

void SetError(SizeResult& result, const std::string& error) {
  std::snprintf(result.error, sizeof(result.error), "%s", error.c_str());
}

/// Times `ss -tan`, output discarded (or kept in `output_path` for the sanity check).
bool RunSs(const std::string& output_path, double& seconds, double& cpu_seconds) {
  const double start = Now();
  const pid_t pid = Spawn({"ss", "-tan"}, output_path, true);
  const int code = pid > 0 ? WaitExit(pid, 120, &cpu_seconds) : -1;
  seconds = Now() - start;
  if (code == -1 && pid > 0) {
    ::kill(pid, SIGKILL);
    WaitExit(pid, 10);
  }
  return code == 0;
}

struct Scrape {
  bool through_iterators = false;  ///< portwatch_socket_table_backend{backend="bpf",protocol="tcp"}
  double seconds = 0;
  double collector_seconds = 0;
  uint64_t tcp_sockets = 0;
  uint64_t bytes = 0;
  std::string revision;
  std::string error;
};

Scrape TimedScrape(uint16_t port = kExporterPort) {
  Scrape scrape;
  const double start = Now();
  HttpResult response = HttpGet(port, "/metrics", 120);
  scrape.seconds = Now() - start;
  if (response.status != 200) {
    scrape.error = "scrape: HTTP " + std::to_string(response.status) + " " + response.error;
    return scrape;
  }
  scrape.bytes = response.body.size();
  const testing::Exposition exposition(response.body);
  scrape.collector_seconds =
      exposition.Value("portwatch_scrape_collector_duration_seconds", {{"collector", "sockets"}})
          .value_or(0);
  if (exposition.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}})
          .value_or(0) != 1) {
    scrape.error = "scrape: the sockets collector failed";
  }
  for (const auto& [key, value] : exposition.Samples()) {
    const std::string marker = "revision=\"";
    const size_t at = key.find(marker);
    if (key.rfind("portwatch_build_info{", 0) == 0 && at != std::string::npos) {
      scrape.revision =
          key.substr(at + marker.size(), key.find('"', at + marker.size()) - at - marker.size());
    }
  }
  scrape.tcp_sockets =
      static_cast<uint64_t>(exposition.Sum("portwatch_scrape_sockets_read", {{"protocol", "tcp"}}));
  scrape.through_iterators = exposition.Value("portwatch_socket_table_backend",
                                              {{"backend", "bpf"}, {"protocol", "tcp"}}) == 1;
  return scrape;
}

/// One size, inside the calling (child) process: its own namespace, farm and exporter.
void RunSize(uint64_t size, const Options& options, SizeResult& result) {
  result.requested = size;
  const std::string label = "[" + HumanCount(size) + "] ";
  ::signal(SIGPIPE, SIG_IGN);
  if (std::string error = testing::EnterPrivateNetworkNamespace(); !error.empty()) {
    return SetError(result, error);
  }
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"net/ipv4/ip_local_port_range", kEphemeralRange},
           {"net/ipv4/tcp_max_tw_buckets", "4000000"},
           {"net/ipv4/tcp_tw_reuse", "0"},  // keep the TIME_WAIT share until it expires
           {"net/core/somaxconn", "4096"}}) {
    if (std::string error = testing::WriteSysctl(name, value); !error.empty()) {
      return SetError(result, error);
    }
  }

  SocketFarm farm;
  const SocketFarm::Layout layout =
      SocketFarm::PlanLayout({size, options.time_wait_share}, Ipv6Loopback());
  result.layout = layout;
  Say(label + "building: " + std::to_string(layout.established_connections) +
      " established connections (2 sockets each) in " + std::to_string(layout.workers) +
      " workers (" + std::to_string(layout.ipv6_workers) + " on ::1), then " +
      std::to_string(layout.time_wait) + " TIME_WAIT");
  double start = Now();
  if (std::string error = farm.Establish(layout, 300); !error.empty()) {
    return SetError(result, "building the table: " + error);
  }
  result.establish_seconds = Now() - start;

  // Started inside the namespace; they die with this process, whatever ends it (PDEATHSIG). One
  // reads through sock_diag, the other through the BPF socket iterators.
  const std::string netlink_config = TempPath("portwatch-bench-netlink.yaml");
  const std::string iterator_config = TempPath("portwatch-bench-bpf.yaml");
  std::ofstream(netlink_config) << "collectors:\n  sockets:\n    backend: netlink\n";
  std::ofstream(iterator_config) << "collectors:\n  sockets:\n    backend: bpf\n";
  testing::ExporterProcess exporter(
      PORTWATCH_EXPORTER_BINARY, {"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort),
                                  "--config.file=" + netlink_config});
  testing::ExporterProcess iterator_exporter(
      PORTWATCH_EXPORTER_BINARY,
      {"--web.listen-address=127.0.0.1:" + std::to_string(kIteratorExporterPort),
       "--config.file=" + iterator_config});
  const bool ready =
      exporter.WaitReady(kExporterPort) && iterator_exporter.WaitReady(kIteratorExporterPort);
  ::unlink(netlink_config.c_str());
  ::unlink(iterator_config.c_str());
  if (!ready) {
    const int code = exporter.WaitExit(0);
    return SetError(result, "exporter " + std::string(PORTWATCH_EXPORTER_BINARY) + ": " +
                                (code != -1 ? "exited with status " + std::to_string(code)
                                            : std::string("not ready after 10 s")) +
                                ": " + exporter.Log() + iterator_exporter.Log());
  }

  // Warm-up round, also the sanity check: all three must see the same table. Before the
  // TIME_WAIT share, which expires 60 s after it was made, so every timed run fits its life.
  const Scrape warm = TimedScrape();
  if (!warm.error.empty()) {
    return SetError(result, warm.error + "\n" + exporter.Log());
  }
  const Scrape warm_iterator = TimedScrape(kIteratorExporterPort);
  if (!warm_iterator.error.empty()) {
    return SetError(result, warm_iterator.error + "\n" + iterator_exporter.Log());
  }
  result.iterator_used = warm_iterator.through_iterators;
  result.first_scrape = warm.seconds;
  result.first_iterator_scrape = warm_iterator.seconds;
  result.warm_scraped = warm.tcp_sockets;
  std::snprintf(result.revision, sizeof(result.revision), "%s", warm.revision.c_str());
  const std::string ss_output = TempPath("portwatch-bench-ss");
  double ignored = 0;
  double ignored_cpu = 0;
  const bool ss_ok = RunSs(ss_output, ignored, ignored_cpu);
  {
    std::ifstream in(ss_output);
    std::string line;
    for (uint64_t lines = 0; std::getline(in, line); ++lines) {
      result.warm_ss = lines;  // the first line is the header
    }
  }
  ::unlink(ss_output.c_str());
  if (!ss_ok) {
    return SetError(result, "`ss -tan` failed (is iproute2 installed?)");
  }
  const double warm_bare_start = Now();
  const BareDumpResult warm_bare = BareTcpDump(kClassicTcpStates);
  result.first_bare = Now() - warm_bare_start;
  if (!warm_bare.error.empty()) {
    return SetError(result, warm_bare.error);
  }
  result.warm_bare = warm_bare.messages;

  const double time_wait_start = Now();
  if (std::string error = farm.AddTimeWait(120); !error.empty()) {
    return SetError(result, "adding TIME_WAIT: " + error);
  }
  result.time_wait_seconds = Now() - time_wait_start;
  Say(label + "built in " + Format("%.1f s", result.establish_seconds) + " + " +
      Format("%.1f s", result.time_wait_seconds) + " (TIME_WAIT)");

  // One round: scrape, ss, bare dump (states 1..12), bare dump (states 1..13), in an order that
  // rotates from round to round.
  std::vector<double> scrapes, collectors, ss, bares, bares13, iterator_scrapes;
  std::vector<double> scrapes_cpu, ss_cpu, bares_cpu, bares13_cpu, iterator_cpu;
  result.table_min = UINT64_MAX;
  result.scraped_min = UINT64_MAX;
  const double measure_start = Now();
  double round_seconds = 0;
  for (int run = 0; run < options.runs; ++run) {
    const double round_start = Now();
    if (layout.time_wait > 0 && run >= kMinRuns &&
        round_start + round_seconds - time_wait_start > kTimeWaitBudgetSeconds) {
      Say(label + "stopping after " + std::to_string(run) +
          " runs: the TIME_WAIT share starts expiring at 60 s");
      break;
    }
    for (int step = 0; step < 5; ++step) {
      const int what = (run + step) % 5;
      if (what == 4) {
        const double cpu_start = ProcessCpu(iterator_exporter.Pid());
        const Scrape scrape = TimedScrape(kIteratorExporterPort);
        iterator_cpu.push_back(ProcessCpu(iterator_exporter.Pid()) - cpu_start);
        if (!scrape.error.empty()) {
          return SetError(result, "iterator " + scrape.error);
        }
        iterator_scrapes.push_back(scrape.seconds);
      } else if (what == 0) {
        const double cpu_start = ProcessCpu(exporter.Pid());
        const Scrape scrape = TimedScrape();
        scrapes_cpu.push_back(ProcessCpu(exporter.Pid()) - cpu_start);
        if (!scrape.error.empty()) {
          return SetError(result, scrape.error);
        }
        scrapes.push_back(scrape.seconds);
        collectors.push_back(scrape.collector_seconds);
        result.body_bytes = scrape.bytes;
        result.scraped_min = std::min(result.scraped_min, scrape.tcp_sockets);
        result.scraped_max = std::max(result.scraped_max, scrape.tcp_sockets);
      } else if (what == 1) {
        double seconds = 0;
        double cpu_seconds = 0;
        if (!RunSs("/dev/null", seconds, cpu_seconds)) {
          return SetError(result, "`ss -tan` failed");
        }
        ss.push_back(seconds);
        ss_cpu.push_back(cpu_seconds);
      } else {
        const double bare_start = Now();
        const double cpu_start = ThreadCpu();
        const BareDumpResult bare =
            BareTcpDump(what == 2 ? kClassicTcpStates : kTcpStatesWithBoundInactive);
        (what == 2 ? bares_cpu : bares13_cpu).push_back(ThreadCpu() - cpu_start);
        (what == 2 ? bares : bares13).push_back(Now() - bare_start);
        if (!bare.error.empty()) {
          return SetError(result, bare.error);
        }
        if (what == 2) {
          result.table_min = std::min(result.table_min, bare.messages);
          result.table_max = std::max(result.table_max, bare.messages);
        }
      }
    }
    result.runs = run + 1;
    round_seconds = Now() - round_start;
    if (options.verbose) {
      Say(label + "run " + std::to_string(run + 1) + ": scrape " + Ms(scrapes.back()) +
          " (collector " + Ms(collectors.back()) + "), iterator scrape " +
          Ms(iterator_scrapes.back()) + ", ss " + Ms(ss.back()) + ", bare " + Ms(bares.back()) +
          ", bare incl. bound-inactive " + Ms(bares13.back()));
    }
  }
  result.measure_seconds = Now() - measure_start;
  result.scrape_median = Median(scrapes);
  result.scrape_min = Min(scrapes);
  result.collector_median = Median(collectors);
  result.ss_median = Median(ss);
  result.ss_min = Min(ss);
  result.bare_median = Median(bares);
  result.bare_min = Min(bares);
  result.bare13_median = Median(bares13);
  result.scrape_cpu_median = Median(scrapes_cpu);
  result.ss_cpu_median = Median(ss_cpu);
  result.bare_cpu_median = Median(bares_cpu);
  result.bare13_cpu_median = Median(bares13_cpu);
  std::vector<double> scrape_ratios, ss_ratios, scrape13_ratios;
  for (size_t i = 0; i < bares.size(); ++i) {
    scrape_ratios.push_back(scrapes[i] / bares[i]);
    ss_ratios.push_back(ss[i] / bares[i]);
    scrape13_ratios.push_back(scrapes[i] / bares13[i]);
  }
  result.scrape_ratio_median = Median(scrape_ratios);
  result.ss_ratio_median = Median(ss_ratios);
  result.scrape_bare13_ratio_median = Median(scrape13_ratios);
  std::vector<double> iterator_ratios;
  for (size_t i = 0; i < bares.size() && i < iterator_scrapes.size(); ++i) {
    iterator_ratios.push_back(iterator_scrapes[i] / bares[i]);
  }
  result.iterator_scrape_median = Median(iterator_scrapes);
  result.iterator_ratio_median = Median(iterator_ratios);
  result.iterator_cpu_median = Median(iterator_cpu);
  result.iterator_hwm_kb = ProcStatusKb(iterator_exporter.Pid(), "VmHWM");
  result.hwm_kb = ProcStatusKb(exporter.Pid(), "VmHWM");
  result.rss_kb = ProcStatusKb(exporter.Pid(), "VmRSS");
  result.ok = true;
}

/// The running size's process group, for the signal handler.
volatile sig_atomic_t g_child_group = 0;

void KillChildAndExit(int signal_number) {
  if (g_child_group > 0) {
    ::kill(-g_child_group, SIGKILL);
  }
  ::_exit(128 + signal_number);
}

/// Runs one size in a child process (and process group) of its own; bounded, always swept.
SizeResult RunSizeInChild(uint64_t size, const Options& options) {
  SizeResult result;
  result.requested = size;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    SetError(result, "pipe failed");
    return result;
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
    ::close(pipe_fds[0]);
    SizeResult child_result;
    RunSize(size, options, child_result);
    // RunSize has torn its farm and exporter down by now; the result goes to the parent.
    [[maybe_unused]] ssize_t written = ::write(pipe_fds[1], &child_result, sizeof(child_result));
    ::_exit(child_result.ok ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    SetError(result, "fork failed");
    return result;
  }
  ::setpgid(pid, pid);
  g_child_group = pid;
  const int code = WaitExit(pid, kSizeTimeoutSeconds);
  ::kill(-pid, SIGKILL);  // whatever is left of its group: workers, exporter, ss
  if (code == -1) {
    WaitExit(pid, 30);
  }
  g_child_group = 0;
  SizeResult reported;
  if (::read(pipe_fds[0], &reported, sizeof(reported)) == static_cast<ssize_t>(sizeof(reported))) {
    result = reported;
  } else {
    SetError(result, code == -1 ? "timed out"
                                : "the size's process died (status " + std::to_string(code) + ")");
  }
  ::close(pipe_fds[0]);
  return result;
}

/// The host's CPU busy share over `seconds` (from /proc/stat): what other processes use while
/// the benchmark idles. -1 if unreadable.
double HostBusyShare(double seconds) {
  const auto sample = [](uint64_t& busy, uint64_t& total) {
    std::ifstream in("/proc/stat");
    std::string cpu;
    in >> cpu;
    busy = total = 0;
    for (int field = 0; field < 8; ++field) {  // guest time is already in user time
      uint64_t value = 0;
      if (!(in >> value)) {
        break;
      }
      total += value;
      busy += (field == 3 || field == 4) ? 0 : value;  // idle, iowait
    }
    return cpu == "cpu" && total > 0;
  };
  uint64_t busy0 = 0, total0 = 0, busy1 = 0, total1 = 0;
  if (!sample(busy0, total0)) {
    return -1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  if (!sample(busy1, total1) || total1 <= total0) {
    return -1;
  }
  return static_cast<double>(busy1 - busy0) / static_cast<double>(total1 - total0);
}

std::string Ratio(double a, double b) { return b > 0 ? Format("%.2fx", a / b) : "-"; }

std::string MiB(uint64_t kb) { return Format("%.1f MiB", static_cast<double>(kb) / 1024.0); }

}  // namespace
}  // namespace portwatch::bench

int main(int argc, char** argv) {
  using namespace portwatch::bench;
  Options options;
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::printf("usage: %s [--runs=N] [--time-wait-share=F] [--verbose] [SIZE...]\n", argv[0]);
    return 0;
  }
  if (!ParseOptions(argc, argv, options)) {
    std::fprintf(stderr,
                 "usage: %s [--runs=N] [--time-wait-share=F] [--verbose] [SIZE...]\n"
                 "  SIZE: total TCP sockets, e.g. 10000 100k 1M (default: 10k 100k 1M)\n",
                 argv[0]);
    return 2;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "portwatch_bench: needs root (private network namespaces)\n");
    return 1;
  }
  ::signal(SIGINT, KillChildAndExit);
  ::signal(SIGTERM, KillChildAndExit);
  ::signal(SIGHUP, KillChildAndExit);

  utsname system{};
  ::uname(&system);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  Say(std::string("portwatch bench: kernel ") + system.release + ", " +
      std::to_string(std::thread::hardware_concurrency()) + " CPUs, build type " +
      PORTWATCH_BUILD_TYPE + ", fd hard limit " + std::to_string(files.rlim_max) + ", " +
      std::to_string(options.runs) + " interleaved runs per size, TIME_WAIT share " +
      Format("%.0f%%", options.time_wait_share * 100));
  Say(std::string("exporter: ") + PORTWATCH_EXPORTER_BINARY);
  if (std::string(PORTWATCH_BUILD_TYPE) == "Debug" || PORTWATCH_SANITIZED) {
    Say("warning: not an optimized, unsanitized build; numbers are not representative");
  }

  const double start = Now();
  const int64_t baseline = KernelTcpObjects();
  std::vector<SizeResult> results;
  bool all_ok = true;
  for (const uint64_t size : options.sizes) {
    WaitForKernelToSettle(baseline);
    const double size_start = Now();
    const double background = HostBusyShare(1);
    SizeResult result = RunSizeInChild(size, options);
    result.background_busy = background;
    const std::string label = "[" + HumanCount(size) + "] ";
    if (!result.ok) {
      all_ok = false;
      Say(label + "FAILED: " + result.error);
      results.push_back(result);
      continue;
    }
    const auto range = [](uint64_t low, uint64_t high) {
      return std::to_string(low) + (high != low ? ".." + std::to_string(high) : "");
    };
    Say(label + "warm-up before TIME_WAIT: bare dump " + std::to_string(result.warm_bare) +
        " TCP sockets, exporter read " + std::to_string(result.warm_scraped) + ", ss listed " +
        std::to_string(result.warm_ss) + "; timed runs: bare " +
        range(result.table_min, result.table_max) + ", exporter " +
        range(result.scraped_min, result.scraped_max) + "; /metrics body " +
        std::to_string(result.body_bytes) + " bytes, exporter revision " + result.revision);
    const auto near = [](uint64_t a, uint64_t b) {
      const double difference = std::fabs(static_cast<double>(a) - static_cast<double>(b));
      return difference <= 0.001 * static_cast<double>(std::max(a, b)) + 20;
    };
    if (!near(result.warm_bare, result.warm_scraped) || !near(result.warm_bare, result.warm_ss) ||
        !near(result.table_min, result.scraped_min) ||
        !near(result.table_max, result.scraped_max)) {
      Say(label + "WARNING: the exporter, ss and the bare dump disagree on the table size");
    }
    if (result.table_min + result.table_min / 100 < result.table_max) {
      Say(label + "WARNING: the table changed by more than 1% while measuring");
    }
    if (background > 0.1) {
      Say(label + "WARNING: other processes kept the host " + Format("%.0f%%", background * 100) +
          " busy just before this size; expect noisy numbers");
    }
    Say(label + std::to_string(result.runs) + " runs in " +
        Format("%.1f s", result.measure_seconds) + ": scrape " + Ms(result.scrape_median) +
        " (min " + Ms(result.scrape_min) + ", sockets collector " + Ms(result.collector_median) +
        "), ss -tan " + Ms(result.ss_median) + " (min " + Ms(result.ss_min) + "), bare " +
        Ms(result.bare_median) + " (min " + Ms(result.bare_min) + "), bare incl. bound-inactive " +
        Ms(result.bare13_median) + "; scrape/bare " +
        Ratio(result.scrape_median, result.bare_median) + ", ss/bare " +
        Ratio(result.ss_median, result.bare_median) + ", scrape/bare incl. bound-inactive " +
        Ratio(result.scrape_median, result.bare13_median) +
        " (medians of per-run ratios: " + Format("%.2fx", result.scrape_ratio_median) + ", " +
        Format("%.2fx", result.ss_ratio_median) + ", " +
        Format("%.2fx", result.scrape_bare13_ratio_median) + "); CPU time: scrape " +
        Ms(result.scrape_cpu_median) + ", ss " + Ms(result.ss_cpu_median) + ", bare " +
        Ms(result.bare_cpu_median) + ", bare incl. bound-inactive " + Ms(result.bare13_cpu_median) +
        " (scrape/bare " + Ratio(result.scrape_cpu_median, result.bare_cpu_median) + ", ss/bare " +
        Ratio(result.ss_cpu_median, result.bare_cpu_median) +
        ", scrape/bare incl. bound-inactive " +
        Ratio(result.scrape_cpu_median, result.bare13_cpu_median) + "); exporter VmHWM " +
        MiB(result.hwm_kb) + ", VmRSS " + MiB(result.rss_kb) + "; size took " +
        Format("%.0f s", Now() - size_start));
    Say(label + "through the BPF socket iterators" +
        (result.iterator_used ? "" : " (NOT USED: the exporter fell back to sock_diag)") +
        ": scrape " + Ms(result.iterator_scrape_median) + ", iterator scrape/bare " +
        Ratio(result.iterator_scrape_median, result.bare_median) + " (median of per-run ratios " +
        Format("%.2fx", result.iterator_ratio_median) + "), CPU " + Ms(result.iterator_cpu_median) +
        " (/bare " + Ratio(result.iterator_cpu_median, result.bare_cpu_median) + "), VmHWM " +
        MiB(result.iterator_hwm_kb) + "; first scrape after start: netlink " +
        Ms(result.first_scrape) + " (" + Ratio(result.first_scrape, result.first_bare) +
        " of a bare dump), iterators " + Ms(result.first_iterator_scrape) + " (" +
        Ratio(result.first_iterator_scrape, result.first_bare) + ")");
    results.push_back(result);
  }

  Say("");
  Say("Total run time: " + Format("%.0f s", Now() - start) + ".");
  Say("");
  Say("Wall-clock medians; CPU time = user + system time of the exporter (all threads), of ss, "
      "of the dumping thread. bare dump: TCP states 1-12 (what `ss -a` lists); bare + "
      "bound-inactive (b-i): states 1-13, TCP_BOUND_INACTIVE too, as the exporter asks, which "
      "the kernel answers with an extra walk of its bind hash.");
  Say("");
  Say("| sockets | build | runs | /metrics scrape | ss -tan | bare dump | bare + bound-inactive "
      "| scrape/bare | scrape/(bare + b-i) | ss/bare | scrape/bare, CPU time "
      "| scrape/(bare + b-i), CPU time | exporter VmHWM |");
  Say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const SizeResult& r : results) {
    if (!r.ok) {
      Say("| " + HumanCount(r.requested) + " | failed | | | | | | | | | | | |");
      continue;
    }
    Say("| " + HumanCount(r.requested) + " | " +
        Format("%.1f s", r.establish_seconds + r.time_wait_seconds) + " | " +
        std::to_string(r.runs) + " | " + Ms(r.scrape_median) + " | " + Ms(r.ss_median) + " | " +
        Ms(r.bare_median) + " | " + Ms(r.bare13_median) + " | " +
        Ratio(r.scrape_median, r.bare_median) + " | " + Ratio(r.scrape_median, r.bare13_median) +
        " | " + Ratio(r.ss_median, r.bare_median) + " | " +
        Ratio(r.scrape_cpu_median, r.bare_cpu_median) + " | " +
        Ratio(r.scrape_cpu_median, r.bare13_cpu_median) + " | " + MiB(r.hwm_kb) + " |");
  }
  Say("");
  Say("Through the BPF socket iterators (a second exporter, collectors.sockets.backend: bpf) and "
      "the "
      "first scrape after start, same runs:");
  Say("");
  Say("| sockets | scrape, netlink | scrape, iterators | netlink/bare | iterators/bare "
      "| iterators/bare, CPU time | first scrape/bare, netlink | first scrape/bare, iterators "
      "| VmHWM, iterators |");
  Say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const SizeResult& r : results) {
    if (!r.ok) {
      continue;
    }
    Say("| " + HumanCount(r.requested) + " | " + Ms(r.scrape_median) + " | " +
        Ms(r.iterator_scrape_median) + (r.iterator_used ? "" : " (not used)") + " | " +
        Format("%.2fx", r.scrape_ratio_median) + " | " + Format("%.2fx", r.iterator_ratio_median) +
        " | " + Ratio(r.iterator_cpu_median, r.bare_cpu_median) + " | " +
        Ratio(r.first_scrape, r.first_bare) + " | " + Ratio(r.first_iterator_scrape, r.first_bare) +
        " | " + MiB(r.iterator_hwm_kb) + " |");
  }
  Say("");
  for (const SizeResult& r : results) {
    if (!r.ok) {
      continue;
    }
    const double ratio = r.bare_median > 0 ? r.scrape_median / r.bare_median : 0;
    if (r.requested >= 100000) {
      Say("target scrape <= 1.2x bare at " + HumanCount(r.requested) + ": " +
          (ratio <= 1.2 ? "met" : "MISSED") + " (" + Format("%.2fx", ratio) +
          "; against bare + bound-inactive " + Ratio(r.scrape_median, r.bare13_median) + ")");
    }
    if (r.requested >= 1000000) {
      Say("target exporter RSS < 30 MiB at " + HumanCount(r.requested) + ": " +
          (r.hwm_kb < 30ULL * 1024 ? "met" : "MISSED") + " (" + MiB(r.hwm_kb) + ")");
    }
  }
  return all_ok ? 0 : 1;
}
