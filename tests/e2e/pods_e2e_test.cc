// End to end: every pod's sockets. Private network namespaces stand in for pods: each holds a
// process placed in a real cgroup named as the kubelet names it (the systemd driver on the cgroup
// v2 hierarchy, cgroupfs on a v1 one), and a kubelet-like /var/log/pods tree names them. The
// exporter runs in a namespace of its own (the "host") with collectors.sockets.pods on.
#include "tests/e2e/pods_fixture.h"

namespace portwatch::testing {
namespace {

std::map<std::string, std::string> Labels(const std::string& ns, const std::string& pod,
                                          const std::string& protocol, const std::string& port,
                                          const std::string& state) {
  return {{"family", "ipv4"}, {"namespace", ns},      {"pod", pod},
          {"port", port},     {"protocol", protocol}, {"state", state}};
}

TEST_F(PodsE2eTest, EachPodsSocketsAreCountedWithItsLabelsAndVanishWithIt) {
  std::mt19937_64 random(std::random_device{}());
  const std::string web0 = NewPodUid(random);
  std::string web0_underscored = web0;
  std::replace(web0_underscored.begin(), web0_underscored.end(), '-', '_');
  const std::string web1 = NewPodUid(random);

  // web-0: systemd driver, containerd, besteffort. A listener on 8080 with two connections
  // from clients in the pod (their ports in the pod's own range, 20000-20999: outside the
  // host's) and one connection the server closed first: TIME_WAIT on 8080.
  StartPod(web0, Cgroup2Root(),
           fs::path("kubepods.slice") / "kubepods-besteffort.slice" /
               ("kubepods-besteffort-pod" + web0_underscored + ".slice") /
               ("cri-containerd-" + RandomHex(random, 64) + ".scope"),
           "20000 20999", [](std::vector<UniqueFd>& keep) {
             UniqueFd listener = Listen("127.0.0.1", 8080);
             for (int i = 0; i < 2; ++i) {
               keep.push_back(Connect(SOCK_STREAM, "127.0.0.1", 8080));
               keep.push_back(Accept(listener));
             }
             UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", 8080);
             Accept(listener);                   // closed at once: the server closes first
             CloseAfterPeer(std::move(client));  // and its side ends in TIME_WAIT
             keep.push_back(std::move(listener));
           });
  // web-1: cgroupfs driver (a v1 hierarchy where the host has one), burstable, CRI-O id. A UDP
  // socket bound to 5353.
  StartPod(
      web1, CgroupfsRoot(),
      fs::path("kubepods") / "burstable" / ("pod" + web1) / RandomHex(random, 64), "30000 30999",
      [](std::vector<UniqueFd>& keep) { keep.push_back(Bind(SOCK_DGRAM, "127.0.0.1", 5353)); });
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "web-0", web0);
  NamePod("shop", "web-1", web1);

  ASSERT_NO_FATAL_FAILURE(StartExporter());
  Exposition metrics = ScrapeUntilEveryPodWasRead();
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "web-0", "tcp", "8080", "listen")), 1)
      << metrics.Text();
  EXPECT_EQ(
      metrics.Value("portwatch_sockets", Labels("shop", "web-0", "tcp", "8080", "established")), 2);
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "web-0", "tcp", "8080", "time_wait")),
            1);
  EXPECT_EQ(metrics.Value("portwatch_sockets",
                          Labels("shop", "web-0", "tcp", "ephemeral", "established")),
            2);
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", "web-0"}}), 6);
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "web-1", "udp", "5353", "unconn")),
            1);
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", "web-1"}}), 1);
  // The host's sockets carry no pod labels and are kept apart: the exporter's own listener.
  EXPECT_EQ(metrics.Value("portwatch_sockets", {{"family", "ipv4"},
                                                {"port", std::to_string(kPort)},
                                                {"protocol", "tcp"},
                                                {"state", "listen"}}),
            1);
  EXPECT_EQ(metrics.Value(
                "portwatch_sockets",
                {{"family", "ipv4"}, {"port", "8080"}, {"protocol", "tcp"}, {"state", "listen"}}),
            std::nullopt);
  EXPECT_EQ(metrics.Value("portwatch_pod_network_namespaces", {{"state", "collected"}}), 2);
  EXPECT_EQ(metrics.Value("portwatch_pod_network_namespaces", {{"state", "failed"}}), 0);

  // web-1 goes away: its series vanish at the next scrape.
  pods_[1].process->Kill();
  metrics = Scrape();
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", "web-1"}}), 0) << metrics.Text();
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", "web-0"}}), 6);
  EXPECT_EQ(metrics.Value("portwatch_pod_network_namespaces", {{"state", "collected"}}), 1);
}

