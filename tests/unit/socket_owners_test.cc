#include "collectors/procfs/socket_owners.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

/// A fake /proc built in a fresh temporary directory, removed afterwards.
class SocketOwnersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/portwatch-proc-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override {
    if (!root_.empty()) {
      std::filesystem::remove_all(root_);
    }
  }

  /// <root>/<pid>/comm and cmdline (written verbatim, NULs included).
  void AddProcess(const std::string& pid, const std::string& comm, const std::string& cmdline) {
    std::filesystem::create_directories(root_ + "/" + pid);
    std::ofstream(root_ + "/" + pid + "/comm", std::ios::binary) << comm;
    std::ofstream(root_ + "/" + pid + "/cmdline", std::ios::binary) << cmdline;
  }

  /// <root>/<pid>/fd/<fd> -> target, like the kernel's magic links.
  void AddFd(const std::string& pid, const std::string& fd, const std::string& target) {
    std::filesystem::create_directories(root_ + "/" + pid + "/fd");
    ASSERT_EQ(::symlink(target.c_str(), (root_ + "/" + pid + "/fd/" + fd).c_str()), 0);
  }

  std::string root_;
};

TEST_F(SocketOwnersTest, MapsWantedInodesToTheProcessesHoldingThem) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx: master process\0-g\0daemon off;\0"s);
  AddFd("123", "0", "/dev/null");
  AddFd("123", "1", "pipe:[1]");
  AddFd("123", "3", "socket:[4242]");
  AddFd("123", "4", "socket:[4242]");  // dup(): reported once
  AddFd("123", "5", "socket:[5555]");  // a socket nobody asked about
  AddFd("123", "6", "anon_inode:[eventfd]");
  AddFd("123", "7", "socket:[4243");  // malformed links are ignored
  AddFd("123", "8", "socket:[]");
  AddFd("123", "9", "socket:[99999999999]");  // beyond 32 bits

  AddProcess("456", "sshd\n", "/usr/sbin/sshd\0-D\0"s);
  AddFd("456", "3", "socket:[777]");
  // The parent is read after the last ')': a command may hold both spaces and parentheses.
  std::ofstream(root_ + "/456/stat") << "456 (sshd) x) S 123 456 456 0 -1 4194560 0 0\n";
  std::ofstream(root_ + "/123/stat") << "123 (nginx) S 1 123 123 0 -1 4194560 0 0\n";
  std::ofstream(root_ + "/2/stat") << "2 (kthreadd) S";  // cut short: no parent

  AddProcess("789", "idle\n", "sleep\0infinity\0"s);
  AddFd("789", "0", "socket:[1]");

  // A kernel thread: comm but empty cmdline.
  AddProcess("2", "kthreadd\n", "");
  AddFd("2", "10", "socket:[888]");

  // A process whose fds cannot be read (gone, or another user's): skipped, not an error.
  AddProcess("1000", "ghost\n", "");

  // Entries that are not processes.
  std::filesystem::create_directories(root_ + "/net");
  std::filesystem::create_directories(root_ + "/self/fd");
  std::filesystem::create_directories(root_ + "/0/fd");
  std::filesystem::create_directories(root_ + "/12a/fd");
  std::ofstream(root_ + "/uptime") << "1.0 1.0\n";

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242, 777, 888, 31337});

  EXPECT_EQ(owners.processes_scanned, 5U);  // 2, 123, 456, 789, 1000
  EXPECT_EQ(owners.processes_skipped, 1U);  // 1000
  ASSERT_EQ(owners.by_inode.size(), 3U);
  ASSERT_EQ(owners.by_inode.count(4242), 1U);
  ASSERT_EQ(owners.by_inode.count(777), 1U);
  ASSERT_EQ(owners.by_inode.count(888), 1U);

  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  EXPECT_EQ(owners.by_inode[4242][0].pid, 123);
  EXPECT_EQ(owners.by_inode[4242][0].command, "nginx");
  EXPECT_EQ(owners.by_inode[4242][0].cmdline, "nginx: master process -g daemon off;");
  EXPECT_EQ(owners.by_inode[4242][0].parent_pid, 1);

  ASSERT_EQ(owners.by_inode[777].size(), 1U);
  EXPECT_EQ(owners.by_inode[777][0].pid, 456);
  EXPECT_EQ(owners.by_inode[777][0].command, "sshd");
  EXPECT_EQ(owners.by_inode[777][0].cmdline, "/usr/sbin/sshd -D");
  EXPECT_EQ(owners.by_inode[777][0].parent_pid, 123);

  ASSERT_EQ(owners.by_inode[888].size(), 1U);
  EXPECT_EQ(owners.by_inode[888][0].pid, 2);
  EXPECT_EQ(owners.by_inode[888][0].command, "kthreadd");
  EXPECT_EQ(owners.by_inode[888][0].cmdline, "");
  EXPECT_EQ(owners.by_inode[888][0].parent_pid, 0);

  // One (pid, fd) per wanted inode found, for duplicating the socket; 4242 is on fd 3 and 4.
  ASSERT_EQ(owners.first_fd.size(), 3U);
  ASSERT_EQ(owners.first_fd.count(4242), 1U);
  EXPECT_EQ(owners.first_fd[4242].first, 123);
  EXPECT_TRUE(owners.first_fd[4242].second == 3 || owners.first_fd[4242].second == 4)
      << owners.first_fd[4242].second;
  EXPECT_EQ(owners.first_fd[777], (std::pair<pid_t, int>{456, 3}));
  EXPECT_EQ(owners.first_fd[888], (std::pair<pid_t, int>{2, 10}));
}

