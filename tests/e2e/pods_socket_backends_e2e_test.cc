// End to end: a pod's sockets read through the BPF socket iterators (made inside the pod's
// network namespace by the exporter's namespace worker) give the same metrics as through the
// pod's sock_diag socket. A fake pod (PodsE2eTest) holds a fixed table; the exporter runs once
// with each backend. Proof that the iterators read the pod, besides the counters: a TIME_WAIT
// socket left by a SO_REUSEADDR listener the exporter never saw, on a pod service's port, is
// predicted `free` for a SO_REUSEADDR bind only by the iterators (sock_diag cannot tell: unknown).
#include <sys/socket.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/pods_fixture.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kListenerPort = 8080;
constexpr uint16_t kTimeWaitPort = 7070;
constexpr uint16_t kUdpPort = 5353;
constexpr int kConnections = 3;

/// The pod's table: a listener with established connections (both ends kept), a bound UDP
/// socket, and a TIME_WAIT socket on kTimeWaitPort whose SO_REUSEADDR listener is gone.
void BuildPodTable(std::vector<UniqueFd>& keep) {
  {
    const UniqueFd gone = Listen("0.0.0.0", kTimeWaitPort, /*reuse_address=*/true);
    UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", kTimeWaitPort);
    UniqueFd served = Accept(gone);
    served = UniqueFd();  // the server closes first: TIME_WAIT lands on kTimeWaitPort
    if (!CloseAfterPeer(std::move(client))) {
      ::_exit(4);
    }
  }
  keep.push_back(Listen("0.0.0.0", kListenerPort));
  const size_t listener = keep.size() - 1;
  for (int i = 0; i < kConnections; ++i) {
    keep.push_back(Connect(SOCK_STREAM, "127.0.0.1", kListenerPort));
    keep.push_back(Accept(keep[listener]));
  }
  keep.push_back(Bind(SOCK_DGRAM, "0.0.0.0", kUdpPort));
  for (const UniqueFd& fd : keep) {
    if (!fd.Valid()) {
      ::_exit(5);
    }
  }
}

/// Every sample of pod shop/web-0, but what differs between two reads by design: the TIME_WAIT
/// timer (a clock) and the SO_REUSEADDR prediction (only the iterators know the flag).
std::map<std::string, double> PodSamples(const Exposition& metrics) {
  std::map<std::string, double> samples;
  for (const auto& [key, value] : metrics.Samples()) {
    if (key.find("pod=\"web-0\"") != std::string::npos &&
        key.rfind("portwatch_service_time_wait_remaining_seconds", 0) != 0 &&
        key.rfind("portwatch_service_bind_prediction", 0) != 0) {
      samples[key] = value;
    }
  }
  return samples;
}

std::string Predicted(const Exposition& metrics, bool reuse_address) {
  std::string predicted;
  for (const char* result : {"free", "blocked", "unknown"}) {
    if (metrics.Value("portwatch_service_bind_prediction",
                      {{"namespace", "shop"},
                       {"pod", "web-0"},
                       {"result", result},
                       {"service", "pod-svc"},
                       {"so_reuseaddr", reuse_address ? "true" : "false"}}) == 1) {
      predicted += result;
    }
  }
  return predicted;
}

class PodsSocketBackendsE2eTest : public PodsE2eTest {
 protected:
  /// The exporter with `backend`, scraped until the pod was read; stopped after.
  Exposition ScrapeThrough(const std::string& backend) {
    std::ofstream(ConfigPath()) << "collectors:\n  sockets:\n    pods: true\n    pod_logs_dir: "
                                << (dir_ / "pods").string() << "\n    backend: " << backend
                                << "\nservices:\n  - name: pod-svc\n    port: " << kTimeWaitPort
                                << "\n    pods: {namespace: shop, name: web-0}\n";
    StartExporter();
    if (::testing::Test::HasFatalFailure()) {
      return Exposition("");
    }
    Exposition metrics = ScrapeUntilEveryPodWasRead();
    exporter_.reset();
    return metrics;
  }