TEST_F(PodsE2eTest, APodTheKubeletDirectoryDoesNotNameIsLabelledWithItsUid) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid = NewPodUid(random);
  StartPod(uid, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid) / RandomHex(random, 64),
           "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7070)); });
  ASSERT_TRUE(pods_[0].process->Ready());
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = ScrapeUntilEveryPodWasRead();
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("", uid, "tcp", "7070", "listen")), 1)
      << metrics.Text();
}

TEST_F(PodsE2eTest, ASmallNodesPodsSharingTheHashAreReadAtEveryScrape) {
  // Each dump of a pod sharing the node's hash walks the whole hash (~2 ms even when it is
  // empty), more than half this host's own tiny dump: the scrape's minimum budget for them still
  // reads a few such pods at every scrape, so their new sockets show at once.
  ASSERT_EQ(WriteSysctl("net/ipv4/tcp_child_ehash_entries", "0"), "");
  std::mt19937_64 random(std::random_device{}());
  for (int i = 0; i < 2; ++i) {
    const std::string uid = NewPodUid(random);
    StartPod(
        uid, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid) / RandomHex(random, 64),
        "30000 30999",
        [i](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7000 + i)); },
        [i](std::vector<UniqueFd>& keep) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          keep.push_back(Listen("127.0.0.1", 9000 + i));
        });
    NamePod("batch", "shared-" + std::to_string(i), uid);
  }
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  AppendConfig("    pod_counts_max_age_seconds: 42\n");
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  Exposition metrics = ScrapeUntilEveryPodWasRead();
  EXPECT_EQ(metrics.Value("portwatch_pod_sockets_max_age_seconds"), 42) << metrics.Text();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  metrics = Scrape();
  for (int i = 0; i < 2; ++i) {
    const std::string pod = "shared-" + std::to_string(i);
    EXPECT_EQ(metrics.Value("portwatch_sockets",
                            Labels("batch", pod, "tcp", std::to_string(9000 + i), "listen")),
              1)
        << pod << metrics.Text();
    EXPECT_EQ(
        metrics.Value("portwatch_pod_sockets_age_seconds", {{"namespace", "batch"}, {"pod", pod}}),
        0)
        << pod;
  }
  EXPECT_EQ(metrics.Value("portwatch_pod_reads_past_budget_total"), 0);
}

TEST_F(PodsE2eTest, PodsWithAPrivateHashAreReadAtEveryScrape) {
  // Namespaces created from here on get a TCP hash of their own (Linux 6.1+): a pod's dump then
  // walks only its own sockets, and the exporter reads every such pod at every scrape.
  ASSERT_EQ(WriteSysctl("net/ipv4/tcp_child_ehash_entries", "128"), "");
  std::mt19937_64 random(std::random_device{}());
  std::vector<std::string> uids;
  for (int i = 0; i < 3; ++i) {
    uids.push_back(NewPodUid(random));
    // Each pod listens on 7000+i at once and on 9000+i a second later.
    StartPod(
        uids.back(), CgroupfsRoot(),
        fs::path("kubepods") / ("pod" + uids.back()) / RandomHex(random, 64), "30000 30999",
        [i](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7000 + i)); },
        [i](std::vector<UniqueFd>& keep) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          keep.push_back(Listen("127.0.0.1", 9000 + i));
        });
    NamePod("batch", "job-" + std::to_string(i), uids.back());
  }
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_pod_network_namespaces", {{"state", "pending"}}), 0)
      << metrics.Text();
  for (int i = 0; i < 3; ++i) {
    const std::string pod = "job-" + std::to_string(i);
    EXPECT_EQ(metrics.Value("portwatch_sockets",
                            Labels("batch", pod, "tcp", std::to_string(7000 + i), "listen")),
              1)
        << pod;
    EXPECT_EQ(
        metrics.Value("portwatch_pod_sockets_age_seconds", {{"namespace", "batch"}, {"pod", pod}}),
        0)
        << pod;
  }
  // The listeners opened later show at the next scrape after they exist, in every pod.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  metrics = Scrape();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("batch", "job-" + std::to_string(i), "tcp",
                                                        std::to_string(9000 + i), "listen")),
              1)
        << i << metrics.Text();
  }
}

