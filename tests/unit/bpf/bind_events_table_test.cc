#include "collectors/bind_events/bind_events_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using unit::Samples;

constexpr uint32_t kNetns = 4026531840;
constexpr uint32_t kOtherNetns = 4026532999;

portwatch_bind_key RawKey(uint8_t syscall, uint8_t err, uint16_t family, uint16_t port,
                          const char* comm, uint32_t netns = kNetns) {
  portwatch_bind_key raw{};
  raw.netns = netns;
  raw.port = port;
  raw.syscall = syscall;
  raw.err = err;
  raw.family = family;
  std::strncpy(raw.comm, comm, sizeof(raw.comm));
  return raw;
}

BindFailureKey Key(uint16_t port, const char* comm = "app", uint32_t netns = kNetns,
                   uint8_t syscall = PORTWATCH_SYSCALL_BIND, uint8_t err = EADDRINUSE) {
  return DecodeBindKey(RawKey(syscall, err, AF_INET, port, comm, netns));
}

TEST(BindEventsDecode, KeyFieldsAndLabels) {
  BindFailureKey key =
      DecodeBindKey(RawKey(PORTWATCH_SYSCALL_CONNECT, EADDRNOTAVAIL, AF_INET6, 5432, "psql"));
  EXPECT_EQ(key.netns, kNetns);
  EXPECT_EQ(key.port, 5432);
  EXPECT_EQ(key.comm, "psql");
  EXPECT_EQ(SyscallLabel(key.syscall), "connect");
  EXPECT_EQ(ErrnoLabel(key.err), "EADDRNOTAVAIL");
  EXPECT_EQ(FamilyLabel(key.family), "ipv6");
  EXPECT_EQ(SyscallLabel(PORTWATCH_SYSCALL_BIND), "bind");
  EXPECT_EQ(SyscallLabel(PORTWATCH_SYSCALL_LISTEN), "listen");
  EXPECT_EQ(SyscallLabel(9), "unknown");
  EXPECT_EQ(ErrnoLabel(EADDRINUSE), "EADDRINUSE");
  EXPECT_EQ(ErrnoLabel(EACCES), "EACCES");
  EXPECT_EQ(ErrnoLabel(EPERM), "1");
  EXPECT_EQ(FamilyLabel(AF_INET), "ipv4");
  EXPECT_EQ(FamilyLabel(0), "unknown");
}

TEST(BindEventsDecode, CommIsBoundedAndSanitized) {
  // 16 bytes without a NUL: all 16 kept, nothing read beyond.
  portwatch_bind_key raw = RawKey(PORTWATCH_SYSCALL_BIND, EADDRINUSE, AF_INET, 80, "");
  std::memcpy(raw.comm, "abcdefghijklmnop", 16);
  EXPECT_EQ(DecodeBindKey(raw).comm, "abcdefghijklmnop");
  // Control characters, quotes and backslashes become '_'; the NUL ends the name.
  const char odd[16] = {'a', '\n', '"', '\\', 'b', '\x7f', '\0', 'z'};
  EXPECT_EQ(CommLabel(odd, sizeof(odd)), "a___b_");
}

TEST(BindEventsDecode, EventAddresses) {
  portwatch_bind_event raw{};
  raw.key = RawKey(PORTWATCH_SYSCALL_BIND, EADDRINUSE, AF_INET, 8080, "web");
  raw.pid = 4242;
  raw.uid = 1000;
  ASSERT_EQ(::inet_pton(AF_INET, "127.0.0.1", raw.addr), 1);
  BindFailureEvent event = DecodeBindEvent(raw);
  EXPECT_EQ(event.pid, 4242);
  EXPECT_EQ(event.uid, 1000U);
  EXPECT_EQ(event.address, "127.0.0.1");
  EXPECT_EQ(event.key.port, 8080);

  raw.key.family = AF_INET6;
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8::1", raw.addr), 1);
  EXPECT_EQ(DecodeBindEvent(raw).address, "2001:db8::1");

  // listen() has no sockaddr; an unknown family has no address either.
  raw.key.syscall = PORTWATCH_SYSCALL_LISTEN;
  EXPECT_EQ(DecodeBindEvent(raw).address, "");
  raw.key.syscall = PORTWATCH_SYSCALL_BIND;
  raw.key.family = 0;
  EXPECT_EQ(DecodeBindEvent(raw).address, "");
}

std::map<std::string, double> Failures(const BindFailureCounters& counters) {
  std::vector<prometheus::MetricFamily> out;
  counters.AppendMetrics(out);
  return Samples(out, "portwatch_bind_failures_total");
}

double Folded(const BindFailureCounters& counters) {
  std::vector<prometheus::MetricFamily> out;
  counters.AppendMetrics(out);
  return Samples(out, "portwatch_bind_failures_port_series_folded").at("");
}

