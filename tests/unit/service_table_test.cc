// ServiceTable and the holder classification: owner against foreign holders, instances, and
// the orchestration of one scrape (intake, holders, remembered listener flags, predictions) on
// hand-built sock_diag records and a fake SO_REUSEADDR lookup.
#include "collectors/services/service_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

ProcessInfo Process(const std::string& command, const std::string& cmdline,
                    const std::string& exe) {
  ProcessInfo process;
  process.pid = 100;
  process.command = command;
  process.cmdline = cmdline;
  process.exe = exe;
  return process;
}

OwnerMatch Owner(const std::string& process, const std::string& cmdline, const std::string& exe) {
  OwnerMatch owner;
  owner.process = process;
  owner.cmdline = cmdline;
  if (!cmdline.empty()) {
    Result<std::shared_ptr<const re2::RE2>> regex = CompileCmdlineRegex(cmdline);
    EXPECT_TRUE(regex.Ok()) << cmdline << ": " << regex.Error();
    owner.cmdline_regex = regex.Ok() ? *regex : nullptr;
  }
  owner.exe = exe;
  return owner;
}

const ProcessInfo kNginx =
    Process("nginx", "nginx: master process /usr/sbin/nginx -g daemon off;", "/usr/sbin/nginx");

TEST(OwnerMatchesTest, EmptyOwnerAcceptsEveryProcess) {
  EXPECT_TRUE(OwnerMatches(OwnerMatch{}, kNginx));
  EXPECT_TRUE(OwnerMatches(OwnerMatch{}, ProcessInfo{}));
}

TEST(OwnerMatchesTest, ProcessIsAnExactCommMatch) {
  EXPECT_TRUE(OwnerMatches(Owner("nginx", "", ""), kNginx));
  EXPECT_FALSE(OwnerMatches(Owner("ngin", "", ""), kNginx));
  EXPECT_FALSE(OwnerMatches(Owner("nginx: master", "", ""), kNginx));
}

TEST(OwnerMatchesTest, CmdlineIsARegexSearch) {
  EXPECT_TRUE(OwnerMatches(Owner("", "daemon off", ""), kNginx));
  EXPECT_TRUE(OwnerMatches(Owner("", "^nginx: (master|worker)", ""), kNginx));
  EXPECT_FALSE(OwnerMatches(Owner("", "^/usr/sbin/nginx", ""), kNginx));
}

/// A Java command line of about 100 KB: a classpath of 2,000 jars, then `tail`.
std::string JavaCmdline(const std::string& tail) {
  std::string classpath;
  for (int jar = 0; jar < 2000; ++jar) {
    classpath += (jar == 0 ? "" : ":") + std::string("/usr/share/java/app-libs/library-module-") +
                 std::to_string(10000 + jar) + "-1.0.0.jar";
  }
  return "java -Xmx2g -cp " + classpath + " " + tail;
}

TEST(OwnerMatchesTest, CmdlineIsSearchedInFullHoweverLong) {
  const std::string at_the_end = JavaCmdline("org.openhab.Main");
  const std::string without = JavaCmdline("org.example.Main");
  ASSERT_GT(at_the_end.size(), 100U * 1024);
  EXPECT_EQ(at_the_end.find("openhab"), at_the_end.size() - std::string("openhab.Main").size());
  const OwnerMatch openhab = Owner("", "openhab.*", "");
  EXPECT_TRUE(OwnerMatches(openhab, Process("java", at_the_end, "/usr/bin/java")));
  EXPECT_FALSE(OwnerMatches(openhab, Process("java", without, "/usr/bin/java")));
  // The case that overflowed std::regex's stack: the match starts early and `.*` runs 100 KB.
  EXPECT_TRUE(OwnerMatches(openhab, Process("java", "openhab " + without, "/usr/bin/java")));
  // Anchors hold for the whole command line.
  EXPECT_TRUE(OwnerMatches(Owner("", "openhab\\.Main$", ""), Process("java", at_the_end, "")));
  EXPECT_FALSE(OwnerMatches(Owner("", "^org\\.openhab", ""), Process("java", at_the_end, "")));
}