TEST_F(SocketOwnersTest, SocketOnFdZero) {
  using namespace std::string_literals;
  AddProcess("55", "inetd-child\n", "svc\0"s);
  AddFd("55", "0", "socket:[4242]");  // inetd hands the connection over as stdin
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242});
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  EXPECT_EQ(owners.first_fd[4242], (std::pair<pid_t, int>{55, 0}));
}

TEST_F(SocketOwnersTest, SharedSocketListsEveryHolder) {
  using namespace std::string_literals;
  // After fork() parent and child hold the same listening socket.
  AddProcess("300", "app\n", "app\0--parent\0"s);
  AddFd("300", "3", "socket:[4242]");
  AddProcess("301", "app\n", "app\0--child\0"s);
  AddFd("301", "3", "socket:[4242]");

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242});
  EXPECT_EQ(owners.processes_scanned, 2U);
  EXPECT_EQ(owners.processes_skipped, 0U);
  ASSERT_EQ(owners.by_inode.size(), 1U);
  std::vector<std::string> holders;
  for (const ProcessInfo& process : owners.by_inode[4242]) {
    holders.push_back(DescribeProcess(process));
  }
  // readdir() order is the file system's: compare as a set.
  std::sort(holders.begin(), holders.end());
  EXPECT_EQ(holders, (std::vector<std::string>{"pid 300 (app: app --parent)",
                                               "pid 301 (app: app --child)"}));
}

TEST_F(SocketOwnersTest, NoWantedInodesScansNothing) {
  AddFd("123", "3", "socket:[4242]");
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {});
  EXPECT_TRUE(owners.by_inode.empty());
  EXPECT_EQ(owners.processes_scanned, 0U);
  EXPECT_EQ(owners.processes_skipped, 0U);
}

TEST_F(SocketOwnersTest, MissingRootFindsNothing) {
  SocketOwners owners = FindSocketOwners(ProcFs(root_ + "/absent"), {4242});
  EXPECT_TRUE(owners.by_inode.empty());
  EXPECT_EQ(owners.processes_scanned, 0U);
  EXPECT_EQ(owners.processes_skipped, 0U);
}

TEST_F(SocketOwnersTest, ProcessWithoutCommOrCmdlineVanishedAndIsSkipped) {
  AddFd("77", "3", "socket:[4242]");  // its fds were listed, then it exited
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242});
  EXPECT_TRUE(owners.by_inode.empty());
  EXPECT_EQ(owners.processes_scanned, 1U);
  EXPECT_EQ(owners.processes_skipped, 1U);
}

TEST_F(SocketOwnersTest, IdentifiesExeAndOwner) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  ASSERT_EQ(::symlink("/usr/sbin/nginx", (root_ + "/123/exe").c_str()), 0);
  AddProcess("456", "sshd\n", "sshd\0"s);
  AddFd("456", "3", "socket:[777]");  // no exe link: not readable without privilege
  uid_t owner_of_456 = ::geteuid();
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((root_ + "/456").c_str(), 1234, 1234), 0);
    owner_of_456 = 1234;
  }

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242, 777});
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  EXPECT_EQ(owners.by_inode[4242][0].exe, "/usr/sbin/nginx");
  EXPECT_EQ(owners.by_inode[4242][0].uid, ::geteuid());
  ASSERT_EQ(owners.by_inode[777].size(), 1U);
  EXPECT_EQ(owners.by_inode[777][0].exe, "");
  EXPECT_EQ(owners.by_inode[777][0].uid, owner_of_456);
  EXPECT_TRUE(owners.processes.empty());  // only with identify_all
}