std::string Series(const std::string& port, const std::string& process = "app",
                   uint32_t netns = kNetns, const std::string& syscall = "bind",
                   const std::string& err = "EADDRINUSE") {
  return "{errno=\"" + err + "\",family=\"ipv4\",netns=\"" + std::to_string(netns) + "\",port=\"" +
         port + "\",process=\"" + process + "\",syscall=\"" + syscall + "\"}";
}

TEST(BindFailureCounters, ExposesIncreasesCumulatively) {
  BindFailureCounters counters;
  const BindFailureCounters::Options options{10, 0};
  counters.Update({{Key(8080), 3}, {Key(8080, "other-app"), 1}}, {}, options);
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{Series("8080"), 3}, {Series("8080", "other-app"), 1}}));
  // Same kernel counts: nothing new. Then two more for "app".
  counters.Update({{Key(8080), 3}, {Key(8080, "other-app"), 1}}, {}, options);
  counters.Update({{Key(8080), 5}, {Key(8080, "other-app"), 1}}, {}, options);
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{Series("8080"), 5}, {Series("8080", "other-app"), 1}}));
  EXPECT_EQ(Folded(counters), 0);
}

TEST(BindFailureCounters, PortCapFoldsTheQuietestIntoOtherAndKeepsKeptPorts) {
  BindFailureCounters counters;
  const BindFailureCounters::Options options{2, 0};
  // Ports 1001..1003 compete for two labels: the busiest win. 80 and 443 are kept (a listener,
  // a configured service) and take no label from the cap.
  counters.Update({{Key(1001), 1},
                   {Key(1002), 7},
                   {Key(1003), 4},
                   {Key(80, "app", kNetns, PORTWATCH_SYSCALL_BIND, EACCES), 2},
                   {Key(443), 1}},
                  {80, 443}, options);
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{
                                    {Series("1002"), 7},
                                    {Series("1003"), 4},
                                    {Series("other"), 1},
                                    {Series("80", "app", kNetns, "bind", "EACCES"), 2},
                                    {Series("443"), 1},
                                }));
  EXPECT_EQ(Folded(counters), 1);
  // 1001 becomes a listener: it gets its own label from now on, while "other" keeps what it
  // had, so no exposed series ever goes down. A new port 1004 still folds.
  counters.Update({{Key(1001), 3}, {Key(1002), 7}, {Key(1003), 4}, {Key(1004), 5}}, {1001},
                  options);
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{
                                    {Series("1001"), 2},
                                    {Series("1002"), 7},
                                    {Series("1003"), 4},
                                    {Series("other"), 6},
                                    {Series("80", "app", kNetns, "bind", "EACCES"), 2},
                                    {Series("443"), 1},
                                }));
  EXPECT_EQ(Folded(counters), 2);
}

TEST(BindFailureCounters, OwnNamespaceFilter) {
  BindFailureCounters counters;
  counters.Update({{Key(8080), 2}, {Key(8080, "app", kOtherNetns), 5}}, {}, {10, kNetns});
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{{Series("8080"), 2}}));
  // Back to every namespace: only what the other namespace did since then shows.
  counters.Update({{Key(8080), 2}, {Key(8080, "app", kOtherNetns), 6}}, {}, {10, 0});
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{
                                    {Series("8080"), 2}, {Series("8080", "app", kOtherNetns), 1}}));
}

TEST(BindFailureCounters, KernelCounterResetCountsFromZero) {
  BindFailureCounters counters;
  counters.Update({{Key(8080), 5}}, {}, {10, 0});
  counters.Update({{Key(8080), 2}}, {}, {10, 0});
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{{Series("8080"), 7}}));
}

TEST(BindFailureCounters, KernelKeysThatDecodeAlikeAddUp) {
  // Found by tests/fuzz (regressions/bind_event/comm_label_collision): two processes whose comms
  // differ only in bytes CommLabel turns into '_' have two kernel counters but one series. The
  // counters used to be compared with each other's last count: 5 + 3 failures, then one more
  // of each, showed 15 instead of 10.
  const BindFailureKey first = DecodeBindKey(RawKey(1, EADDRINUSE, AF_INET, 8080, "app\x01"));
  const BindFailureKey second = DecodeBindKey(RawKey(1, EADDRINUSE, AF_INET, 8080, "app\x02"));
  ASSERT_EQ(first, second);
  BindFailureCounters counters;
  counters.Update({{first, 5}, {second, 3}}, {}, {10, 0});
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{{Series("8080", "app_"), 8}}));
  counters.Update({{first, 6}, {second, 4}}, {}, {10, 0});
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{{Series("8080", "app_"), 10}}));
}

