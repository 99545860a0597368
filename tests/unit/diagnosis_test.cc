// The diagnose rendering on hand-built reports: the fixes offered in each situation, the text
// for the terminal and the JSON for scripts.
#include "collectors/services/diagnosis.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

using Fixes = std::vector<std::string>;

ProcessInfo Process(pid_t pid, const std::string& command, const std::string& cmdline) {
  ProcessInfo process;
  process.pid = pid;
  process.command = command;
  process.cmdline = cmdline;
  process.uid = 0;  // "root" on every system
  return process;
}

const ProcessInfo kPython = Process(32061, "python3", "python3 -m http.server 8080");
const ProcessInfo kJava = Process(100, "java", "java -jar openhab.jar");

/// Service openhab (owner: java) on 0.0.0.0:8080/tcp with nothing on the port.
ServiceReport FreeReport() {
  ServiceReport report;
  report.service.name = "openhab";
  report.service.port = 8080;
  report.service.owner.process = "java";
  report.holders.matching_processes = 0;
  return report;
}

BindPrediction Blocked(std::map<std::string, uint64_t> blockers) {
  return BindPrediction{Verdict::kBlocked, std::move(blockers), ""};
}

BindPrediction Unknown(const std::string& because) {
  return BindPrediction{Verdict::kUnknown, {}, because};
}

/// The README's example: python3 holds the port of service openhab, with TIME_WAIT behind it.
ServiceReport ForeignHolderReport() {
  ServiceReport report = FreeReport();
  report.holders.foreign_holders = {kPython};
  report.sockets_by_state = {{"listen", 1}, {"time_wait", 3}};
  report.without_reuse = Blocked({{"listen", 1}, {"time_wait", 3}});
  report.with_reuse = Blocked({{"listen", 1}});
  report.time_wait_remaining_seconds = 60;
  return report;
}

const KernelFacts kFacts;  // ip_local_port_range 32768-60999, nothing reserved

// --- SuggestFixes ---

TEST(SuggestFixesTest, NothingWhenThePortIsFree) {
  EXPECT_EQ(SuggestFixes(FreeReport(), kFacts), Fixes{});
}

TEST(SuggestFixesTest, StopOrMoveAForeignHolder) {
  EXPECT_EQ(SuggestFixes(ForeignHolderReport(), kFacts),
            Fixes{"stop or reconfigure pid 32061 (python3: python3 -m http.server 8080), which "
                  "holds port 8080, or move the service to another port"});
}

TEST(SuggestFixesTest, AHiddenHolderNeedsPrivilegeToBeNamed) {
  ServiceReport report = FreeReport();
  report.holders.invisible_holders = true;
  report.without_reuse = Blocked({{"listen", 1}});
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"a process portwatch cannot see holds the port: run as root (or with "
                  "CAP_SYS_PTRACE) in the host PID namespace to name it"});
}

TEST(SuggestFixesTest, StopTheDuplicateInstance) {
  ServiceReport report = FreeReport();
  // Two copies with an SO_REUSEPORT listener each where one is expected.
  report.holders.owned_listeners = 2;
  report.holders.instances = 2;
  report.holders.owner_processes = {kJava, Process(101, "java", "java -jar openhab.jar")};
  report.holders.matching_processes = 2;
  report.holders.matching_instances = 2;
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"stop the duplicate instance: 2 instances listen where 1 expected (separately "
                  "started copies, each with its own SO_REUSEPORT socket, share the "
                  "connections)"});
}

TEST(SuggestFixesTest, AnSoReusePortWorkerGroupIsOneInstance) {
  ServiceReport report = FreeReport();
  report.holders.owned_listeners = 4;  // one per worker, all forked by one master
  report.holders.instances = 1;
  report.holders.owner_processes = {kJava};
  report.holders.matching_processes = 5;
  report.holders.matching_instances = 1;
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"the service is running (pid 100 (java: java -jar openhab.jar)): stop it "
                  "before starting another instance"});
}

TEST(SuggestFixesTest, TheServiceIsAlreadyRunning) {
  ServiceReport report = FreeReport();
  report.holders.owned_listeners = 1;
  report.holders.instances = 1;
  report.holders.owner_processes = {kJava};
  report.holders.matching_processes = 1;
  report.holders.matching_instances = 1;
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"the service is running (pid 100 (java: java -jar openhab.jar)): stop it "
                  "before starting another instance"});
}

