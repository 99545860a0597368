// End to end: bind failures in pods carry the pod. Two fake pods (pods_fixture.h); a process in
// pod A fails to bind a port that pod A already holds. portwatch_bind_failures_total counts
// exactly those failures under pod A's {namespace, pod} and network namespace; pod B, which
// holds the same port in its own namespace, and the node, which holds it too, have none; the log
// line names the pod and the holder in it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>

#include <cerrno>

#include "tests/e2e/pods_fixture.h"
#include "tests/support/netns.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kHeldPort = 18180;
constexpr int kFailures = 4;
const std::string kFailuresTotal = "portwatch_bind_failures_total";

/// bind() of a fresh TCP socket to 127.0.0.1:`port`; returns 0 or the errno.
int TryBind(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  return ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 ? 0 : errno;
}

std::string NetnsOf(pid_t pid) {
  struct stat info {};
  return ::stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &info) == 0
             ? std::to_string(info.st_ino)
             : "";
}

class PodsBindEventsE2eTest : public PodsE2eTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(tracefs_.Error(), "");
    PodsE2eTest::SetUp();
    failures_ = static_cast<int*>(
        ::mmap(nullptr, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(failures_, MAP_FAILED);
    *failures_ = 0;
    // fexit where the kernel takes it; this project's kernels refuse it (docs/bind_events.md).
    AppendConfig("  bind_events:\n    attach: [fexit, tracepoint]\n");
  }
  void TearDown() override {
    PodsE2eTest::TearDown();
    if (failures_ != MAP_FAILED && failures_ != nullptr) {
      ::munmap(failures_, sizeof(int));
    }
  }

  TracefsForTest tracefs_;
  int* failures_ = nullptr;
};

TEST_F(PodsBindEventsE2eTest, APodsFailuresCarryThePodAndNoOneElsesDo) {
  std::mt19937_64 random(std::random_device{}());
  const std::string uid_a = NewPodUid(random);
  const std::string uid_b = NewPodUid(random);
  NamePod("shop", "web-a", uid_a);
  NamePod("shop", "web-b", uid_b);
  // The node holds the port too, in its own namespace (the exporter's).
  UniqueFd node_listener = Listen("127.0.0.1", kHeldPort);
  ASSERT_TRUE(node_listener.Valid());
  // Not scraped yet: the first failure's log line is the first to look for pods.
  ASSERT_NO_FATAL_FAILURE(StartExporter());

  int* failures = failures_;
  StartPod(uid_a, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid_a) / RandomHex(random, 64),
           "30000 30999", [failures](std::vector<UniqueFd>& keep) {
             keep.push_back(Listen("127.0.0.1", kHeldPort));
             for (int i = 0; i < kFailures; ++i) {
               *failures += TryBind(kHeldPort) == EADDRINUSE;
             }
           });
  StartPod(uid_b, CgroupfsRoot(), fs::path("kubepods") / ("pod" + uid_b) / RandomHex(random, 64),
           "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", kHeldPort)); });
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  ASSERT_EQ(*failures_, kFailures);  // else the expectations below would prove nothing
  const std::string netns_a = NetnsOf(pods_[0].process->Pid());
  const std::string node_netns = NetnsOf(::getpid());
  ASSERT_NE(netns_a, "");
  ASSERT_NE(netns_a, node_netns);
  const std::string process_a = "pod-" + uid_a.substr(0, 8);

  Exposition metrics = ScrapeUntilEveryPodWasRead();
  ASSERT_EQ(metrics.Value("portwatch_bind_events_available"), 1) << exporter_->Log();
  const std::map<std::string, std::string> pod_a = {{"syscall", "bind"},
                                                    {"errno", "EADDRINUSE"},
                                                    {"family", "ipv4"},
                                                    {"namespace", "shop"},
                                                    {"pod", "web-a"},
                                                    {"netns", netns_a},
                                                    {"port", std::to_string(kHeldPort)},
                                                    {"process", process_a}};
  EXPECT_EQ(metrics.Value(kFailuresTotal, pod_a), kFailures) << metrics.Text();
  // Every failure on that port is pod A's: none in pod B, none on the node, none unlabelled.
  EXPECT_EQ(metrics.Sum(kFailuresTotal, {{"port", std::to_string(kHeldPort)}}), kFailures)
      << metrics.Text();
  EXPECT_EQ(metrics.Sum(kFailuresTotal, {{"pod", "web-b"}}), 0);
  EXPECT_EQ(metrics.Sum(kFailuresTotal, {{"netns", node_netns}}), 0) << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "bind_events"}}), 1);

  // The log line names the pod.
  const std::string line =
      "netns=" + netns_a +
      " pod=shop/web-a family=ipv4 address=127.0.0.1 port=" + std::to_string(kHeldPort);
  const std::string log = exporter_->WaitForLog(line);
  EXPECT_NE(log.find("msg=\"bind failed\" errno=EADDRINUSE process=" + process_a),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(line), std::string::npos) << log;
  // ...and who holds the port there, read from pod A's own table: its listener, not the node's
  // or pod B's.
  const std::string holder = line + " holders=\"tcp listen by pid " +
                             std::to_string(pods_[0].process->Pid()) + " (" + process_a;
  EXPECT_NE(log.find(holder), std::string::npos) << log;

  // Pod A goes away: its series keeps its labels and its value (it ends only minutes later).
  pods_[0].process->Kill();
  metrics = Scrape();
  EXPECT_EQ(metrics.Value(kFailuresTotal, pod_a), kFailures) << metrics.Text();
  EXPECT_EQ(metrics.Sum(kFailuresTotal, {{"port", std::to_string(kHeldPort)}}), kFailures);
}

}  // namespace
}  // namespace portwatch::testing