/// The series of a failure in pod `pod` of namespace `ns` (netns `netns`), bind EADDRINUSE.
std::string PodSeries(const std::string& ns, const std::string& pod, uint32_t netns,
                      const std::string& port = "8080", const std::string& process = "app") {
  return "{errno=\"EADDRINUSE\",family=\"ipv4\",namespace=\"" + ns + "\",netns=\"" +
         std::to_string(netns) + "\",pod=\"" + pod + "\",port=\"" + port + "\",process=\"" +
         process + "\",syscall=\"bind\"}";
}

constexpr uint32_t kPodA = 4026533001;
constexpr uint32_t kPodB = 4026533002;
constexpr uint32_t kNotAPod = 4026533003;  // `ip netns`, a container outside Kubernetes

/// A fake PodLookup over a map the test changes, counting the calls per namespace.
struct FakePods {
  std::map<uint32_t, PodLabels> pods;
  std::map<uint32_t, int> calls;

  PodLookup Lookup() {
    return [this](uint32_t netns) -> std::optional<PodLabels> {
      ++calls[netns];
      const auto found = pods.find(netns);
      return found != pods.end() ? std::optional(found->second) : std::nullopt;
    };
  }
};

using Clock = std::chrono::steady_clock;

TEST(BindFailureCountersPods, PodsNamespacesCarryThePodOthersNothing) {
  FakePods fake;
  fake.pods = {{kPodA, {"shop", "web-0"}}, {kPodB, {"", "0b5c4a52-1111-2222-3333-444455556666"}}};
  BindFailureCounters counters;
  counters.Update({{Key(8080, "app", kPodA), 3},
                   {Key(8080, "worker", kPodA), 1},
                   {Key(9090, "app", kPodB), 2},
                   {Key(8080, "app", kNetns), 4},
                   {Key(8080, "app", kNotAPod), 5}},
                  {}, {10, 0}, fake.Lookup());
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{
                {PodSeries("shop", "web-0", kPodA), 3},
                {PodSeries("shop", "web-0", kPodA, "8080", "worker"), 1},
                // The kubelet's directory does not name it: its uid, as every pod series.
                {PodSeries("", "0b5c4a52-1111-2222-3333-444455556666", kPodB, "9090"), 2},
                {Series("8080"), 4},
                {Series("8080", "app", kNotAPod), 5},
            }));
  // One lookup per namespace and scrape, whatever its number of keys and series.
  EXPECT_EQ(fake.calls,
            (std::map<uint32_t, int>{{kPodA, 1}, {kPodB, 1}, {kNetns, 1}, {kNotAPod, 1}}));
  // Nothing new: the namespaces without pod series are not looked up, the pods' are (are they
  // still there?).
  fake.calls.clear();
  counters.Update({{Key(8080, "app", kPodA), 3},
                   {Key(8080, "worker", kPodA), 1},
                   {Key(9090, "app", kPodB), 2},
                   {Key(8080, "app", kNetns), 4},
                   {Key(8080, "app", kNotAPod), 5}},
                  {}, {10, 0}, fake.Lookup());
  EXPECT_EQ(fake.calls, (std::map<uint32_t, int>{{kPodA, 1}, {kPodB, 1}}));
}

// A pod that goes away between its failures and the scrape keeps them; its series stay for
// kForgetGonePodsAfter after it is last seen, then end (never go down), and the inode is free for
// a new namespace.
TEST(BindFailureCountersPods, AGonePodsSeriesKeepTheirLabelsThenEnd) {
  FakePods fake;
  fake.pods = {{kPodA, {"shop", "web-0"}}, {kPodB, {"shop", "web-1"}}};
  BindFailureCounters counters;
  const Clock::time_point start = Clock::now();
  counters.Update({{Key(8080, "app", kPodA), 2}, {Key(8080, "app", kPodB), 1}}, {}, {10, 0},
                  fake.Lookup(), start);
  // web-0 failed twice more, then went away before the scrape: still web-0's.
  fake.pods.erase(kPodA);
  counters.Update({{Key(8080, "app", kPodA), 4}, {Key(8080, "app", kPodB), 1}}, {}, {10, 0},
                  fake.Lookup(), start + std::chrono::seconds(15));
  const std::map<std::string, double> both = {{PodSeries("shop", "web-0", kPodA), 4},
                                              {PodSeries("shop", "web-1", kPodB), 1}};
  EXPECT_EQ(Failures(counters), both);
  // Gone for a bit less than kForgetGonePodsAfter: still there.
  counters.Update({{Key(8080, "app", kPodA), 4}, {Key(8080, "app", kPodB), 1}}, {}, {10, 0},
                  fake.Lookup(),
                  start + std::chrono::seconds(15) + BindFailureCounters::kForgetGonePodsAfter -
                      std::chrono::seconds(1));
  EXPECT_EQ(Failures(counters), both);
  // Then its series end; web-1, still there, keeps its own.
  counters.Update({{Key(8080, "app", kPodA), 4}, {Key(8080, "app", kPodB), 1}}, {}, {10, 0},
                  fake.Lookup(),
                  start + std::chrono::seconds(15) + BindFailureCounters::kForgetGonePodsAfter);
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{PodSeries("shop", "web-1", kPodB), 1}}));
  // The kernel reuses the inode for a namespace that is no pod's: its failures are not web-0's,
  // and only the new ones count (the kernel key's older count was web-0's).
  counters.Update({{Key(8080, "app", kPodA), 7}, {Key(8080, "app", kPodB), 1}}, {}, {10, 0},
                  fake.Lookup(), start + std::chrono::hours(1));
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{PodSeries("shop", "web-1", kPodB), 1},
                                           {Series("8080", "app", kPodA), 3}}));
}