TEST(OwnerMatchesTest, BacktrackingPatternReturns) {
  // Exponential for a backtracking matcher; RE2 answers in linear time (no timed assertion).
  const OwnerMatch owner = Owner("", "(a+)+$", "");
  EXPECT_FALSE(OwnerMatches(owner, Process("sh", std::string(100 * 1024, 'a') + "b", "")));
  EXPECT_TRUE(OwnerMatches(owner, Process("sh", "b" + std::string(100 * 1024, 'a'), "")));
}

TEST(OwnerMatchesTest, ExeIsAnExactMatch) {
  EXPECT_TRUE(OwnerMatches(Owner("", "", "/usr/sbin/nginx"), kNginx));
  EXPECT_FALSE(OwnerMatches(Owner("", "", "/usr/sbin/nginx (deleted)"), kNginx));
  // Without privilege exe is unreadable (empty): only the other fields can match.
  EXPECT_FALSE(OwnerMatches(Owner("", "", "/usr/sbin/nginx"), Process("nginx", "nginx", "")));
}

TEST(OwnerMatchesTest, AnyFieldSuffices) {
  EXPECT_TRUE(OwnerMatches(Owner("apache2", "", "/usr/sbin/nginx"), kNginx));
  EXPECT_TRUE(OwnerMatches(Owner("apache2", "daemon", "/usr/sbin/apache2"), kNginx));
  EXPECT_FALSE(OwnerMatches(Owner("apache2", "httpd", "/usr/sbin/apache2"), kNginx));
}

// --- ClassifyHolders ---

constexpr uint16_t kPort = 8080;

netlink::SocketRecord Socket(uint8_t state, const std::string& address, uint32_t inode = 0) {
  netlink::SocketRecord record;
  record.family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  EXPECT_EQ(::inet_pton(record.family, address.c_str(), record.local_address.data()), 1);
  record.state = state;
  record.local_port = kPort;
  record.inode = inode;
  return record;
}

ServiceConfig Service(const OwnerMatch& owner, ServiceProtocol protocol = ServiceProtocol::kTcp) {
  ServiceConfig service;
  service.name = "web";
  service.port = kPort;
  service.protocol = protocol;
  service.owner = owner;
  return service;
}

ProcessInfo Pid(pid_t pid, const std::string& command) {
  ProcessInfo process = Process(command, command, "");
  process.pid = pid;
  return process;
}

PortObservation Observe(const ServiceConfig& service,
                        const std::vector<netlink::SocketRecord>& records) {
  PortObservation observed;
  for (const netlink::SocketRecord& record : records) {
    ObserveSocket(service, ProtocolOf(service), record, observed);
  }
  return observed;
}

std::vector<pid_t> Pids(const std::vector<ProcessInfo>& processes) {
  std::vector<pid_t> pids;
  pids.reserve(processes.size());
  for (const ProcessInfo& process : processes) {
    pids.push_back(process.pid);
  }
  return pids;
}

TEST(ClassifyHoldersTest, OwnerAndForeignHolders) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.by_inode[1] = {Pid(10, "nginx")};
  owners.by_inode[2] = {Pid(20, "python3")};
  const ServiceHolders holders =
      ClassifyHolders(service,
                      Observe(service, {Socket(netlink::kListen, "0.0.0.0", 1),
                                        Socket(netlink::kEstablished, "10.0.0.1", 2)}),
                      owners);
  EXPECT_EQ(holders.owned_listeners, 1U);
  EXPECT_EQ(Pids(holders.owner_processes), std::vector<pid_t>{10});
  EXPECT_EQ(Pids(holders.foreign_holders), std::vector<pid_t>{20});
  EXPECT_FALSE(holders.invisible_holders);
  EXPECT_EQ(holders.matching_processes, 0U);  // owners.processes is empty: no `ps -ef` view
}