TEST_F(SocketOwnersTest, IdentifyAllListsEveryLiveProcess) {
  using namespace std::string_literals;
  AddProcess("10", "init\n", "/sbin/init\0"s);
  AddProcess("2", "kthreadd\n", "");
  AddProcess("300", "app\n", "app\0--flag\0"s);
  AddFd("300", "3", "socket:[4242]");
  std::filesystem::create_directories(root_ + "/400/fd");  // vanished: no comm, no cmdline
  std::filesystem::create_directories(root_ + "/self");

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {}, true);
  EXPECT_EQ(owners.processes_scanned, 4U);
  EXPECT_EQ(owners.processes_skipped, 1U);  // 400
  EXPECT_TRUE(owners.by_inode.empty());
  std::vector<std::string> processes;
  for (const ProcessInfo& process : owners.processes) {
    processes.push_back(DescribeProcess(process));
  }
  std::sort(processes.begin(), processes.end());
  EXPECT_EQ(processes, (std::vector<std::string>{"pid 10 (init: /sbin/init)", "pid 2 (kthreadd)",
                                                 "pid 300 (app: app --flag)"}));
}

TEST_F(SocketOwnersTest, AnExitedProcessNotYetReapedIsNoRunningProcess) {
  // A zombie keeps its comm but has no fds and no network namespace: it is no running instance
  // (a worker killed with its master stays one until init reaps it).
  using namespace std::string_literals;
  AddProcess("300", "svc-instance\n", "svc\0"s);
  std::ofstream(root_ + "/300/stat") << "300 (svc-instance) S 1 300 300 0 -1 0\n";
  AddProcess("301", "svc-instance\n", "");
  std::ofstream(root_ + "/301/stat") << "301 (svc-instance) Z 300 300 300 0 -1 0\n";
  AddProcess("302", "svc-instance\n", "");
  std::ofstream(root_ + "/302/stat") << "302 (svc-instance) X 300 300 300 0 -1 0\n";
  std::filesystem::create_directories(root_ + "/self");

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {}, true);
  EXPECT_EQ(owners.processes_scanned, 3U);
  EXPECT_EQ(owners.processes_skipped, 2U);
  ASSERT_EQ(owners.processes.size(), 1U);
  EXPECT_EQ(owners.processes[0].pid, 300);
  EXPECT_EQ(owners.processes[0].parent_pid, 1);
}

TEST_F(SocketOwnersTest, IdentifyAllAlsoResolvesWantedInodes) {
  using namespace std::string_literals;
  AddProcess("10", "init\n", "/sbin/init\0"s);  // no fd dir: its fds cannot be read
  AddProcess("300", "app\n", "app\0"s);
  AddFd("300", "3", "socket:[4242]");

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, true);
  EXPECT_EQ(owners.processes_scanned, 2U);
  EXPECT_EQ(owners.processes_skipped, 1U);  // 10's fds
  ASSERT_EQ(owners.by_inode.size(), 1U);
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  EXPECT_EQ(owners.by_inode[4242][0].pid, 300);
  EXPECT_EQ(owners.processes.size(), 2U);  // still identified
}

TEST_F(SocketOwnersTest, IdentifyAllListsOnlyTheMonitoredNetworkNamespace) {
  // ns/net is a magic link to an nsfs inode; hard links to one file stand in for one namespace.
  AddProcess("1", "host-app\n", "");
  AddProcess("2", "pod-app\n", "");
  AddProcess("3", "no-access\n", "");  // ns/net unreadable: kept
  AddFd("2", "4", "socket:[4242]");
  for (const char* dir : {"self/ns", "1/ns", "2/ns"}) {
    std::filesystem::create_directories(root_ + "/" + dir);
  }
  std::ofstream(root_ + "/self/ns/net") << "host";
  std::filesystem::create_hard_link(root_ + "/self/ns/net", root_ + "/1/ns/net");
  std::ofstream(root_ + "/2/ns/net") << "pod";

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, true);
  std::vector<pid_t> listed;
  for (const ProcessInfo& process : owners.processes) {
    listed.push_back(process.pid);
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, (std::vector<pid_t>{1, 3}));
  EXPECT_EQ(owners.processes_in_other_netns, 1U);
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);  // a holder is a holder, whatever its namespace
  EXPECT_EQ(owners.by_inode[4242][0].pid, 2);
}