  /// `diagnose kTimeWaitPort --pod shop/web-0` with the last config: its verdict for a restart
  /// with SO_REUSEADDR (without it, the TIME_WAIT socket blocks: exit status 1).
  std::string DiagnoseWithSoReuseaddr() {
    std::string report;
    const int status =
        RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.file=" + ConfigPath().string(), "diagnose",
                    std::to_string(kTimeWaitPort), "--pod", "shop/web-0", "--output=json"},
                   report);
    const nlohmann::json diagnosis = nlohmann::json::parse(report, nullptr, false);
    if (status != 1 || diagnosis.is_discarded() ||
        diagnosis["bind"]["without_so_reuseaddr"]["result"] != "blocked") {
      ADD_FAILURE() << "exit status " << status << ": " << report;
      return "";
    }
    return diagnosis["bind"]["with_so_reuseaddr"]["result"];
  }
};

TEST_F(PodsSocketBackendsE2eTest, APodReadThroughTheIteratorsGivesTheMetricsOfSockDiag) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid = NewPodUid(random);
  StartPod(uid, CgroupfsRoot(),
           fs::path("kubepods") / "burstable" / ("pod" + uid) / RandomHex(random, 64),
           "30000 30999", BuildPodTable);
  ASSERT_TRUE(pods_.back().process->Ready());
  NamePod("shop", "web-0", uid);

  const Exposition bpf = ScrapeThrough("bpf");
  ASSERT_EQ(bpf.Value("portwatch_socket_iterator_available", {{"protocol", "tcp"}}), 1)
      << "the BPF socket iterators did not load here\n"
      << bpf.Text();
  EXPECT_EQ(bpf.Value("portwatch_pod_network_namespaces", {{"state", "collected"}}), 1);
  EXPECT_EQ(bpf.Value("portwatch_pod_socket_tables", {{"backend", "bpf"}, {"protocol", "tcp"}}), 1);
  EXPECT_EQ(bpf.Value("portwatch_pod_socket_tables", {{"backend", "bpf"}, {"protocol", "udp"}}), 1);
  EXPECT_EQ(bpf.Value("portwatch_pod_socket_tables", {{"backend", "netlink"}, {"protocol", "tcp"}}),
            0);
  EXPECT_EQ(bpf.Value("portwatch_socket_iterator_fallbacks_total", {{"reason", "setns"}}), 0);
  EXPECT_EQ(bpf.Value("portwatch_socket_iterator_fallbacks_total", {{"reason", "create"}}), 0);
  // The flag of a TIME_WAIT socket whose listener the exporter never saw: read by the iterator
  // made inside the pod, as the kernel's bind() would judge it.
  EXPECT_EQ(Predicted(bpf, false), "blocked") << bpf.Text();
  EXPECT_EQ(Predicted(bpf, true), "free") << bpf.Text();
  // The one-shot `diagnose --pod` (the same config) reads it the same way.
  EXPECT_EQ(DiagnoseWithSoReuseaddr(), "free");

  const Exposition netlink = ScrapeThrough("netlink");
  EXPECT_EQ(
      netlink.Value("portwatch_pod_socket_tables", {{"backend", "netlink"}, {"protocol", "tcp"}}),
      1);
  EXPECT_EQ(netlink.Value("portwatch_pod_socket_tables", {{"backend", "bpf"}, {"protocol", "tcp"}}),
            0);
  EXPECT_EQ(Predicted(netlink, false), "blocked") << netlink.Text();
  EXPECT_EQ(Predicted(netlink, true), "unknown") << netlink.Text();
  EXPECT_EQ(DiagnoseWithSoReuseaddr(), "unknown");

  const std::map<std::string, double> through_bpf = PodSamples(bpf);
  // The table is there: its listener, its connections both ways and its TIME_WAIT socket.
  EXPECT_EQ(bpf.Sum("portwatch_sockets", {{"pod", "web-0"}, {"protocol", "tcp"}}),
            1 + 2 * kConnections + 1)
      << bpf.Text();
  EXPECT_EQ(bpf.Sum("portwatch_sockets", {{"pod", "web-0"}, {"protocol", "udp"}}), 1);
  EXPECT_EQ(through_bpf, PodSamples(netlink));
}

}  // namespace
}  // namespace portwatch::testing