TEST(ClassifyHoldersTest, PreForkedWorkersShareOneListenerReusePortDuplicatesHaveOneEach) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.by_inode[1] = {Pid(10, "nginx"), Pid(11, "nginx"), Pid(12, "nginx")};
  const PortObservation one_socket = Observe(service, {Socket(netlink::kListen, "0.0.0.0", 1)});
  ServiceHolders holders = ClassifyHolders(service, one_socket, owners);
  EXPECT_EQ(holders.owned_listeners, 1U);
  EXPECT_EQ(Pids(holders.owner_processes), (std::vector<pid_t>{10, 11, 12}));

  owners.by_inode[2] = {Pid(13, "nginx")};
  holders = ClassifyHolders(service,
                            Observe(service, {Socket(netlink::kListen, "0.0.0.0", 1),
                                              Socket(netlink::kListen, "0.0.0.0", 2)}),
                            owners);
  EXPECT_EQ(holders.owned_listeners, 2U);
  EXPECT_EQ(Pids(holders.owner_processes), (std::vector<pid_t>{10, 11, 12, 13}));
}

TEST(ClassifyHoldersTest, AnOwnerHoldingAConnectionIsNoListener) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.by_inode[2] = {Pid(10, "nginx")};
  const ServiceHolders holders = ClassifyHolders(
      service, Observe(service, {Socket(netlink::kEstablished, "10.0.0.1", 2)}), owners);
  EXPECT_EQ(holders.owned_listeners, 0U);
  EXPECT_EQ(Pids(holders.owner_processes), std::vector<pid_t>{10});
}

TEST(ClassifyHoldersTest, AConnectedUdpSocketServesThePort) {
  const ServiceConfig service = Service(Owner("unbound", "", ""), ServiceProtocol::kUdp);
  SocketOwners owners;
  owners.by_inode[1] = {Pid(10, "unbound")};
  owners.by_inode[2] = {Pid(10, "unbound")};
  const ServiceHolders holders =
      ClassifyHolders(service,
                      Observe(service, {Socket(netlink::kClose, "0.0.0.0", 1),
                                        Socket(netlink::kEstablished, "10.0.0.1", 2)}),
                      owners);
  EXPECT_EQ(holders.owned_listeners, 2U);
  EXPECT_EQ(Pids(holders.owner_processes), std::vector<pid_t>{10});  // listed once
}

TEST(ClassifyHoldersTest, ASocketWhoseProcessIsNotFoundIsInvisible) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  const ServiceHolders holders =
      ClassifyHolders(service, Observe(service, {Socket(netlink::kListen, "0.0.0.0", 1)}), {});
  EXPECT_TRUE(holders.invisible_holders);
  EXPECT_EQ(holders.owned_listeners, 0U);
  EXPECT_TRUE(holders.owner_processes.empty());
  EXPECT_TRUE(holders.foreign_holders.empty());
}

TEST(ClassifyHoldersTest, MatchingProcessesCountOnlyWithAnOwner) {
  SocketOwners owners;
  owners.processes = {Pid(10, "nginx"), Pid(11, "nginx"), Pid(20, "python3")};
  ServiceConfig service = Service(Owner("nginx", "", ""));
  EXPECT_EQ(ClassifyHolders(service, {}, owners).matching_processes, 2U);
  service.owner = OwnerMatch{};
  EXPECT_EQ(ClassifyHolders(service, {}, owners).matching_processes, std::nullopt);
}

TEST(ClassifyHoldersTest, WithoutAnOwnerEveryHolderOwns) {
  const ServiceConfig service = Service(OwnerMatch{});
  SocketOwners owners;
  owners.by_inode[1] = {Pid(20, "python3")};
  const ServiceHolders holders =
      ClassifyHolders(service, Observe(service, {Socket(netlink::kListen, "0.0.0.0", 1)}), owners);
  EXPECT_EQ(holders.owned_listeners, 1U);
  EXPECT_EQ(Pids(holders.owner_processes), std::vector<pid_t>{20});
  EXPECT_TRUE(holders.foreign_holders.empty());
}

