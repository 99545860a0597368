// The services collector inside pods, on fixtures: container names from /var/log/containers,
// listener series labelled with their pod and container, service reports scoped to a pod, the
// whole collector over recorded sock_diag answers of the node and three pods and a fake /proc,
// and finding the pod `diagnose --pod` names.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/services/container_names.h"
#include "collectors/services/service_metrics.h"
#include "collectors/services/service_table.h"
#include "collectors/services/services_collector.h"
#include "exporter/config.h"
#include "exporter/diagnose.h"
#include "tests/unit/metric_samples.h"
#include "tests/unit/netlink_builder.h"

namespace portwatch {
namespace {

namespace fs = std::filesystem;
using netlink::Family;
using netlink::Protocol;
using unit::DatagramBuilder;
using unit::DiagSocket;
using unit::Samples;

const std::string kIdA = std::string(60, 'a') + "0001";
const std::string kIdB = std::string(60, 'b') + "0002";
const std::string kIdC = std::string(60, 'c') + "0003";

// --- container names ---

TEST(ContainerLogNameTest, TakesTheKubeletsEntryNameApart) {
  EXPECT_EQ(ParseContainerLogName("web-0_shop_app-" + kIdA + ".log"),
            (ContainerLogName{"web-0", "shop", "app", kIdA}));
  // Dashes and dots belong to the names; only the last "-<64 hex>.log" is the id.
  EXPECT_EQ(ParseContainerLogName("coredns-5d78c9869d-abcde_kube-system_core-dns-" + kIdB + ".log"),
            (ContainerLogName{"coredns-5d78c9869d-abcde", "kube-system", "core-dns", kIdB}));
  EXPECT_EQ(ParseContainerLogName("a.b_c_d-" + kIdA + ".log"),
            (ContainerLogName{"a.b", "c", "d", kIdA}));
}

TEST(ContainerLogNameTest, AnythingElseIsNoEntry) {
  for (const std::string& name : {
           std::string("web-0_shop_app-") + kIdA,                 // no .log
           "web-0_shop_app-" + kIdA.substr(1) + ".log",           // 63 digits
           "web-0_shop_app-" + kIdA.substr(0, 63) + "G.log",      // not hex
           "web-0_shop_app-" + std::string(64, 'A') + ".log",     // upper case
           "web-0_shop_app_" + kIdA + ".log",                     // no dash before the id
           "web-0_shop-app-" + kIdA + ".log",                     // two parts
           "web_0_shop_app-" + kIdA + ".log",                     // four parts
           "_shop_app-" + kIdA + ".log",                          // empty pod
           "web-0__app-" + kIdA + ".log",                         // empty namespace
           "web-0_shop_-" + kIdA + ".log",                        // empty container
           std::string("."), std::string(".."), std::string(""),  // listing noise
       }) {
    EXPECT_EQ(ParseContainerLogName(name), std::nullopt) << name;
  }
}

TEST(ContainerNamesTest, NamesKnownIdsAndShortensTheRest) {
  const ContainerNames names({"web-0_shop_app-" + kIdA + ".log", "not-an-entry", "."});
  EXPECT_EQ(names.Size(), 1U);
  EXPECT_EQ(names.NameOf(kIdA), "app");
  EXPECT_EQ(names.NameOf(kIdB), "bbbbbbbbbbbb");
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/portwatch-pod-services-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Touch(const fs::path& path) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "";
  }