TEST_F(SocketOwnersTest, IdentifyAllListsTheAskedForNamespacesApart) {
  // Two pods (namespaces "pod-a" and "pod-b"), the host; only pod-a is asked for.
  AddProcess("1", "host-app\n", "");
  AddProcess("2", "java\n", "java -jar a.jar");
  AddProcess("3", "sidecar\n", "");
  AddProcess("4", "java\n", "java -jar b.jar");
  for (const char* dir : {"self/ns", "1/ns", "2/ns", "3/ns", "4/ns"}) {
    std::filesystem::create_directories(root_ + "/" + dir);
  }
  std::ofstream(root_ + "/self/ns/net") << "host";
  std::filesystem::create_hard_link(root_ + "/self/ns/net", root_ + "/1/ns/net");
  std::ofstream(root_ + "/2/ns/net") << "pod-a";
  std::filesystem::create_hard_link(root_ + "/2/ns/net", root_ + "/3/ns/net");
  std::ofstream(root_ + "/4/ns/net") << "pod-b";
  const ProcFs procfs(root_);
  const uint64_t pod_a = procfs.NetworkNamespace("2");
  ASSERT_NE(pod_a, 0U);

  SocketOwners owners = FindSocketOwners(procfs, {}, true, {pod_a});
  ASSERT_EQ(owners.processes.size(), 1U);
  EXPECT_EQ(owners.processes[0].pid, 1);
  EXPECT_EQ(owners.processes_in_other_netns, 3U);
  ASSERT_EQ(owners.processes_by_netns.size(), 1U);
  std::vector<pid_t> in_pod_a;
  for (const ProcessInfo& process : owners.processes_by_netns[pod_a]) {
    in_pod_a.push_back(process.pid);
  }
  std::sort(in_pod_a.begin(), in_pod_a.end());
  EXPECT_EQ(in_pod_a, (std::vector<pid_t>{2, 3}));

  // The cache lists them too, with or without a full pass.
  SocketOwnerCache cache{procfs};
  const auto now = std::chrono::steady_clock::now();
  EXPECT_EQ(cache.Resolve({}, true, now, {pod_a}).processes_by_netns[pod_a].size(), 2U);
  EXPECT_EQ(cache.Resolve({}, true, now + std::chrono::seconds(1), {pod_a})
                .processes_by_netns[pod_a]
                .size(),
            2U);
  EXPECT_TRUE(cache.Resolve({}, true, now + std::chrono::seconds(2)).processes_by_netns.empty());
}

ProcessInfo Process(pid_t pid, const std::string& command, const std::string& cmdline) {
  ProcessInfo process;
  process.pid = pid;
  process.command = command;
  process.cmdline = cmdline;
  process.exe = "/ignored/by/describe";
  return process;
}

TEST(DescribeProcessTest, WithAndWithoutCmdline) {
  EXPECT_EQ(DescribeProcess(Process(42, "nginx", "nginx -g daemon off;")),
            "pid 42 (nginx: nginx -g daemon off;)");
  EXPECT_EQ(DescribeProcess(Process(2, "kthreadd", "")), "pid 2 (kthreadd)");
}

TEST_F(SocketOwnersTest, LongCommandLineIsReadInFull) {
  using namespace std::string_literals;
  // As long as a Java classpath of 4,000 jars: matched in full, so read in full.
  const std::string cmdline = "java\0-cp\0"s + std::string(200 * 1024, 'x') + "\0openhab\0"s;
  AddProcess("500", "java\n", cmdline);
  AddFd("500", "3", "socket:[4242]");

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242});
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  const std::string& read = owners.by_inode[4242][0].cmdline;
  EXPECT_EQ(read.size(), 4 + 1 + 3 + 1 + 200 * 1024 + 1 + 7);
  EXPECT_EQ(read, "java -cp " + std::string(200 * 1024, 'x') + " openhab");
}

TEST(ShownCmdlineTest, ShortCommandLinesAreShownWhole) {
  EXPECT_EQ(ShownCmdline(""), "");
  EXPECT_EQ(ShownCmdline("nginx -g daemon off;"), "nginx -g daemon off;");
  const std::string exactly(kShownCmdlineBytes, 'a');
  EXPECT_EQ(ShownCmdline(exactly), exactly);
}

TEST(ShownCmdlineTest, LongCommandLinesAreCutAt256BytesWithAMarker) {
  EXPECT_EQ(kShownCmdlineBytes, 256U);
  const std::string classpath = "java -cp " + std::string(100 * 1024, 'j') + " openhab";
  EXPECT_EQ(ShownCmdline(classpath), "java -cp " + std::string(256 - 9, 'j') + "...");
  EXPECT_EQ(ShownCmdline(std::string(257, 'a')), std::string(256, 'a') + "...");
}