// --- Instances: SO_REUSEPORT groups against duplicates ---

ProcessInfo Child(pid_t pid, const std::string& command, pid_t parent) {
  ProcessInfo process = Pid(pid, command);
  process.parent_pid = parent;
  return process;
}

/// `count` TCP listeners on the service's port, inodes 1..count.
PortObservation Listeners(const ServiceConfig& service, uint32_t count) {
  std::vector<netlink::SocketRecord> records;
  for (uint32_t inode = 1; inode <= count; ++inode) {
    records.push_back(Socket(netlink::kListen, "0.0.0.0", inode));
  }
  return Observe(service, records);
}

TEST(InstancesTest, OneProcessWithAnSoReusePortSocketPerThreadIsOneInstance) {
  const ServiceConfig service = Service(Owner("envoy", "", ""));
  SocketOwners owners;
  for (uint32_t inode = 1; inode <= 4; ++inode) {
    owners.by_inode[inode] = {Child(10, "envoy", 1)};
  }
  const ServiceHolders holders = ClassifyHolders(service, Listeners(service, 4), owners);
  EXPECT_EQ(holders.owned_listeners, 4U);
  EXPECT_EQ(holders.instances, 1U);
}

TEST(InstancesTest, WorkersForkedByAMatchingMasterAreOneInstance) {
  // Each worker opened its own SO_REUSEPORT socket; the master holds none of them.
  const ServiceConfig service = Service(Owner("node", "", ""));
  SocketOwners owners;
  owners.processes = {Child(10, "node", 1), Child(11, "node", 10), Child(12, "node", 10),
                      Child(13, "node", 10)};
  owners.by_inode[1] = {Child(11, "node", 10)};
  owners.by_inode[2] = {Child(12, "node", 10)};
  owners.by_inode[3] = {Child(13, "node", 10)};
  const ServiceHolders holders = ClassifyHolders(service, Listeners(service, 3), owners);
  EXPECT_EQ(holders.owned_listeners, 3U);
  EXPECT_EQ(holders.instances, 1U);
  EXPECT_EQ(holders.matching_processes, 4U);
  EXPECT_EQ(holders.matching_instances, 1U);  // master and workers: nothing failed to bind
}

TEST(InstancesTest, AMasterHoldingEveryWorkersSocketJoinsThem) {
  // nginx `reuseport`: the master opens one socket per worker and keeps them all; each worker
  // closes the others'. The master's parent is init.
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.by_inode[1] = {Child(10, "nginx", 1), Child(11, "nginx", 10)};
  owners.by_inode[2] = {Child(10, "nginx", 1), Child(12, "nginx", 10)};
  const ServiceHolders holders = ClassifyHolders(service, Listeners(service, 2), owners);
  EXPECT_EQ(holders.instances, 1U);
  EXPECT_EQ(Pids(holders.owner_processes), (std::vector<pid_t>{10, 11, 12}));
}

TEST(InstancesTest, CopiesStartedByAShellAreDuplicatesThoughTheKernelGroupsThem) {
  // Both in one kernel SO_REUSEPORT group (same user, address and port): still two instances.
  const ServiceConfig service = Service(Owner("node", "", ""));
  SocketOwners owners;
  owners.processes = {Child(5, "bash", 1), Child(11, "node", 5), Child(12, "node", 5)};
  owners.by_inode[1] = {Child(11, "node", 5)};
  owners.by_inode[2] = {Child(12, "node", 5)};
  const ServiceHolders holders = ClassifyHolders(service, Listeners(service, 2), owners);
  EXPECT_EQ(holders.instances, 2U);
  EXPECT_EQ(holders.matching_instances, 2U);
}

TEST(InstancesTest, AParentMatchingTheOwnerUnderAnotherCommandDoesNotJoin) {
  // A supervisor whose command line names the service starts two copies: not forked workers.
  const ServiceConfig service = Service(Owner("", "svc", ""));
  SocketOwners owners;
  owners.processes = {Child(5, "supervisor", 1), Child(11, "svc", 5), Child(12, "svc", 5)};
  owners.processes[0].cmdline = "supervisor --run svc";
  owners.by_inode[1] = {Child(11, "svc", 5)};
  owners.by_inode[2] = {Child(12, "svc", 5)};
  EXPECT_EQ(ClassifyHolders(service, Listeners(service, 2), owners).instances, 2U);
}