TEST(SuggestFixesTest, WithoutAnOwnerThePortIsSimplyInUse) {
  ServiceReport report = FreeReport();
  report.service.owner = OwnerMatch{};
  report.holders.matching_processes = std::nullopt;
  report.holders.owned_listeners = 1;
  report.holders.instances = 1;
  report.holders.owner_processes = {kJava};
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"port 8080 is in use by pid 100 (java: java -jar openhab.jar): stop it, or "
                  "move the new service to another port"});
}

TEST(SuggestFixesTest, AMatchingProcessWithoutThePortFailedToBind) {
  ServiceReport report = FreeReport();
  report.holders.owned_listeners = 1;
  report.holders.instances = 1;
  report.holders.owner_processes = {kJava};
  report.holders.matching_processes = 2;
  report.holders.matching_instances = 2;
  EXPECT_EQ(SuggestFixes(report, kFacts),
            (Fixes{"the service is running (pid 100 (java: java -jar openhab.jar)): stop it "
                   "before starting another instance",
                   "another matching process is running without the port: a duplicate that "
                   "failed to bind (ps -ef shows it)"}));
  // With the service down, a matching process is the one about to start, not a duplicate.
  report.holders.owned_listeners = 0;
  report.holders.instances = 0;
  report.holders.owner_processes = {};
  EXPECT_EQ(SuggestFixes(report, kFacts), Fixes{});
}

TEST(SuggestFixesTest, OnlyTimeWaitAfterAListenerWithReuse) {
  ServiceReport report = FreeReport();
  report.without_reuse = Blocked({{"time_wait", 3}});
  report.time_wait_remaining_seconds = 42.2;  // rounded up
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"only TIME_WAIT blocks: set SO_REUSEADDR on the new listener (the old one set "
                  "it too), or wait 43 s"});
}

TEST(SuggestFixesTest, OnlyTimeWaitAfterAListenerWithoutReuse) {
  ServiceReport report = FreeReport();
  report.without_reuse = Blocked({{"time_wait", 3}});
  report.with_reuse = Blocked({{"time_wait", 3}});
  report.time_wait_remaining_seconds = 42.2;
  const Fixes wait = {
      "wait 43 s for the TIME_WAIT sockets to expire; SO_REUSEADDR on the restart alone does not "
      "help here: set it on both incarnations from now on"};
  EXPECT_EQ(SuggestFixes(report, kFacts), wait);
  // Not knowing the old listener's flag, SO_REUSEADDR is not promised either.
  report.with_reuse = Unknown("TIME_WAIT sockets left by a listener portwatch never saw");
  EXPECT_EQ(SuggestFixes(report, kFacts), wait);
}

TEST(SuggestFixesTest, TimeWaitBehindAListenerIsNotTheProblem) {
  ServiceReport report = ForeignHolderReport();
  report.without_reuse = Blocked({{"listen", 1}, {"time_wait", 3}});
  ASSERT_EQ(SuggestFixes(report, kFacts).size(), 1U);  // only the holder's fix
}

TEST(SuggestFixesTest, ReserveAPortInsideTheEphemeralRange) {
  ServiceReport report = FreeReport();
  report.service.port = 40000;
  report.in_ephemeral_range = true;
  EXPECT_EQ(SuggestFixes(report, kFacts),
            Fixes{"port 40000 is inside ip_local_port_range 32768-60999: reserve it (sysctl -w "
                  "net.ipv4.ip_local_reserved_ports=40000) or move the service out of the range"});
  report.reserved = true;
  EXPECT_EQ(SuggestFixes(report, kFacts), Fixes{});
}

TEST(SuggestFixesTest, MostDirectFirst) {
  ServiceReport report = ForeignHolderReport();
  report.holders.invisible_holders = true;
  report.service.port = 40000;
  report.in_ephemeral_range = true;
  const Fixes fixes = SuggestFixes(report, kFacts);
  ASSERT_EQ(fixes.size(), 3U);
  EXPECT_EQ(fixes[0].rfind("stop or reconfigure pid 32061", 0), 0U);
  EXPECT_EQ(fixes[1].rfind("a process portwatch cannot see", 0), 0U);
  EXPECT_EQ(fixes[2].rfind("port 40000 is inside ip_local_port_range", 0), 0U);
}

// --- DiagnoseText ---