TEST(ShownCmdlineTest, NeverCutsInsideAUtf8Character) {
  // U+00E9 is 2 bytes (C3 A9), U+20AC 3 (E2 82 AC): one starting at byte 255 would be split.
  const std::string e_acute = "\u00e9";
  const std::string euro = "\u20ac";
  EXPECT_EQ(ShownCmdline(std::string(255, 'a') + e_acute + "tail"), std::string(255, 'a') + "...");
  EXPECT_EQ(ShownCmdline(std::string(254, 'a') + euro + "tail"), std::string(254, 'a') + "...");
  EXPECT_EQ(ShownCmdline(std::string(253, 'a') + euro + "tail"),
            std::string(253, 'a') + euro + "...");
  // Not UTF-8 at all: cut at 256 bytes once 3 bytes of backing off find no character start.
  EXPECT_EQ(ShownCmdline(std::string(300, '\x80')), std::string(256, '\x80') + "...");
}

TEST(DescribeProcessTest, LongCommandLineIsShortened) {
  const std::string cmdline = "java -cp " + std::string(100 * 1024, 'j') + " openhab";
  EXPECT_EQ(DescribeProcess(Process(7, "java", cmdline)),
            "pid 7 (java: java -cp " + std::string(247, 'j') + "...)");
}

// --- SocketOwnerCache --------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

const Clock::time_point kStart = Clock::time_point{} + std::chrono::hours(1);

std::vector<pid_t> HolderPids(const SocketOwners& owners, uint32_t inode) {
  std::vector<pid_t> pids;
  auto found = owners.by_inode.find(inode);
  if (found != owners.by_inode.end()) {
    for (const ProcessInfo& process : found->second) {
      pids.push_back(process.pid);
    }
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

TEST_F(SocketOwnersTest, CacheRechecksKnownHoldersWithoutAFullPass) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  SocketOwnerCache cache{ProcFs(root_)};

  SocketOwners first = cache.Resolve({4242}, false, kStart);
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(HolderPids(first, 4242), (std::vector<pid_t>{123}));
  EXPECT_EQ(first.first_fd[4242], (std::pair<pid_t, int>{123, 3}));

  // A process that appears later is not seen until a full pass is needed.
  AddProcess("456", "other\n", "other\0"s);
  AddFd("456", "7", "socket:[9999]");
  SocketOwners second = cache.Resolve({4242}, false, kStart + seconds(10));
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(HolderPids(second, 4242), (std::vector<pid_t>{123}));
  ASSERT_EQ(second.by_inode[4242].size(), 1U);
  EXPECT_EQ(second.by_inode[4242][0].command, "nginx");
  EXPECT_EQ(second.first_fd[4242], (std::pair<pid_t, int>{123, 3}));
  EXPECT_EQ(second.processes_scanned, 0U);
}

TEST_F(SocketOwnersTest, CacheScansAgainWhenAHolderLetGo) {
  using namespace std::string_literals;
  AddProcess("300", "parent\n", "app\0"s);
  AddFd("300", "3", "socket:[4242]");
  SocketOwnerCache cache{ProcFs(root_)};
  cache.Resolve({4242}, false, kStart);
  ASSERT_EQ(cache.FullScans(), 1U);

  // The parent hands the socket to a child and closes its own fd.
  AddProcess("301", "child\n", "app\0--worker\0"s);
  AddFd("301", "5", "socket:[4242]");
  std::filesystem::remove(root_ + "/300/fd/3");
  SocketOwners owners = cache.Resolve({4242}, false, kStart + seconds(1));
  EXPECT_EQ(cache.FullScans(), 2U);
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{301}));
  EXPECT_EQ(owners.first_fd[4242], (std::pair<pid_t, int>{301, 5}));
}

TEST_F(SocketOwnersTest, CacheScansForANewSocket) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  AddFd("123", "4", "socket:[4343]");
  SocketOwnerCache cache{ProcFs(root_)};
  cache.Resolve({4242}, false, kStart);
  SocketOwners owners = cache.Resolve({4242, 4343}, false, kStart + seconds(1));
  EXPECT_EQ(cache.FullScans(), 2U);
  EXPECT_EQ(HolderPids(owners, 4343), (std::vector<pid_t>{123}));
}

TEST_F(SocketOwnersTest, CacheRetriesUnresolvedSocketsOncePerMinute) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  SocketOwnerCache cache{ProcFs(root_)};
  // 777 is held by no visible process (another PID namespace, say).
  cache.Resolve({4242, 777}, false, kStart);
  EXPECT_EQ(cache.FullScans(), 1U);
  SocketOwners owners = cache.Resolve({4242, 777}, false, kStart + seconds(59));
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{123}));
  EXPECT_EQ(owners.by_inode.count(777), 0U);
  cache.Resolve({4242, 777}, false, kStart + seconds(60));
  EXPECT_EQ(cache.FullScans(), 2U);
  cache.Resolve({4242, 777}, false, kStart + seconds(61));
  EXPECT_EQ(cache.FullScans(), 2U);
}