  fs::path dir_;
};

using ContainerNamesCacheTest = TempDirTest;

TEST_F(ContainerNamesCacheTest, ListsTheDirectoryAgainOnlyWhenItChanged) {
  const fs::path dir = dir_ / "containers";
  Touch(dir / ("web-0_shop_app-" + kIdA + ".log"));
  ContainerNamesCache cache;
  EXPECT_EQ(cache.Read(dir.string()).NameOf(kIdA), "app");
  // Listed within the second its mtime moved: not trusted whole, listed again.
  Touch(dir / ("web-1_shop_sidecar-" + kIdB + ".log"));
  EXPECT_EQ(cache.Read(dir.string()).NameOf(kIdB), "sidecar");
  // Settled (an hour old): kept while the mtime stays, so an entry slipped in behind an
  // unchanged mtime is not seen...
  const auto settled = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(dir, settled);
  EXPECT_EQ(cache.Read(dir.string()).Size(), 2U);
  Touch(dir / ("web-2_shop_app-" + kIdC + ".log"));
  fs::last_write_time(dir, settled);
  EXPECT_EQ(cache.Read(dir.string()).Size(), 2U);
  // ...and listed again once it moves.
  fs::remove(dir / ("web-1_shop_sidecar-" + kIdB + ".log"));
  EXPECT_EQ(cache.Read(dir.string()).Size(), 2U);
  EXPECT_EQ(cache.Read(dir.string()).NameOf(kIdC), "app");
  EXPECT_EQ(cache.Read(dir.string()).NameOf(kIdB), "bbbbbbbbbbbb");
  // Missing: nothing named, ids shortened.
  EXPECT_EQ(cache.Read((dir_ / "missing").string()).NameOf(kIdA), "aaaaaaaaaaaa");
}

// --- listener series ---

ProcessInfo Process(pid_t pid, const std::string& command) {
  ProcessInfo process;
  process.pid = pid;
  process.command = command;
  process.cmdline = command;
  return process;
}

ListeningSocket TcpListener(uint16_t port, uint32_t inode) {
  ListeningSocket listener;
  listener.protocol = netlink::Protocol::kTcp;
  listener.port = port;
  listener.inode = inode;
  return listener;  // 0.0.0.0
}

const std::string kUidWeb = "11111111-1111-4111-8111-111111111111";
const std::string kUidAgent = "22222222-2222-4222-8222-222222222222";
const std::string kUidOther = "33333333-3333-4333-8333-333333333333";

ServiceScope PodScope(uint64_t netns, const std::string& uid, const std::string& ns,
                      const std::string& pod) {
  return ServiceScope{netns, uid, ns, pod};
}

TEST(ListenerMetricsTest, PodsAndContainersLabelTheirListeners) {
  const std::vector<ListeningSocket> node = {TcpListener(22, 1), TcpListener(9100, 2),
                                             TcpListener(9200, 3)};
  const std::vector<ListeningSocket> web = {TcpListener(8080, 11), TcpListener(8081, 12),
                                            TcpListener(8082, 13)};
  const std::vector<ListeningSocket> unnamed = {TcpListener(7070, 21)};
  SocketOwners owners;
  owners.by_inode[1] = {Process(10, "sshd")};
  owners.by_inode[2] = {Process(20, "node_exporter")};  // hostNetwork pod, named
  owners.by_inode[3] = {Process(30, "agent")};          // hostNetwork pod, not named
  owners.by_inode[11] = {Process(40, "nginx")};         // a container of web-0
  owners.by_inode[12] = {Process(41, "pause")};         // web-0's own cgroup: no container
  // 13: no visible holder. 21: a process of another pod holds it (passed over a unix socket).
  owners.by_inode[21] = {Process(50, "intruder")};
  HolderPods holder_pods;
  holder_pods.containers[20] = {kUidAgent, kIdB};
  holder_pods.containers[30] = {kUidOther, kIdC};
  holder_pods.containers[40] = {kUidWeb, kIdA};
  holder_pods.containers[41] = {kUidWeb, ""};
  holder_pods.containers[50] = {kUidAgent, kIdB};
  holder_pods.pods[kUidWeb] = {"shop", "web-0"};
  holder_pods.pods[kUidAgent] = {"monitoring", "agent-0"};
  holder_pods.container_names = ContainerNames({"web-0_shop_app-" + kIdA + ".log"});
  ServicesOptions options;

  std::vector<prometheus::MetricFamily> out;
  AppendListenerMetrics({{ServiceScope{}, &node},
                         {PodScope(4001, kUidWeb, "shop", "web-0"), &web},
                         {PodScope(4002, kUidOther, "", kUidOther), &unnamed}},
                        5, owners, holder_pods, options, out);
  EXPECT_EQ(
      Samples(out, "portwatch_listener_info"),
      (std::map<std::string, double>{
          {"{address=\"0.0.0.0\",container=\"cccccccccccc\",family=\"ipv4\",pod=\"" + kUidOther +
               "\",port=\"9200\",process=\"agent\",protocol=\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",container=\"app\",family=\"ipv4\",namespace=\"shop\",pod=\"web-"
           "0\",port=\"8080\",process=\"nginx\",protocol=\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",container=\"bbbbbbbbbbbb\",family=\"ipv4\",namespace="
           "\"monitoring\",pod=\"agent-0\",port=\"9100\",process=\"node_exporter\",protocol="
           "\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",family=\"ipv4\",namespace=\"shop\",pod=\"web-0\",port=\"8081\","
           "process=\"pause\",protocol=\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",family=\"ipv4\",namespace=\"shop\",pod=\"web-0\",port=\"8082\","
           "process=\"unknown\",protocol=\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",family=\"ipv4\",pod=\"" + kUidOther +
               "\",port=\"7070\",process=\"intruder\",protocol=\"tcp\"}",
           1},
          {"{address=\"0.0.0.0\",family=\"ipv4\",port=\"22\",process=\"sshd\",protocol=\"tcp\"}",
           1},
      }));
  EXPECT_EQ(Samples(out, "portwatch_listener_info_dropped"),
            (std::map<std::string, double>{{"", 5}}));

  // The cap holds for the node and every pod together.
  options.max_listener_series = 4;
  out.clear();
  AppendListenerMetrics({{ServiceScope{}, &node},
                         {PodScope(4001, kUidWeb, "shop", "web-0"), &web},
                         {PodScope(4002, kUidOther, "", kUidOther), &unnamed}},
                        0, owners, holder_pods, options, out);
  EXPECT_EQ(Samples(out, "portwatch_listener_info").size(), 4U);
  EXPECT_EQ(Samples(out, "portwatch_listener_info_dropped"),
            (std::map<std::string, double>{{"", 3}}));
}

TEST(ListenerMetricsTest, WithoutPodsTheNodesListenersAreAsBefore) {
  const std::vector<ListeningSocket> node = {TcpListener(22, 1)};
  SocketOwners owners;
  owners.by_inode[1] = {Process(10, "sshd")};
  ServicesOptions options;
  options.pid_label = true;
  std::vector<prometheus::MetricFamily> out;
  AppendListenerMetrics(node, 0, owners, options, out);
  EXPECT_EQ(Samples(out, "portwatch_listener_info"),
            (std::map<std::string, double>{{"{address=\"0.0.0.0\",family=\"ipv4\",port=\"22\","
                                            "process=\"sshd\",protocol=\"tcp\",pid=\"10\"}",
                                            1}}));
}

// --- services scoped to a pod ---

netlink::SocketRecord ListenRecord(uint16_t port, uint32_t inode) {
  netlink::SocketRecord record;
  record.family = AF_INET;
  record.state = netlink::kListen;
  record.local_port = port;
  record.inode = inode;
  return record;
}

ServiceConfig JavaService() {
  ServiceConfig service;
  service.name = "shop-web";
  service.port = 8080;
  service.owner.process = "java";
  PodSelector selector;
  selector.namespace_name = "shop";
  service.pods = selector;
  return service;
}

TEST(ScopedServiceTest, APodsReportCarriesItsScopeItsProcessesAndItsOwnMemory) {
  const ServiceScope web0 = PodScope(4001, kUidWeb, "shop", "web-0");
  const ServiceScope web1 = PodScope(4002, kUidOther, "shop", "web-1");
  KernelFacts facts;
  facts.range = {8000, 8999};
  ServiceTable in_web0({JavaService()}, ServicesOptions{}, facts, web0);
  in_web0.Add(Protocol::kTcp, ListenRecord(8080, 11));
  ServiceTable in_web1({JavaService()}, ServicesOptions{}, KernelFacts{}, web1);
  in_web1.Add(Protocol::kTcp, ListenRecord(8080, 12));

  SocketOwners owners;
  owners.by_inode[11] = {Process(40, "java")};
  owners.by_inode[12] = {Process(50, "nginx")};
  owners.processes = {Process(1, "java"), Process(2, "java")};  // the node's
  owners.processes_by_netns[4001] = {Process(40, "java"), Process(41, "java")};
  owners.processes_by_netns[4002] = {Process(50, "nginx")};
  ListenerMemory memory;
  const auto now = std::chrono::steady_clock::now();
  // web-0's listener set SO_REUSEADDR, web-1's did not: each pod remembers its own.
  const ReuseLookup reuse = [](uint32_t inode) { return std::optional<bool>(inode == 11); };
  std::vector<ServiceReport> reports = in_web0.Reports(owners, reuse, memory, now);
  const std::vector<ServiceReport> web1_reports = in_web1.Reports(owners, reuse, memory, now);
  reports.insert(reports.end(), web1_reports.begin(), web1_reports.end());
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_EQ(reports[0].scope.pod, "web-0");
  EXPECT_EQ(reports[0].holders.owned_listeners, 1U);
  EXPECT_EQ(reports[0].holders.matching_processes, 2U);  // web-0's two java, not the node's
  EXPECT_TRUE(reports[0].in_ephemeral_range);            // the pod's range
  EXPECT_EQ(reports[1].holders.owned_listeners, 0U);
  EXPECT_EQ(reports[1].holders.matching_processes, 0U);
  EXPECT_FALSE(reports[1].in_ephemeral_range);
  EXPECT_EQ(memory.Recall("shop-web in pod " + kUidWeb, now), true);
  EXPECT_EQ(memory.Recall("shop-web in pod " + kUidOther, now), false);
  EXPECT_EQ(memory.Recall("shop-web", now), std::nullopt);

  std::vector<prometheus::MetricFamily> out;
  AppendServiceMetrics(reports, out);
  AppendServicePods({{"shop-web", 2}, {"nowhere", 0}}, out);
  EXPECT_EQ(Samples(out, "portwatch_service_up"),
            (std::map<std::string, double>{
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 1},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 0}}));
  EXPECT_EQ(Samples(out, "portwatch_service_conflict"),
            (std::map<std::string, double>{
                {"{holder=\"nginx\",service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 1}}));
  EXPECT_EQ(Samples(out, "portwatch_service_port_in_ephemeral_range"),
            (std::map<std::string, double>{
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 1},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 0}}));
  EXPECT_EQ(Samples(out, "portwatch_service_info").size(), 2U);
  EXPECT_EQ(Samples(out, "portwatch_service_bind_prediction").size(), 12U);
  EXPECT_EQ(
      Samples(out, "portwatch_service_pods"),
      (std::map<std::string, double>{{"{service=\"nowhere\"}", 0}, {"{service=\"shop-web\"}", 2}}));
}

TEST(ScopedServiceTest, ANodeServiceHasNoPodLabels) {
  ServiceConfig service = JavaService();
  service.pods.reset();
  ServiceTable table({service}, ServicesOptions{}, KernelFacts{});
  ListenerMemory memory;
  std::vector<prometheus::MetricFamily> out;
  AppendServiceMetrics(
      table.Reports(
          {}, [](uint32_t) { return std::nullopt; }, memory, std::chrono::steady_clock::now()),
      out);
  EXPECT_EQ(Samples(out, "portwatch_service_up"),
            (std::map<std::string, double>{{"{service=\"shop-web\"}", 0}}));
  out.clear();
  AppendServicePods({}, out);
  EXPECT_TRUE(out.empty());
}

// --- the whole collector: the node and pods on recorded answers, a fake /proc ---

/// The pods of a fixture: a discovery, each pod's sock_diag answers and sysctls.
class FakePods : public PodNetworks {
 public:
  std::shared_ptr<const PodDiscovery> Discover(const std::string& /*pod_logs_dir*/) override {
    return discovery;
  }
  Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const override {
    opened.push_back(inode);
    auto kernel = kernels.find(inode);
    if (kernel == kernels.end()) {
      return Failure{"no such namespace"};
    }
    return std::unique_ptr<netlink::Transport>(
        std::make_unique<netlink::ReplayTransport>(kernel->second));
  }
  /// The collectors here read through sock_diag only (no iterators offered): never entered.
  Result<netlink::UniqueFd> CreateInside(uint64_t inode,
                                         const NamespaceWorker::Make& /*make*/) const override {
    entered.push_back(inode);
    return Failure{"no namespace to enter in this fixture"};
  }
  std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const override {
    auto found = ranges.find(inode);
    return found != ranges.end() ? std::optional(found->second) : std::nullopt;
  }
  std::optional<std::string> ReservedPorts(uint64_t inode) const override {
    auto found = reserved.find(inode);
    return found != reserved.end() ? std::optional(found->second) : std::nullopt;
  }

  std::shared_ptr<PodDiscovery> discovery = std::make_shared<PodDiscovery>();
  std::map<uint64_t, std::vector<netlink::Exchange>> kernels;
  std::map<uint64_t, EphemeralRange> ranges;
  std::map<uint64_t, std::string> reserved;
  mutable std::vector<uint64_t> opened;
  mutable std::vector<uint64_t> entered;
};

/// Sock_diag answers for one namespace, request by request in the collector's order.
class KernelScript {
 public:
  /// TCP listeners (port, inode) of a family, then (with `service_ports`) the other TCP sockets
  /// on them (none), then every UDP socket (none).
  KernelScript& Family(Family family, const std::vector<std::pair<uint16_t, uint32_t>>& listeners,
                       const std::vector<uint16_t>& service_ports = {}) {
    DatagramBuilder datagram = Next();
    for (const auto& [port, inode] : listeners) {
      DiagSocket socket;
      socket.family = family == Family::kIpv4 ? AF_INET : AF_INET6;
      socket.state = netlink::kListen;
      socket.local_address = family == Family::kIpv4 ? "0.0.0.0" : "::";
      socket.remote_address = socket.local_address;
      socket.local_port = port;
      socket.inode = inode;
      datagram.Socket(socket);
    }
    Add(unit::Request(Protocol::kTcp, family, netlink::StateBit(netlink::kListen)), datagram);
    if (!service_ports.empty()) {
      Add(unit::Request(Protocol::kTcp, family,
                        netlink::kAllStates & ~netlink::StateBit(netlink::kListen), service_ports),
          Next());
    }
    Add(unit::Request(Protocol::kUdp, family, netlink::kAllStates), Next());
    return *this;
  }
  std::vector<netlink::Exchange> Done() const { return exchanges_; }

 private:
  static constexpr uint32_t kPortId = 4242;
  DatagramBuilder Next() const {
    return DatagramBuilder(static_cast<uint32_t>(exchanges_.size() + 1), kPortId);
  }
  void Add(const netlink::DumpRequest& request, DatagramBuilder datagram) {
    const auto sequence = static_cast<uint32_t>(exchanges_.size() + 1);
    exchanges_.push_back(unit::MakeExchange(request, sequence, kPortId, {datagram.Done().Build()}));
  }
  std::vector<netlink::Exchange> exchanges_;
};

class PodServicesCollectorTest : public TempDirTest {
 protected:
  /// <proc>/<pid>: comm, cmdline, cgroup, fd/3 -> socket:[inode] (when given), ns/net as a
  /// hard link to the namespace's file (the namespace's identity is that file's inode).
  void AddProcess(pid_t pid, const std::string& comm, const std::string& cgroup,
                  const std::string& netns, uint32_t socket_inode = 0) {
    const fs::path dir = dir_ / "proc" / std::to_string(pid);
    fs::create_directories(dir / "ns");
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "cmdline") << comm;
    std::ofstream(dir / "cgroup") << cgroup;
    fs::create_hard_link(Namespace(netns), dir / "ns" / "net");
    if (socket_inode != 0) {
      fs::create_directories(dir / "fd");
      fs::create_symlink("socket:[" + std::to_string(socket_inode) + "]", dir / "fd" / "3");
    }
  }
  /// The file standing for network namespace `name`, made on first use.
  fs::path Namespace(const std::string& name) {
    const fs::path path = dir_ / "namespaces" / name;
    if (!fs::exists(path)) {
      fs::create_directories(path.parent_path());
      std::ofstream(path) << name;
    }
    return path;
  }
  uint64_t InodeOf(const std::string& name) {
    struct stat status {};
    EXPECT_EQ(::stat(Namespace(name).c_str(), &status), 0);
    return status.st_ino;
  }
  /// The node's port range, no reserved port, a 6.12 kernel, and the exporter in namespace "node".
  void WriteNodeKernel() {
    WriteProc("sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
    WriteProc("sys/net/ipv4/ip_local_reserved_ports", "\n");
    WriteProc("sys/kernel/osrelease", "6.12.0\n");
    fs::create_directories(dir_ / "proc" / "self" / "ns");
    fs::create_hard_link(Namespace("node"), dir_ / "proc" / "self" / "ns" / "net");
  }
  void WriteProc(const std::string& relative, const std::string& text) {
    fs::create_directories((dir_ / "proc" / relative).parent_path());
    std::ofstream(dir_ / "proc" / relative) << text;
  }
};

std::string CgroupOf(const std::string& uid, const std::string& container_id) {
  return "0::/kubepods/besteffort/pod" + uid + (container_id.empty() ? "" : "/" + container_id) +
         "\n";
}

TEST_F(PodServicesCollectorTest, OnePassOverProcFindsTheNodesAndEveryPodsHolders) {
  // The node: sshd (no pod) on 22, a hostNetwork pod's node_exporter on 9100, a java that is no
  // pod's. web-0: nginx on 8080 (the wrong holder) and an idle java. web-1: java on 8080, the
  // port reserved in the pod. db-0: postgres on 5432, outside the service's selector. gone-0:
  // not entered.
  WriteNodeKernel();
  const std::string web0_uid = "aaaaaaaa-0000-4000-8000-000000000001";
  const std::string web1_uid = "aaaaaaaa-0000-4000-8000-000000000002";
  const std::string db0_uid = "aaaaaaaa-0000-4000-8000-000000000003";
  AddProcess(10, "sshd", "0::/system.slice/ssh.service\n", "node", 1001);
  AddProcess(11, "java", "0::/system.slice/app.service\n", "node");
  AddProcess(20, "node_exporter", CgroupOf(kUidAgent, kIdB), "node", 1002);
  AddProcess(30, "nginx", CgroupOf(web0_uid, kIdA), "web-0", 2001);
  AddProcess(31, "java", CgroupOf(web0_uid, kIdA), "web-0");
  AddProcess(40, "java", CgroupOf(web1_uid, kIdC), "web-1", 2002);
  AddProcess(50, "postgres", CgroupOf(db0_uid, ""), "db-0", 2003);
  fs::create_directories(dir_ / "pods" / ("monitoring_agent-0_" + kUidAgent));
  Touch(dir_ / "containers" / ("web-0_shop_app-" + kIdA + ".log"));
  Touch(dir_ / "containers" / ("agent-0_monitoring_node-exporter-" + kIdB + ".log"));

  auto pods = std::make_shared<FakePods>();
  const uint64_t web0 = InodeOf("web-0");
  const uint64_t web1 = InodeOf("web-1");
  const uint64_t db0 = InodeOf("db-0");
  const uint64_t gone0 = InodeOf("gone-0");
  pods->discovery->pods = {
      {web0, 30, web0_uid, "shop", "web-0", true, ""},
      {web1, 40, web1_uid, "shop", "web-1", true, ""},
      {db0, 50, db0_uid, "shop", "db-0", true, ""},
      {gone0, 60, "aaaaaaaa-0000-4000-8000-000000000004", "shop", "web-9", false, "gone"},
  };
  std::sort(pods->discovery->pods.begin(), pods->discovery->pods.end(),
            [](const PodNamespace& a, const PodNamespace& b) { return a.inode < b.inode; });
  pods->discovery->directory = PodDirectory::Read((dir_ / "pods").string());
  pods->kernels[web0] = KernelScript()
                            .Family(Family::kIpv4, {{8080, 2001}}, {8080})
                            .Family(Family::kIpv6, {}, {8080})
                            .Done();
  pods->kernels[web1] = KernelScript()
                            .Family(Family::kIpv4, {{8080, 2002}}, {8080})
                            .Family(Family::kIpv6, {}, {8080})
                            .Done();
  pods->kernels[db0] =
      KernelScript().Family(Family::kIpv4, {{5432, 2003}}).Family(Family::kIpv6, {}).Done();
  pods->ranges[web0] = {8000, 8999};
  pods->ranges[web1] = {8000, 8999};
  pods->reserved[web1] = "8080";
  const std::vector<netlink::Exchange> node_kernel = KernelScript()
                                                         .Family(Family::kIpv4, {{22, 1001}})
                                                         .Family(Family::kIpv6, {{9100, 1002}})
                                                         .Done();
  ServicesCollector collector(
      ProcFs((dir_ / "proc").string()),
      [&node_kernel]() -> Result<std::unique_ptr<netlink::Transport>> {
        return std::unique_ptr<netlink::Transport>(
            std::make_unique<netlink::ReplayTransport>(node_kernel));
      },
      pods);

  Result<Config> config = ParseConfig(
      "collectors:\n"
      "  sockets:\n"
      "    pod_logs_dir: " +
          (dir_ / "pods").string() +
          "\n"
          "  services:\n"
          "    container_logs_dir: " +
          (dir_ / "containers").string() +
          "\n"
          "services:\n"
          "  - name: shop-web\n"
          "    port: 8080\n"
          "    pods: {namespace: shop, name: \"web-.*\"}\n"
          "    owner: {process: java}\n",
      "inline");
  ASSERT_TRUE(config.Ok()) << config.Error();
  std::vector<prometheus::MetricFamily> out;
  const Status status = collector.Collect(*config, out);
  ASSERT_TRUE(status.Ok()) << status.Error();

  std::sort(pods->opened.begin(), pods->opened.end());
  std::vector<uint64_t> entered = {web0, web1, db0};
  std::sort(entered.begin(), entered.end());
  EXPECT_EQ(pods->opened, entered);  // gone-0 is not entered
  // No iterators offered to this collector: every pod through its sock_diag socket alone.
  EXPECT_TRUE(pods->entered.empty());
  EXPECT_EQ(Samples(out, "portwatch_listener_info"),
            (std::map<std::string, double>{
                {"{address=\"0.0.0.0\",container=\"app\",family=\"ipv4\",namespace=\"shop\",pod="
                 "\"web-0\",port=\"8080\",process=\"nginx\",protocol=\"tcp\"}",
                 1},
                {"{address=\"0.0.0.0\",container=\"cccccccccccc\",family=\"ipv4\",namespace="
                 "\"shop\",pod=\"web-1\",port=\"8080\",process=\"java\",protocol=\"tcp\"}",
                 1},
                {"{address=\"0.0.0.0\",family=\"ipv4\",namespace=\"shop\",pod=\"db-0\",port="
                 "\"5432\",process=\"postgres\",protocol=\"tcp\"}",
                 1},
                {"{address=\"0.0.0.0\",family=\"ipv4\",port=\"22\",process=\"sshd\",protocol="
                 "\"tcp\"}",
                 1},
                {"{address=\"::\",container=\"node-exporter\",family=\"ipv6\",namespace="
                 "\"monitoring\",pod=\"agent-0\",port=\"9100\",process=\"node_exporter\","
                 "protocol=\"tcp\"}",
                 1},
            }));
  EXPECT_EQ(Samples(out, "portwatch_service_up"),
            (std::map<std::string, double>{
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 0},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 1}}));
  EXPECT_EQ(Samples(out, "portwatch_service_conflict"),
            (std::map<std::string, double>{
                {"{holder=\"nginx\",service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 1}}));
  // Each pod's `ps -ef`: the idle java of web-0 counts there; the node's java nowhere.
  EXPECT_EQ(Samples(out, "portwatch_service_matching_processes"),
            (std::map<std::string, double>{
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 1},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 1}}));
  // Each pod's range and reserved ports: 8080 is reserved in web-1 only.
  EXPECT_EQ(Samples(out, "portwatch_service_port_in_ephemeral_range"),
            (std::map<std::string, double>{
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-0\"}", 1},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 0}}));
  EXPECT_EQ(Samples(out, "portwatch_service_pods"),
            (std::map<std::string, double>{{"{service=\"shop-web\"}", 2}}));
  EXPECT_EQ(Samples(out, "portwatch_process_scan_full_total"),
            (std::map<std::string, double>{{"", 1}}));

  // Pods off: the node alone, and the scoped service shows in no pod.
  config->sockets.pods = false;
  pods->opened.clear();
  out.clear();
  ASSERT_TRUE(collector.Collect(*config, out).Ok());
  EXPECT_TRUE(pods->opened.empty());
  EXPECT_EQ(Samples(out, "portwatch_listener_info").size(), 2U);
  EXPECT_EQ(Samples(out, "portwatch_listener_info")
                .count("{address=\"0.0.0.0\",family=\"ipv4\",port=\"22\",process=\"sshd\","
                       "protocol=\"tcp\"}"),
            1U);
  EXPECT_TRUE(Samples(out, "portwatch_service_up").empty());
  EXPECT_EQ(Samples(out, "portwatch_service_pods"),
            (std::map<std::string, double>{{"{service=\"shop-web\"}", 0}}));
}