TEST_F(PodsE2eTest, WithoutCapSysAdminTheNodeIsCountedAndTheLogSaysWhyOnce) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid = NewPodUid(random);
  StartPod(uid, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid) / RandomHex(random, 64),
           "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7070)); });
  ASSERT_TRUE(pods_[0].process->Ready());
  // setpriv (util-linux) takes CAP_SYS_ADMIN out of the bounding set: setns is refused.
  ASSERT_NO_FATAL_FAILURE(StartExporter({"/usr/bin/setpriv", "--bounding-set=-sys_admin", "--"}));
  Scrape();
  const Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_pod_network_namespaces", {{"state", "failed"}}), 1)
      << metrics.Text();
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", uid}}), 0);
  EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                          {{"capability", "CAP_SYS_ADMIN"}, {"collector", "sockets"}}),
            0);
  EXPECT_EQ(metrics.Value("portwatch_sockets", {{"family", "ipv4"},
                                                {"port", std::to_string(kPort)},
                                                {"protocol", "tcp"},
                                                {"state", "listen"}}),
            1);
  const std::string log = exporter_->Log();
  const std::string warning = "cannot enter any pod's network namespace";
  const size_t first = log.find(warning);
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(warning, first + 1), std::string::npos) << log;
  EXPECT_NE(log.find("Operation not permitted"), std::string::npos) << log;
}

TEST_F(PodsE2eTest, TurningPodsOffByAReloadLetsGoOfTheirNamespaces) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid = NewPodUid(random);
  StartPod(uid, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid) / RandomHex(random, 64),
           "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7070)); });
  ASSERT_TRUE(pods_[0].process->Ready());
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  // The sysctl files the exporter keeps open: only those of the namespaces it entered (a
  // scrape's own reads are closed when it answers). Counting every fd would also count a
  // connection CivetWeb has not closed yet.
  const auto kept_sysctl_files = [this] {
    int kept = 0;
    const fs::path fds = "/proc/" + std::to_string(exporter_->Pid()) + "/fd";
    for (const fs::directory_entry& fd : fs::directory_iterator(fds)) {
      std::error_code ignored;
      kept += fs::read_symlink(fd.path(), ignored).string().rfind("/proc/sys/net/", 0) == 0;
    }
    return kept;
  };
  ASSERT_EQ(ScrapeUntilEveryPodWasRead().Sum("portwatch_sockets", {{"pod", uid}}), 1);
  // The pod's namespace was entered: its sock_diag socket and its four sysctl files (port range,
  // reserved ports, TIME_WAIT buckets, TCP hash size) are kept open together.
  EXPECT_EQ(kept_sysctl_files(), 4);

  // A reload that turns pods off closes them, or they would keep gone pods' namespaces alive.
  std::ofstream(dir_ / "portwatch.yaml") << "collectors:\n  sockets:\n    pods: false\n";
  ASSERT_TRUE(exporter_->Signal(SIGHUP));
  ASSERT_NE(exporter_->WaitForLog("config reloaded").find("config reloaded"), std::string::npos);
  const Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", uid}}), 0) << metrics.Text();
  EXPECT_EQ(kept_sysctl_files(), 0);
}