TEST_F(SocketOwnersTest, CacheDoesAFullPassEveryFiveMinutes) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  SocketOwnerCache cache{ProcFs(root_)};
  cache.Resolve({4242}, false, kStart);
  // A fork added a holder the cache cannot know about.
  AddProcess("124", "nginx\n", "nginx\0"s);
  AddFd("124", "3", "socket:[4242]");
  EXPECT_EQ(HolderPids(cache.Resolve({4242}, false, kStart + seconds(299)), 4242),
            (std::vector<pid_t>{123}));
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(HolderPids(cache.Resolve({4242}, false, kStart + seconds(300)), 4242),
            (std::vector<pid_t>{123, 124}));
  EXPECT_EQ(cache.FullScans(), 2U);
}

TEST_F(SocketOwnersTest, CacheStillListsEveryProcessWhenAsked) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");
  AddProcess("10", "init\n", "/sbin/init\0"s);
  SocketOwnerCache cache{ProcFs(root_)};
  cache.Resolve({4242}, true, kStart);
  SocketOwners owners = cache.Resolve({4242}, true, kStart + seconds(1));
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{123}));
  std::vector<std::string> processes;
  for (const ProcessInfo& process : owners.processes) {
    processes.push_back(DescribeProcess(process));
  }
  std::sort(processes.begin(), processes.end());
  EXPECT_EQ(processes,
            (std::vector<std::string>{"pid 10 (init: /sbin/init)", "pid 123 (nginx: nginx)"}));
}

TEST_F(SocketOwnersTest, CacheSeesAHolderThatExecedAnotherProgram) {
  using namespace std::string_literals;
  AddProcess("123", "launcher\n", "launcher\0--tls\0"s);
  AddFd("123", "3", "socket:[4242]");
  SocketOwnerCache cache{ProcFs(root_)};
  cache.Resolve({4242}, false, kStart);
  // exec() keeps the pid and the fd (no O_CLOEXEC): now the process is the server.
  AddProcess("123", "server\n", "server\0"s);
  SocketOwners owners = cache.Resolve({4242}, false, kStart + seconds(1));
  ASSERT_EQ(owners.by_inode[4242].size(), 1U);
  EXPECT_EQ(owners.by_inode[4242][0].command, "server");
  EXPECT_EQ(owners.by_inode[4242][0].cmdline, "server");
}

// --- The FindSocketFds strategy (task_file iterator in production) and its fallback -----------

/// A FindSocketFds that answers `answer` and remembers what it was asked.
struct FakeFinder {
  Result<std::vector<SocketFd>> answer = std::vector<SocketFd>{};
  std::vector<std::unordered_set<uint32_t>> asked;

  FindSocketFds Strategy() {
    return [this](const std::unordered_set<uint32_t>& inodes) -> Result<std::vector<SocketFd>> {
      asked.push_back(inodes);
      return answer;
    };
  }
};

std::vector<std::tuple<uint32_t, pid_t, int>> SortedFds(SocketOwners owners) {
  std::sort(owners.fds.begin(), owners.fds.end());
  return owners.fds;
}

TEST_F(SocketOwnersTest, FinderAnswersWithoutReadingAnyFdLink) {
  using namespace std::string_literals;
  // The fd links say 300 holds 4242; the finder says 301 and 302 do. The finder wins: proof
  // that no link was read. 999 has no fd directory at all: not skipped, it was never opened.
  AddProcess("300", "stale\n", "stale\0"s);
  AddFd("300", "3", "socket:[4242]");
  AddProcess("301", "app\n", "app\0--parent\0"s);
  AddProcess("302", "app\n", "app\0--child\0"s);
  AddProcess("999", "other\n", "other\0"s);
  FakeFinder finder;
  finder.answer = std::vector<SocketFd>{{4242, 301, 5}, {4242, 302, 5}, {777, 302, 9}};

  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242, 777}, false, {}, finder.Strategy());
  ASSERT_EQ(finder.asked.size(), 1U);
  EXPECT_EQ(finder.asked[0], (std::unordered_set<uint32_t>{4242, 777}));
  EXPECT_EQ(owners.method, FdScanMethod::kBpfTaskFile);
  EXPECT_EQ(owners.find_fds_error, "");
  EXPECT_EQ(owners.processes_scanned, 2U);  // the holders only
  EXPECT_EQ(owners.processes_skipped, 0U);
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{301, 302}));
  EXPECT_EQ(HolderPids(owners, 777), (std::vector<pid_t>{302}));
  ASSERT_EQ(owners.by_inode[4242].size(), 2U);
  EXPECT_EQ(DescribeProcess(owners.by_inode[4242][0]), "pid 301 (app: app --parent)");
  EXPECT_EQ(DescribeProcess(owners.by_inode[4242][1]), "pid 302 (app: app --child)");
  EXPECT_EQ(owners.first_fd[4242], (std::pair<pid_t, int>{301, 5}));
  EXPECT_EQ(owners.first_fd[777], (std::pair<pid_t, int>{302, 9}));
  EXPECT_EQ(SortedFds(owners), (std::vector<std::tuple<uint32_t, pid_t, int>>{
                                   {777, 302, 9}, {4242, 301, 5}, {4242, 302, 5}}));
  EXPECT_TRUE(owners.processes.empty());
}