TEST_F(PodServicesCollectorTest, TheSocketsCollectorsDumpsAnswerLikeTheKernel) {
  // The same node and pod read twice: once from the kernel, once from recordings of the
  // sockets collector's full dumps (which also held a connection on a port of no service). The
  // second collector must not open a transport anywhere and must say the same.
  WriteNodeKernel();
  const std::string web1_uid = "aaaaaaaa-0000-4000-8000-000000000002";
  AddProcess(10, "sshd", "0::/system.slice/ssh.service\n", "node", 1001);
  AddProcess(40, "java", CgroupOf(web1_uid, kIdC), "web-1", 2002);
  const uint64_t web1 = InodeOf("web-1");
  const std::string config_text =
      "collectors:\n"
      "  sockets:\n"
      "    pod_logs_dir: " +
      (dir_ / "pods").string() +
      "\n"
      "services:\n"
      "  - name: ssh\n"
      "    port: 22\n"
      "    owner: {process: sshd}\n"
      "  - name: shop-web\n"
      "    port: 8080\n"
      "    pods: {namespace: shop, name: \"web-.*\"}\n"
      "    owner: {process: java}\n";
  Result<Config> config = ParseConfig(config_text, "inline");
  ASSERT_TRUE(config.Ok()) << config.Error();

  auto make_pods = [&] {
    auto pods = std::make_shared<FakePods>();
    pods->discovery->pods = {{web1, 40, web1_uid, "shop", "web-1", true, ""}};
    pods->ranges[web1] = {8000, 8999};
    return pods;
  };
  auto kernel_pods = make_pods();
  kernel_pods->kernels[web1] = KernelScript()
                                   .Family(Family::kIpv4, {{8080, 2002}}, {8080})
                                   .Family(Family::kIpv6, {}, {8080})
                                   .Done();
  const std::vector<netlink::Exchange> node_kernel = KernelScript()
                                                         .Family(Family::kIpv4, {{22, 1001}}, {22})
                                                         .Family(Family::kIpv6, {}, {22})
                                                         .Done();
  ServicesCollector from_kernel(
      ProcFs((dir_ / "proc").string()),
      [&node_kernel]() -> Result<std::unique_ptr<netlink::Transport>> {
        return std::unique_ptr<netlink::Transport>(
            std::make_unique<netlink::ReplayTransport>(node_kernel));
      },
      kernel_pods);

  auto recorded_pods = make_pods();  // no kernel: Open() fails
  auto dumps = std::make_shared<KeptDumps>();
  auto listener = [](uint16_t port, uint32_t inode) {
    netlink::SocketRecord record;
    record.family = AF_INET;
    record.state = netlink::kListen;
    record.local_port = port;
    record.inode = inode;
    return record;
  };
  auto record = [&](uint64_t key, uint16_t port, uint32_t inode) {
    auto dump = std::make_shared<netlink::RecordedDump>(
        std::make_shared<netlink::RecordedDump::PortSet>(
            netlink::RecordedDump::PortSet().set(22).set(8080)),
        100);
    dump->Add(Protocol::kTcp, Family::kIpv4, listener(port, inode));
    netlink::SocketRecord elsewhere = listener(443, 9999);
    elsewhere.state = netlink::kEstablished;
    dump->Add(Protocol::kTcp, Family::kIpv4, elsewhere);
    for (Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
      for (Family family : {Family::kIpv4, Family::kIpv6}) {
        dump->Complete(protocol, family, netlink::kAllStates);
      }
    }
    dumps->Keep(key, dump);
  };
  record(KeptDumps::kOwnNamespace, 22, 1001);
  record(web1, 8080, 2002);
  ServicesCollector from_recordings(
      ProcFs((dir_ / "proc").string()),
      []() -> Result<std::unique_ptr<netlink::Transport>> { return Failure{"no kernel"}; },
      recorded_pods, dumps);

  std::vector<prometheus::MetricFamily> expected;
  ASSERT_TRUE(from_kernel.Collect(*config, expected).Ok());
  std::vector<prometheus::MetricFamily> got;
  const Status status = from_recordings.Collect(*config, got);
  ASSERT_TRUE(status.Ok()) << status.Error();

  EXPECT_TRUE(recorded_pods->opened.empty());
  EXPECT_EQ(Samples(expected, "portwatch_services_sock_diag_requests"),
            (std::map<std::string, double>{{"{answered_by=\"kernel\"}", 12},
                                           {"{answered_by=\"sockets_collector\"}", 0}}));
  EXPECT_EQ(Samples(got, "portwatch_services_sock_diag_requests"),
            (std::map<std::string, double>{{"{answered_by=\"kernel\"}", 0},
                                           {"{answered_by=\"sockets_collector\"}", 12}}));
  ASSERT_EQ(got.size(), expected.size());
  for (const prometheus::MetricFamily& family : expected) {
    if (family.name != "portwatch_services_sock_diag_requests") {
      EXPECT_EQ(Samples(got, family.name), Samples(expected, family.name)) << family.name;
    }
  }
  EXPECT_EQ(Samples(got, "portwatch_service_up"),
            (std::map<std::string, double>{
                {"{service=\"ssh\"}", 1},
                {"{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}", 1}}));

  // The next scrape: the sockets collector did not record them again (a pod sharing the node's
  // hash waiting its turn): the pod is read from the kernel, whose answer here is an error.
  dumps->Clear();
  record(KeptDumps::kOwnNamespace, 22, 1001);
  got.clear();
  ASSERT_TRUE(from_recordings.Collect(*config, got).Ok());
  EXPECT_EQ(recorded_pods->opened, std::vector<uint64_t>{web1});
  EXPECT_TRUE(Samples(got, "portwatch_service_up")
                  .count("{service=\"shop-web\",namespace=\"shop\",pod=\"web-1\"}") == 0);
}