TEST(InstancesTest, ACopyWithoutThePortIsAMatchingInstanceMore) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.processes = {Child(10, "nginx", 1), Child(11, "nginx", 10), Child(20, "nginx", 1)};
  owners.by_inode[1] = {Child(10, "nginx", 1), Child(11, "nginx", 10)};
  const ServiceHolders holders = ClassifyHolders(service, Listeners(service, 1), owners);
  EXPECT_EQ(holders.instances, 1U);
  EXPECT_EQ(holders.matching_instances, 2U);  // 20: started again, failed to bind
}

TEST(InstancesTest, ACycleOfReusedParentPidsEnds) {
  const ServiceConfig service = Service(Owner("nginx", "", ""));
  SocketOwners owners;
  owners.processes = {Child(10, "nginx", 11), Child(11, "nginx", 10)};
  owners.by_inode[1] = {Child(10, "nginx", 11)};
  EXPECT_EQ(ClassifyHolders(service, Listeners(service, 1), owners).instances, 1U);
}

// --- ServiceTable: one scrape ---

using Clock = std::chrono::steady_clock;
constexpr Clock::time_point kStart{std::chrono::seconds(1'000'000)};

/// SO_REUSEADDR as a fake lookup: the inodes listed, every other inode unreadable.
ReuseLookup Flags(std::map<uint32_t, bool> flags) {
  return [flags = std::move(flags)](uint32_t inode) -> std::optional<bool> {
    auto found = flags.find(inode);
    return found == flags.end() ? std::nullopt : std::optional<bool>(found->second);
  };
}

ServiceReport Scrape(const std::vector<netlink::SocketRecord>& records, const ReuseLookup& reuse,
                     ListenerMemory& memory, Clock::time_point now, KernelFacts facts = {}) {
  ServiceTable table({Service(Owner("nginx", "", ""))}, ServicesOptions{}, std::move(facts));
  for (const netlink::SocketRecord& record : records) {
    table.Add(netlink::Protocol::kTcp, record);
  }
  std::vector<ServiceReport> reports = table.Reports({}, reuse, memory, now);
  EXPECT_EQ(reports.size(), 1U);
  return reports.front();
}

netlink::SocketRecord TimeWait(uint32_t expires_ms) {
  netlink::SocketRecord record = Socket(netlink::kTimeWait, "10.0.0.1");
  record.timer_expires_ms = expires_ms;
  return record;
}

/// `record` as a source that reports SO_REUSEADDR (a socket iterator) shows it: 1 set, 0 unset.
netlink::SocketRecord Flagged(netlink::SocketRecord record, int8_t reuse) {
  record.reuse = reuse;
  return record;
}

/// A lookup for a scrape whose records all carried their flags: duplicating an fd is a failure.
ReuseLookup NoLookup() {
  return [](uint32_t inode) -> std::optional<bool> {
    ADD_FAILURE() << "looked up inode " << inode << " whose flag the kernel reported";
    return std::nullopt;
  };
}