// An inode reused for another pod while the first pod's series are still exposed: the new pod's
// failures start a series of its own, the first pod's keeps its value until it ends.
TEST(BindFailureCountersPods, AReusedInodeStartsTheNewPodsOwnSeries) {
  FakePods fake;
  fake.pods = {{kPodA, {"shop", "web-0"}}};
  BindFailureCounters counters;
  const Clock::time_point start = Clock::now();
  counters.Update({{Key(8080, "app", kPodA), 2}}, {}, {10, 0}, fake.Lookup(), start);
  fake.pods[kPodA] = {"batch", "job-7"};
  counters.Update({{Key(8080, "app", kPodA), 5}}, {}, {10, 0}, fake.Lookup(),
                  start + std::chrono::seconds(30));
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{PodSeries("shop", "web-0", kPodA), 2},
                                           {PodSeries("batch", "job-7", kPodA), 3}}));
  counters.Update({{Key(8080, "app", kPodA), 6}}, {}, {10, 0}, fake.Lookup(),
                  start + std::chrono::seconds(30) + BindFailureCounters::kForgetGonePodsAfter);
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{PodSeries("batch", "job-7", kPodA), 4}}));
}

// A namespace first seen outside any pod and later named as a pod's (the lookup did not know it
// yet): the unlabelled series keeps what it had, the pod's starts with what came after.
TEST(BindFailureCountersPods, ANamespaceLaterKnownAsAPodsStartsItsSeries) {
  FakePods fake;
  BindFailureCounters counters;
  counters.Update({{Key(8080, "app", kPodA), 2}}, {}, {10, 0}, fake.Lookup());
  fake.pods = {{kPodA, {"shop", "web-0"}}};
  counters.Update({{Key(8080, "app", kPodA), 3}}, {}, {10, 0}, fake.Lookup());
  EXPECT_EQ(Failures(counters),
            (std::map<std::string, double>{{Series("8080", "app", kPodA), 2},
                                           {PodSeries("shop", "web-0", kPodA), 1}}));
}

// Pods turned off by a reload: no series carries pod labels any more (they end, the others go
// on); turned on again, the pods' new failures are labelled again.
TEST(BindFailureCountersPods, PodsTurnedOffDropThePodSeries) {
  FakePods fake;
  fake.pods = {{kPodA, {"shop", "web-0"}}};
  BindFailureCounters counters;
  counters.Update({{Key(8080, "app", kPodA), 2}, {Key(8080), 1}}, {}, {10, 0}, fake.Lookup());
  counters.Update({{Key(8080, "app", kPodA), 3}, {Key(8080), 1}}, {}, {10, 0}, nullptr);
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{{Series("8080"), 1},
                                                               {Series("8080", "app", kPodA), 1}}));
  counters.Update({{Key(8080, "app", kPodA), 7}, {Key(8080), 1}}, {}, {10, 0}, fake.Lookup());
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{
                                    {Series("8080"), 1},
                                    {Series("8080", "app", kPodA), 1},
                                    {PodSeries("shop", "web-0", kPodA), 4},
                                }));
}

// Pods' series share the port cap with everything else.
TEST(BindFailureCountersPods, PodsSeriesShareThePortCap) {
  FakePods fake;
  fake.pods = {{kPodA, {"shop", "web-0"}}};
  BindFailureCounters counters;
  counters.Update({{Key(1001, "app", kPodA), 5}, {Key(1002, "app", kPodA), 1}, {Key(1003), 3}}, {},
                  {2, 0}, fake.Lookup());
  EXPECT_EQ(Failures(counters), (std::map<std::string, double>{
                                    {PodSeries("shop", "web-0", kPodA, "1001"), 5},
                                    {PodSeries("shop", "web-0", kPodA, "other"), 1},
                                    {Series("1003"), 3},
                                }));
  EXPECT_EQ(Folded(counters), 1);
}

}  // namespace
}  // namespace portwatch