TEST(DiagnoseTextTest, TheReadmeExample) {
  EXPECT_EQ(DiagnoseText(ForeignHolderReport(), kFacts),
            R"(port 8080/tcp on 0.0.0.0 (service openhab)
  holders:
    pid 32061 user root: python3 -m http.server 8080  [not the owner]
  sockets:  listen 1, time_wait 3 (longest TIME_WAIT ends in 60 s)
  bind now without SO_REUSEADDR: blocked by listen 1, time_wait 3
  bind now with SO_REUSEADDR:    blocked by listen 1
  ephemeral range 32768-60999: port outside
  fix:
    - stop or reconfigure pid 32061 (python3: python3 -m http.server 8080), which holds port 8080, or move the service to another port
)");
}

TEST(DiagnoseTextTest, AFreePort) {
  EXPECT_EQ(DiagnoseText(FreeReport(), kFacts), R"(port 8080/tcp on 0.0.0.0 (service openhab)
  holders:
    none
  sockets:  none
  bind now without SO_REUSEADDR: free
  bind now with SO_REUSEADDR:    free
  ephemeral range 32768-60999: port outside
  fix: nothing to do: the port is free
)");
}

TEST(DiagnoseTextTest, AnUnconfiguredPortWithHiddenHoldersInsideAReservedRange) {
  ServiceReport report;
  report.service.name = "port-9090";  // no owner: the name is not shown, nor owner marks
  report.service.port = 9090;
  report.service.protocol = ServiceProtocol::kUdp;
  ASSERT_TRUE(SetServiceAddress("::1", report.service));
  report.holders.invisible_holders = true;
  report.sockets_by_state = {{"unconn", 1}};
  report.without_reuse = Blocked({{"unconn", 1}});
  report.with_reuse =
      Unknown("cannot read SO_REUSEADDR of a socket on the port (needs CAP_SYS_PTRACE)");
  report.in_ephemeral_range = true;
  report.reserved = true;
  KernelFacts facts;
  facts.range = {9000, 9999};
  EXPECT_EQ(DiagnoseText(report, facts), R"(port 9090/udp on ::1
  holders:
    none visible (some socket's process is hidden)
  sockets:  unconn 1
  bind now without SO_REUSEADDR: blocked by unconn 1
  bind now with SO_REUSEADDR:    unknown: cannot read SO_REUSEADDR of a socket on the port (needs CAP_SYS_PTRACE)
  ephemeral range 9000-9999: port inside, but reserved
  fix:
    - a process portwatch cannot see holds the port: run as root (or with CAP_SYS_PTRACE) in the host PID namespace to name it
)");
}

TEST(DiagnoseTextTest, OwnersFirstThenOthersAndCommandWhenNoCmdline) {
  ServiceReport report = FreeReport();
  report.holders.owned_listeners = 1;
  report.holders.owner_processes = {Process(100, "java", "")};  // a kernel-less cmdline: comm
  report.holders.foreign_holders = {kPython};
  report.holders.matching_processes = 1;
  report.sockets_by_state = {{"listen", 1}, {"established", 2}};
  report.without_reuse = Blocked({{"listen", 1}, {"established", 2}});
  report.with_reuse = Blocked({{"listen", 1}});
  EXPECT_EQ(DiagnoseText(report, kFacts), R"(port 8080/tcp on 0.0.0.0 (service openhab)
  holders:
    pid 100 user root: java  [owner]
    pid 32061 user root: python3 -m http.server 8080  [not the owner]
  sockets:  established 2, listen 1
  bind now without SO_REUSEADDR: blocked by established 2, listen 1
  bind now with SO_REUSEADDR:    blocked by listen 1
  ephemeral range 32768-60999: port outside
  fix:
    - stop or reconfigure pid 32061 (python3: python3 -m http.server 8080), which holds port 8080, or move the service to another port
    - the service is running (pid 100 (java)): stop it before starting another instance
)");
}

// --- DiagnoseJson ---

TEST(DiagnoseTextTest, InAPodTheReportNamesItAndThePodsOwnSysctls) {
  ServiceReport report = ForeignHolderReport();
  report.scope = ServiceScope{4026532999, "0b5c9a8e-1111-4222-8333-444455556666", "shop", "web-0"};
  report.in_ephemeral_range = true;
  KernelFacts facts;
  facts.range = {8000, 8999};
  EXPECT_EQ(DiagnoseText(report, facts),
            R"(port 8080/tcp on 0.0.0.0 in pod shop/web-0 (service openhab)
  holders:
    pid 32061 user root: python3 -m http.server 8080  [not the owner]
  sockets:  listen 1, time_wait 3 (longest TIME_WAIT ends in 60 s)
  bind now without SO_REUSEADDR: blocked by listen 1, time_wait 3
  bind now with SO_REUSEADDR:    blocked by listen 1
  ephemeral range 8000-8999: port inside
  fix:
    - stop or reconfigure pid 32061 (python3: python3 -m http.server 8080), which holds port 8080, or move the service to another port
    - port 8080 is inside the pod's ip_local_port_range 8000-8999: reserve it (the pod's securityContext.sysctls: net.ipv4.ip_local_reserved_ports=8080) or move the service out of the range
)");
  // A pod the kubelet's directory does not name: its uid stands alone.
  report.scope.namespace_name = "";
  report.scope.pod = report.scope.pod_uid;
  const std::string text = DiagnoseText(report, facts);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "port 8080/tcp on 0.0.0.0 in pod 0b5c9a8e-1111-4222-8333-444455556666 (service "
            "openhab)");
}