// --- diagnose --pod ---

TEST(FindPodTest, ByNamespaceAndNameOrByUid) {
  PodDiscovery discovery;
  discovery.pods = {{100, 1, kUidWeb, "shop", "web-0", true, ""},
                    {200, 2, kUidOther, "", kUidOther, true, ""}};
  Result<const PodNamespace*> found = FindPod(discovery, "shop/web-0");
  ASSERT_TRUE(found.Ok()) << found.Error();
  EXPECT_EQ((*found)->inode, 100U);
  std::string upper = kUidOther;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  found = FindPod(discovery, upper);
  ASSERT_TRUE(found.Ok()) << found.Error();
  EXPECT_EQ((*found)->inode, 200U);
  EXPECT_EQ(FindPod(discovery, "shop/web-1").Error(),
            "no pod shop/web-1 with a network namespace of its own on this node (2 found; a "
            "hostNetwork pod shares the node's: diagnose it without --pod)");
  EXPECT_EQ(FindPod(discovery, "web-0").Error(),
            "--pod \"web-0\" is neither NAMESPACE/POD nor a pod uid");
  EXPECT_EQ(FindPod(discovery, "shop/").Error(),
            "--pod \"shop/\" is neither NAMESPACE/POD nor a pod uid");
}

}  // namespace
}  // namespace portwatch