/// A busy pod's sockets: a listener on 9000 and 25 connections to it from fixed local ports
/// 1001-1025 (outside its ephemeral range), 26 ports' worth of series without a cap.
void BusyPodSockets(std::vector<UniqueFd>& keep) {
  UniqueFd listener = Listen("127.0.0.1", 9000);
  for (uint16_t port = 1001; port <= 1025; ++port) {
    keep.push_back(ConnectFrom(SOCK_STREAM, "127.0.0.1", port, "127.0.0.1", 9000));
    keep.push_back(Accept(listener));
  }
  keep.push_back(std::move(listener));
}

TEST_F(PodsE2eTest, APodKeepsItsListenersServicePortsAndTopPortsTheRestFold) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid = NewPodUid(random);
  StartPod(uid, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid) / RandomHex(random, 64),
           "30000 30999", BusyPodSockets);
  ASSERT_TRUE(pods_[0].process->Ready());
  NamePod("shop", "busy", uid);
  // A cap of 5 per pod: the listener (9000), the configured service port 1025 whatever its
  // rank, and the 3 busiest others (ties: lowest port first) keep their series.
  std::ofstream(dir_ / "portwatch.yaml")
      << "collectors:\n  sockets:\n    pod_max_port_series: 5\n    pod_logs_dir: "
      << (dir_ / "pods").string()
      << "\nservices:\n  - name: admin\n    port: 1025\n    owner: {process: nobody}\n";
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = ScrapeUntilEveryPodWasRead();
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "9000", "listen")), 1)
      << metrics.Text();
  EXPECT_EQ(
      metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "9000", "established")), 25);
  for (const std::string port : {"1001", "1002", "1003", "1025"}) {
    EXPECT_EQ(
        metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", port, "established")), 1)
        << port;
  }
  EXPECT_EQ(
      metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "1004", "established")),
      std::nullopt);
  EXPECT_EQ(
      metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "other", "established")),
      21);
  EXPECT_EQ(
      metrics.Value("portwatch_port_series_folded",
                    {{"metric", "portwatch_sockets"}, {"namespace", "shop"}, {"pod", "busy"}}),
      21);
  EXPECT_EQ(metrics.Value("portwatch_pod_series_folded", {}), 0);
}

TEST_F(PodsE2eTest, OverTheNodeBudgetTheLargestPodKeepsOnlyPerStateTotals) {
  std::mt19937_64 random(std::random_device{}());
  const std::string busy = NewPodUid(random);
  const std::string quiet = NewPodUid(random);
  StartPod(busy, CgroupfsRoot(), fs::path("kubepods") / ("pod" + busy) / RandomHex(random, 64),
           "30000 30999", BusyPodSockets);
  StartPod(quiet, CgroupfsRoot(), fs::path("kubepods") / ("pod" + quiet) / RandomHex(random, 64),
           "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 7070)); });
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "busy", busy);
  NamePod("shop", "quiet", quiet);
  std::ofstream(dir_ / "portwatch.yaml")
      << "collectors:\n  sockets:\n    max_pod_series: 20\n    pod_logs_dir: "
      << (dir_ / "pods").string() << "\n";
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = ScrapeUntilEveryPodWasRead();
  // busy: its 50 sockets under port="other" by state, its listener's port gone.
  EXPECT_EQ(
      metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "other", "established")), 50)
      << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "busy", "tcp", "other", "listen")),
            1);
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"pod", "busy"}}), 51);
  // quiet keeps its ports.
  EXPECT_EQ(metrics.Value("portwatch_sockets", Labels("shop", "quiet", "tcp", "7070", "listen")),
            1);
  const std::optional<double> folded = metrics.Value("portwatch_pod_series_folded", {});
  ASSERT_TRUE(folded.has_value());
  EXPECT_GT(*folded, 0);
  EXPECT_LE(metrics.Value("portwatch_pod_series", {}).value_or(1e9), 20);
}

}  // namespace
}  // namespace portwatch::testing