TEST(DiagnoseJsonTest, InAPodThePodIsNamedAndOnTheNodeItIsAbsent) {
  ServiceReport report = FreeReport();
  EXPECT_FALSE(nlohmann::json::parse(DiagnoseJson(report, kFacts)).contains("pod"));
  report.scope = ServiceScope{4026532999, "0b5c9a8e-1111-4222-8333-444455556666", "shop", "web-0"};
  const nlohmann::json json = nlohmann::json::parse(DiagnoseJson(report, kFacts));
  EXPECT_EQ(json["pod"], (nlohmann::json{{"namespace", "shop"},
                                         {"name", "web-0"},
                                         {"uid", "0b5c9a8e-1111-4222-8333-444455556666"}}));
}

TEST(DiagnoseJsonTest, TheReadmeExample) {
  EXPECT_EQ(DiagnoseJson(ForeignHolderReport(), kFacts), R"({
  "address": "0.0.0.0",
  "bind": {
    "with_so_reuseaddr": {
      "blockers": {
        "listen": 1
      },
      "result": "blocked"
    },
    "without_so_reuseaddr": {
      "blockers": {
        "listen": 1,
        "time_wait": 3
      },
      "result": "blocked"
    }
  },
  "ephemeral_range": {
    "contains_port": false,
    "first": 32768,
    "last": 60999,
    "reserved": false
  },
  "fixes": [
    "stop or reconfigure pid 32061 (python3: python3 -m http.server 8080), which holds port 8080, or move the service to another port"
  ],
  "hidden_holders": false,
  "holders": [
    {
      "cmdline": "python3 -m http.server 8080",
      "command": "python3",
      "owner": false,
      "pid": 32061,
      "user": "root"
    }
  ],
  "port": 8080,
  "protocol": "tcp",
  "service": "openhab",
  "sockets": {
    "listen": 1,
    "time_wait": 3
  },
  "status": "blocked",
  "time_wait_remaining_seconds": 60.0
}
)");
}

TEST(DiagnoseJsonTest, UnknownAndUnconfigured) {
  ServiceReport report;
  report.service.name = "port-8080";
  report.service.port = 8080;
  report.holders.owner_processes = {kJava};  // without an owner every holder is the "owner"
  report.holders.owned_listeners = 1;
  report.without_reuse = Unknown(
      "this kernel (before 6.10) does not show bound-but-inactive "
      "TCP sockets");
  report.with_reuse = report.without_reuse;
  const nlohmann::json expected_prediction = {
      {"blockers", nlohmann::json::object()},
      {"result", "unknown"},
      {"unknown_because",
       "this kernel (before 6.10) does not show bound-but-inactive TCP sockets"}};
  const nlohmann::json json = nlohmann::json::parse(DiagnoseJson(report, kFacts));
  EXPECT_EQ(json["service"], nullptr);
  EXPECT_EQ(json["status"], "unknown");
  EXPECT_EQ(json["bind"]["without_so_reuseaddr"], expected_prediction);
  EXPECT_EQ(json["bind"]["with_so_reuseaddr"], expected_prediction);
  EXPECT_EQ(json["holders"], nlohmann::json::parse(R"([{"cmdline": "java -jar openhab.jar",
      "command": "java", "owner": true, "pid": 100, "user": "root"}])"));
  EXPECT_EQ(json["sockets"], nlohmann::json::object());
  EXPECT_EQ(json["fixes"], nlohmann::json::parse(R"(["port 8080 is in use by pid 100 (java: )"
                                                 R"(java -jar openhab.jar): stop it, or move )"
                                                 R"(the new service to another port"])"));
}

}  // namespace
}  // namespace portwatch