TEST_F(SocketOwnersTest, FinderRecordsAreKeptOncePerSocketAndProcess) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  FakeFinder finder;
  // dup()ed onto fds 3 and 7; a thread with an fd table of its own reported under its process
  // (fd 4); a socket not asked for; a process the iterator could not number (0).
  finder.answer = std::vector<SocketFd>{
      {4242, 123, 3}, {4242, 123, 7}, {4242, 123, 4}, {5555, 123, 8}, {4242, 0, 3}};
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, false, {}, finder.Strategy());
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{123}));
  EXPECT_EQ(owners.by_inode.count(5555), 0U);
  EXPECT_EQ(owners.first_fd[4242], (std::pair<pid_t, int>{123, 3}));
  EXPECT_EQ(SortedFds(owners), (std::vector<std::tuple<uint32_t, pid_t, int>>{{4242, 123, 3}}));
}

TEST_F(SocketOwnersTest, FinderHolderThatVanishedIsSkipped) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  FakeFinder finder;
  finder.answer = std::vector<SocketFd>{{4242, 123, 3}, {4242, 124, 3}};  // 124 exited since
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, false, {}, finder.Strategy());
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{123}));
  EXPECT_EQ(owners.processes_scanned, 2U);
  EXPECT_EQ(owners.processes_skipped, 1U);
}

TEST_F(SocketOwnersTest, FinderFailureFallsBackToTheProcPass) {
  using namespace std::string_literals;
  AddProcess("300", "app\n", "app\0"s);
  AddFd("300", "3", "socket:[4242]");
  FakeFinder finder;
  finder.answer = Failure{"socket owner iterator: load: Operation not permitted"};
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, false, {}, finder.Strategy());
  EXPECT_EQ(finder.asked.size(), 1U);
  EXPECT_EQ(owners.method, FdScanMethod::kProcfs);
  EXPECT_EQ(owners.find_fds_error, "socket owner iterator: load: Operation not permitted");
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{300}));
  EXPECT_EQ(owners.first_fd[4242], (std::pair<pid_t, int>{300, 3}));
  EXPECT_EQ(owners.processes_scanned, 1U);
}

TEST_F(SocketOwnersTest, FinderIsNotAskedWhenNoSocketIsWanted) {
  using namespace std::string_literals;
  AddProcess("10", "init\n", "/sbin/init\0"s);
  FakeFinder finder;
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {}, true, {}, finder.Strategy());
  EXPECT_TRUE(finder.asked.empty());
  EXPECT_EQ(owners.method, FdScanMethod::kNone);
  EXPECT_EQ(owners.processes.size(), 1U);
  EXPECT_EQ(FindSocketOwners(ProcFs(root_), {}, false, {}, finder.Strategy()).method,
            FdScanMethod::kNone);
  EXPECT_EQ(FindSocketOwners(ProcFs(root_), {4242}).method, FdScanMethod::kProcfs);
}

TEST_F(SocketOwnersTest, FinderWithIdentifyAllListsEveryProcessButReadsNoFdLink) {
  using namespace std::string_literals;
  AddProcess("10", "init\n", "/sbin/init\0"s);  // no fd directory: not skipped with a finder
  AddProcess("300", "app\n", "app\0"s);
  AddFd("300", "3", "socket:[4242]");  // a link the finder contradicts: not read
  AddProcess("301", "worker\n", "worker\0"s);
  FakeFinder finder;
  // 301 holds 4242; 302 started after the listing passed it (it is read all the same).
  finder.answer = std::vector<SocketFd>{{4242, 301, 4}, {4242, 302, 6}};
  SocketOwners owners = FindSocketOwners(ProcFs(root_), {4242}, true, {}, finder.Strategy());
  EXPECT_EQ(owners.method, FdScanMethod::kBpfTaskFile);
  EXPECT_EQ(HolderPids(owners, 4242), (std::vector<pid_t>{301}));
  EXPECT_EQ(owners.processes_scanned, 4U);  // 10, 300, 301 listed; 302 looked for apart
  EXPECT_EQ(owners.processes_skipped, 1U);  // 302: no /proc entry
  std::vector<std::string> processes;
  for (const ProcessInfo& process : owners.processes) {
    processes.push_back(DescribeProcess(process));
  }
  std::sort(processes.begin(), processes.end());
  EXPECT_EQ(processes, (std::vector<std::string>{"pid 10 (init: /sbin/init)", "pid 300 (app: app)",
                                                 "pid 301 (worker: worker)"}));
}