TEST(ServiceTableTest, RemembersTheListenerFlagForTheTimeWaitItLeaves) {
  ListenerMemory memory;
  // The old listener, without SO_REUSEADDR, serving.
  ServiceReport report = Scrape({Socket(netlink::kListen, "0.0.0.0", 1), TimeWait(30'000)},
                                Flags({{1, false}}), memory, kStart);
  EXPECT_EQ(report.listener_reuse, false);
  EXPECT_EQ(report.remembered_reuse, false);
  EXPECT_EQ(report.with_reuse.blockers_by_state,
            (std::map<std::string, uint64_t>{{"listen", 1}, {"time_wait", 1}}));

  // It died; its TIME_WAIT sockets block even a SO_REUSEADDR restart.
  report = Scrape({TimeWait(50'000), TimeWait(20'000)}, Flags({}), memory,
                  kStart + std::chrono::seconds(30));
  EXPECT_EQ(report.listener_reuse, std::nullopt);
  EXPECT_EQ(report.remembered_reuse, false);
  EXPECT_EQ(report.with_reuse.verdict, Verdict::kBlocked);
  EXPECT_EQ(report.with_reuse.blockers_by_state,
            (std::map<std::string, uint64_t>{{"time_wait", 2}}));
  EXPECT_EQ(report.time_wait_remaining_seconds, 50.0);

  // Still remembered at exactly 120 s, forgotten after.
  report = Scrape({TimeWait(1'000)}, Flags({}), memory, kStart + std::chrono::seconds(120));
  EXPECT_EQ(report.with_reuse.verdict, Verdict::kBlocked);
  report = Scrape({TimeWait(1'000)}, Flags({}), memory, kStart + std::chrono::seconds(121));
  EXPECT_EQ(report.remembered_reuse, std::nullopt);
  EXPECT_EQ(report.with_reuse.verdict, Verdict::kUnknown);
  EXPECT_EQ(report.with_reuse.unknown_because,
            "TIME_WAIT sockets left by a listener whose SO_REUSEADDR portwatch never saw");
}

TEST(ServiceTableTest, TheCurrentListenerFlagOutweighsTheRememberedOne) {
  ListenerMemory memory;
  memory.Remember("web", false, kStart);
  const ServiceReport report = Scrape({Socket(netlink::kListen, "0.0.0.0", 2), TimeWait(10'000)},
                                      Flags({{2, true}}), memory, kStart + std::chrono::seconds(1));
  EXPECT_EQ(report.listener_reuse, true);
  EXPECT_EQ(report.remembered_reuse, true);
  EXPECT_EQ(report.with_reuse.blockers_by_state, (std::map<std::string, uint64_t>{{"listen", 1}}));
  EXPECT_EQ(memory.Recall("web", kStart + std::chrono::seconds(100)), true);
}

TEST(ServiceTableTest, ReadsFdsOnlyForSocketsWhoseRecordsCarriedNoFlag) {
  ListenerMemory memory;
  std::vector<uint32_t> looked_up;
  const ReuseLookup reuse = [&looked_up](uint32_t inode) -> std::optional<bool> {
    looked_up.push_back(inode);
    return inode == 3 ? std::optional<bool>(false) : std::nullopt;
  };
  const ServiceReport report = Scrape({Flagged(Socket(netlink::kListen, "0.0.0.0", 1), 1),
                                       Flagged(Socket(netlink::kEstablished, "10.0.0.1", 2), 1),
                                       Socket(netlink::kEstablished, "10.0.0.1", 3)},
                                      reuse, memory, kStart);
  EXPECT_EQ(looked_up, std::vector<uint32_t>{3});
  EXPECT_EQ(report.listener_reuse, true);
  EXPECT_EQ(report.with_reuse.blockers_by_state,
            (std::map<std::string, uint64_t>{{"established", 1}, {"listen", 1}}));
}

TEST(ServiceTableTest, FlagsInEveryRecordNeedNoFdAndNoListener) {
  ListenerMemory memory;
  // TIME_WAIT left by a listener portwatch never saw: their own flags decide.
  ServiceReport report = Scrape(
      {Flagged(TimeWait(30'000), 0), Flagged(TimeWait(20'000), 1), Flagged(TimeWait(10'000), 0),
       Flagged(Socket(netlink::kEstablished, "10.0.0.1", 4), 1)},
      NoLookup(), memory, kStart);
  EXPECT_EQ(report.listener_reuse, std::nullopt);
  EXPECT_EQ(report.remembered_reuse, std::nullopt);
  EXPECT_EQ(report.with_reuse.verdict, Verdict::kBlocked);
  EXPECT_EQ(report.with_reuse.blockers_by_state,
            (std::map<std::string, uint64_t>{{"time_wait", 2}}));
  report = Scrape({Flagged(TimeWait(30'000), 1)}, NoLookup(), memory, kStart);
  EXPECT_EQ(report.with_reuse.verdict, Verdict::kFree);
}

TEST(ServiceTableTest, RemembersTheListenerFlagItsRecordCarried) {
  ListenerMemory memory;
  ServiceReport report =
      Scrape({Flagged(Socket(netlink::kListen, "0.0.0.0", 1), 0), Flagged(TimeWait(30'000), 0)},
             NoLookup(), memory, kStart);
  EXPECT_EQ(report.listener_reuse, false);
  EXPECT_EQ(report.remembered_reuse, false);
  EXPECT_EQ(memory.Recall("web", kStart), false);
  // A later scrape through sock_diag (no flags) explains its TIME_WAIT by the remembered flag.
  report = Scrape({TimeWait(20'000)}, Flags({}), memory, kStart + std::chrono::seconds(30));
  EXPECT_EQ(report.with_reuse.blockers_by_state,
            (std::map<std::string, uint64_t>{{"time_wait", 1}}));
}

TEST(ServiceTableTest, ReportsSocketsByStateNameAndTheEphemeralRange) {
  ListenerMemory memory;
  KernelFacts facts;
  facts.range = {8000, 9000};
  auto reserved = std::make_shared<std::bitset<65536>>();
  reserved->set(kPort);
  facts.reserved = reserved;
  const ServiceReport report =
      Scrape({Socket(netlink::kListen, "10.0.0.9", 1), Socket(netlink::kEstablished, "10.0.0.9", 2),
              TimeWait(5'000)},
             Flags({{1, true}, {2, true}}), memory, kStart, facts);
  EXPECT_EQ(report.sockets_by_state,
            (std::map<std::string, uint64_t>{{"established", 1}, {"listen", 1}, {"time_wait", 1}}));
  EXPECT_TRUE(report.in_ephemeral_range);
  EXPECT_TRUE(report.reserved);
  EXPECT_TRUE(report.holders.invisible_holders);  // no process found for inodes 1 and 2
}

TEST(ServiceTableTest, AsksTheKernelAndProcOnlyForWhatItNeeds) {
  ServiceConfig tcp = Service(Owner("nginx", "", ""));
  tcp.name = "tcp";
  ServiceConfig udp = Service(OwnerMatch{}, ServiceProtocol::kUdp);
  udp.name = "udp";
  udp.port = 53;
  ServiceConfig busy = Service(OwnerMatch{});
  busy.name = "busy";
  busy.port = 443;
  ServiceTable table({tcp, udp, busy}, ServicesOptions{}, KernelFacts{});
  netlink::SocketRecord https = Socket(netlink::kListen, "0.0.0.0", 7);
  https.local_port = 443;
  table.Add(netlink::Protocol::kTcp, https);
  netlink::SocketRecord ssh = Socket(netlink::kListen, "0.0.0.0", 9);
  ssh.local_port = 22;
  table.Add(netlink::Protocol::kTcp, ssh);
  table.Add(netlink::Protocol::kTcp, Socket(netlink::kEstablished, "10.0.0.2"));  // no inode
  // Only TCP ports where nothing competes need the bound-inactive dump; UDP never does.
  EXPECT_EQ(table.PortsThatLookFree(), std::vector<uint16_t>{});
  ServiceTable quiet({tcp, udp}, ServicesOptions{}, KernelFacts{});
  EXPECT_EQ(quiet.PortsThatLookFree(), std::vector<uint16_t>{kPort});
  // Every listener (for listener_info) and the service sockets with an fd; never inode 0.
  EXPECT_EQ(table.WantedInodes(), (std::unordered_set<uint32_t>{7, 9}));
  EXPECT_TRUE(table.NeedsAllProcesses());
  EXPECT_FALSE(ServiceTable({udp, busy}, ServicesOptions{}, KernelFacts{}).NeedsAllProcesses());
}

}  // namespace
}  // namespace portwatch