TEST_F(SocketOwnersTest, CacheUsesTheFinderForFullPassesAndRechecksHoldersByLink) {
  using namespace std::string_literals;
  AddProcess("123", "nginx\n", "nginx\0"s);
  AddFd("123", "3", "socket:[4242]");  // what the re-check reads
  FakeFinder finder;
  finder.answer = std::vector<SocketFd>{{4242, 123, 3}};
  SocketOwnerCache cache{ProcFs(root_), finder.Strategy()};
  EXPECT_EQ(cache.LastMethod(), FdScanMethod::kNone);

  SocketOwners first = cache.Resolve({4242}, false, kStart);
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(cache.LastMethod(), FdScanMethod::kBpfTaskFile);
  EXPECT_EQ(finder.asked.size(), 1U);
  EXPECT_EQ(HolderPids(first, 4242), (std::vector<pid_t>{123}));

  // The holder still holds it: one readlink, no walk.
  SocketOwners second = cache.Resolve({4242}, false, kStart + seconds(10));
  EXPECT_EQ(cache.FullScans(), 1U);
  EXPECT_EQ(finder.asked.size(), 1U);
  EXPECT_EQ(HolderPids(second, 4242), (std::vector<pid_t>{123}));
  EXPECT_EQ(second.first_fd[4242], (std::pair<pid_t, int>{123, 3}));

  // It let go and a worker took over: the re-check fails, the next full pass asks the finder.
  std::filesystem::remove(root_ + "/123/fd/3");
  AddProcess("124", "worker\n", "worker\0"s);
  finder.answer = std::vector<SocketFd>{{4242, 124, 8}};
  SocketOwners third = cache.Resolve({4242}, false, kStart + seconds(20));
  EXPECT_EQ(cache.FullScans(), 2U);
  EXPECT_EQ(finder.asked.size(), 2U);
  EXPECT_EQ(HolderPids(third, 4242), (std::vector<pid_t>{124}));
  EXPECT_EQ(third.first_fd[4242], (std::pair<pid_t, int>{124, 8}));
}

TEST_F(SocketOwnersTest, CacheFallsBackToTheProcPassWhenTheFinderFailsAndTriesItAgain) {
  using namespace std::string_literals;
  AddProcess("300", "app\n", "app\0"s);
  AddFd("300", "3", "socket:[4242]");
  FakeFinder finder;
  finder.answer = Failure{"socket owner walk: the walk ended without its trailer"};
  SocketOwnerCache cache{ProcFs(root_), finder.Strategy()};

  SocketOwners first = cache.Resolve({4242}, false, kStart);
  EXPECT_EQ(cache.LastMethod(), FdScanMethod::kProcfs);
  EXPECT_EQ(first.find_fds_error, "socket owner walk: the walk ended without its trailer");
  EXPECT_EQ(HolderPids(first, 4242), (std::vector<pid_t>{300}));

  // The next full pass (a new socket) asks the finder again; this time it answers.
  AddFd("300", "4", "socket:[4343]");
  finder.answer = std::vector<SocketFd>{{4242, 300, 3}, {4343, 300, 4}};
  SocketOwners second = cache.Resolve({4242, 4343}, false, kStart + seconds(1));
  EXPECT_EQ(cache.FullScans(), 2U);
  EXPECT_EQ(finder.asked.size(), 2U);
  EXPECT_EQ(cache.LastMethod(), FdScanMethod::kBpfTaskFile);
  EXPECT_EQ(HolderPids(second, 4343), (std::vector<pid_t>{300}));

  // A pass that looks for no socket keeps the method of the last one that did.
  cache.Resolve({}, true, kStart + seconds(400));
  EXPECT_EQ(cache.FullScans(), 3U);
  EXPECT_EQ(cache.LastMethod(), FdScanMethod::kBpfTaskFile);
}

TEST(FdScanMethodTest, Names) {
  EXPECT_STREQ(FdScanMethodName(FdScanMethod::kProcfs), "procfs");
  EXPECT_STREQ(FdScanMethodName(FdScanMethod::kBpfTaskFile), "bpf_task_file");
  EXPECT_STREQ(FdScanMethodName(FdScanMethod::kNone), "");
}

}  // namespace
}  // namespace portwatch
