// End to end: the services collector inside pods. Fake pods (PodsE2eTest: private network
// namespaces in kubelet-named cgroups, a fake /var/log/pods) hold listeners; the exporter lists
// them with their pod and container, evaluates services scoped to pods inside each matching pod,
// and `diagnose --pod` reads one pod.
#include <sys/prctl.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tests/e2e/pods_fixture.h"

namespace portwatch::testing {
namespace {

/// The systemd driver's cgroup of a container of a besteffort pod (containerd).
fs::path SystemdContainerCgroup(const std::string& uid, const std::string& container_id) {
  std::string underscored = uid;
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  return fs::path("kubepods.slice") / "kubepods-besteffort.slice" /
         ("kubepods-besteffort-pod" + underscored + ".slice") /
         ("cri-containerd-" + container_id + ".scope");
}

/// The cgroupfs driver's cgroup of a container of a burstable pod.
fs::path CgroupfsContainerCgroup(const std::string& uid, const std::string& container_id) {
  return fs::path("kubepods") / "burstable" / ("pod" + uid) / container_id;
}

ChildProcess::Setup ListenOn(uint16_t port) {
  return [port](std::vector<UniqueFd>& keep) { keep.push_back(Listen("0.0.0.0", port)); };
}

/// Renames the process (its comm, what owner.process matches) and listens.
ChildProcess::Setup ListenAs(const std::string& comm, uint16_t port) {
  return [comm, port](std::vector<UniqueFd>& keep) {
    ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
    keep.push_back(Listen("0.0.0.0", port));
  };
}

std::string Comm(const FakePod& pod) { return "pod-" + pod.uid.substr(0, 8); }

TEST_F(PodsE2eTest, ListenerInfoNamesEachPodsListenersWithTheirPodAndContainer) {
  std::mt19937_64 random(std::random_device{}());
  // web-0: a TCP listener in a named container (systemd driver).
  const std::string web0 = NewPodUid(random);
  const std::string web0_container = RandomHex(random, 64);
  StartPod(web0, Cgroup2Root(), SystemdContainerCgroup(web0, web0_container), "20000 20999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", 8080)); });
  // dns-0: a UDP socket in a container /var/log/containers does not name (cgroupfs driver).
  const std::string dns0 = NewPodUid(random);
  const std::string dns0_container = RandomHex(random, 64);
  StartPod(dns0, CgroupfsRoot(), CgroupfsContainerCgroup(dns0, dns0_container), "30000 30999",
           [](std::vector<UniqueFd>& keep) { keep.push_back(Bind(SOCK_DGRAM, "0.0.0.0", 5353)); });
  // agent-0: hostNetwork, a listener in the exporter's own namespace.
  const std::string agent0 = NewPodUid(random);
  const std::string agent0_container = RandomHex(random, 64);
  StartHostNetworkPod(agent0, CgroupfsRoot(), CgroupfsContainerCgroup(agent0, agent0_container),
                      [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("0.0.0.0", 9100)); });
  // Not in a pod, in the exporter's namespace.
  ChildProcess plain("plain-daemon", [](std::vector<UniqueFd>& keep) {
    keep.push_back(Listen("127.0.0.1", 7070));
  });
  ASSERT_TRUE(plain.Ready());
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "web-0", web0);
  NamePod("kube-system", "coredns-0", dns0);
  NamePod("monitoring", "agent-0", agent0);
  NameContainer("shop", "web-0", "app", web0_container);
  NameContainer("monitoring", "agent-0", "node-exporter", agent0_container);
  AppendConfig("  services:\n    container_logs_dir: " + ContainerLogsDir().string() + "\n");

  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "127.0.0.1"},
                                                      {"container", "app"},
                                                      {"family", "ipv4"},
                                                      {"namespace", "shop"},
                                                      {"pod", "web-0"},
                                                      {"port", "8080"},
                                                      {"process", Comm(pods_[0])},
                                                      {"protocol", "tcp"}}),
            1)
      << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "0.0.0.0"},
                                                      {"container", dns0_container.substr(0, 12)},
                                                      {"family", "ipv4"},
                                                      {"namespace", "kube-system"},
                                                      {"pod", "coredns-0"},
                                                      {"port", "5353"},
                                                      {"process", Comm(pods_[1])},
                                                      {"protocol", "udp"}}),
            1);
  EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "0.0.0.0"},
                                                      {"container", "node-exporter"},
                                                      {"family", "ipv4"},
                                                      {"namespace", "monitoring"},
                                                      {"pod", "agent-0"},
                                                      {"port", "9100"},
                                                      {"process", Comm(pods_[2])},
                                                      {"protocol", "tcp"}}),
            1);
  EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "127.0.0.1"},
                                                      {"family", "ipv4"},
                                                      {"port", "7070"},
                                                      {"process", "plain-daemon"},
                                                      {"protocol", "tcp"}}),
            1);
  // One series per listener: none of them shows twice, with and without pod labels.
  EXPECT_EQ(metrics.Sum("portwatch_listener_info", {{"port", "8080"}}), 1);
  EXPECT_EQ(metrics.Sum("portwatch_listener_info", {{"port", "5353"}}), 1);
  EXPECT_EQ(metrics.Sum("portwatch_listener_info", {{"port", "9100"}}), 1);
  EXPECT_EQ(metrics.Sum("portwatch_listener_info", {{"port", "7070"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_listener_info_dropped"), 0);
}

TEST_F(PodsE2eTest, AServiceScopedToPodsIsEvaluatedInEachMatchingPod) {
  std::mt19937_64 random(std::random_device{}());
  // web-0: port 8080 held by the wrong process. web-1: by java, its port range holding 8080.
  // db-0: the wrong process too, but the selector does not match it.
  const std::string web0 = NewPodUid(random);
  StartPod(web0, CgroupfsRoot(), CgroupfsContainerCgroup(web0, RandomHex(random, 64)),
           "30000 30999", ListenOn(8080));
  const std::string web1 = NewPodUid(random);
  StartPod(web1, CgroupfsRoot(), CgroupfsContainerCgroup(web1, RandomHex(random, 64)), "8000 8999",
           ListenAs("java", 8080));
  const std::string db0 = NewPodUid(random);
  StartPod(db0, CgroupfsRoot(), CgroupfsContainerCgroup(db0, RandomHex(random, 64)), "30000 30999",
           ListenOn(8080));
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "web-0", web0);
  NamePod("shop", "web-1", web1);
  NamePod("shop", "db-0", db0);
  AppendConfig(
      "services:\n"
      "  - name: shop-web\n"
      "    port: 8080\n"
      "    pods: {namespace: shop, name: \"web-.*\"}\n"
      "    owner: {process: java}\n"
      "  - name: nowhere\n"
      "    port: 8081\n"
      "    pods: {namespace: other}\n");

  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = Scrape();
  const std::map<std::string, std::string> in_web0 = {
      {"namespace", "shop"}, {"pod", "web-0"}, {"service", "shop-web"}};
  const std::map<std::string, std::string> in_web1 = {
      {"namespace", "shop"}, {"pod", "web-1"}, {"service", "shop-web"}};
  std::map<std::string, std::string> conflict = in_web0;
  conflict["holder"] = Comm(pods_[0]);
  EXPECT_EQ(metrics.Value("portwatch_service_conflict", conflict), 1) << metrics.Text();
  EXPECT_EQ(metrics.Sum("portwatch_service_conflict"), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_up", in_web0), 0);
  EXPECT_EQ(metrics.Value("portwatch_service_up", in_web1), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", in_web1), 1);
  // Each pod's own `ps -ef`: java runs in web-1 only.
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", in_web0), 0);
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", in_web1), 1);
  std::map<std::string, std::string> blocked = in_web1;
  blocked.insert({{"result", "blocked"}, {"so_reuseaddr", "false"}});
  EXPECT_EQ(metrics.Value("portwatch_service_bind_prediction", blocked), 1);
  // Each pod's own port range: 8000-8999 in web-1, 30000-30999 in web-0.
  EXPECT_EQ(metrics.Value("portwatch_service_port_in_ephemeral_range", in_web0), 0);
  EXPECT_EQ(metrics.Value("portwatch_service_port_in_ephemeral_range", in_web1), 1);
  // db-0 does not match, and the node is not evaluated for a scoped service.
  EXPECT_EQ(metrics.Sum("portwatch_service_info", {{"pod", "db-0"}}), 0);
  EXPECT_EQ(metrics.Sum("portwatch_service_info", {{"service", "shop-web"}}), 2);
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "shop-web"}}), std::nullopt);
  EXPECT_EQ(metrics.Value("portwatch_service_pods", {{"service", "shop-web"}}), 2);
  // A selector no pod matches: visible as 0 pods, and no other series.
  EXPECT_EQ(metrics.Value("portwatch_service_pods", {{"service", "nowhere"}}), 0);
  EXPECT_EQ(metrics.Sum("portwatch_service_info", {{"service", "nowhere"}}), 0);
}

TEST_F(PodsE2eTest, DiagnoseReadsInsideThePodItIsGiven) {
  std::mt19937_64 random(std::random_device{}());
  const std::string web0 = NewPodUid(random);
  StartPod(web0, CgroupfsRoot(), CgroupfsContainerCgroup(web0, RandomHex(random, 64)),
           "30000 30999", ListenOn(8080));
  const std::string web1 = NewPodUid(random);
  StartPod(web1, CgroupfsRoot(), CgroupfsContainerCgroup(web1, RandomHex(random, 64)), "8000 8999",
           ListenAs("java", 8080));
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "web-0", web0);
  NamePod("shop", "web-1", web1);
  AppendConfig(
      "services:\n"
      "  - name: shop-web\n"
      "    port: 8080\n"
      "    pods: {namespace: shop, name: \"web-.*\"}\n"
      "    owner: {process: java}\n");
  const std::string config = "--config.file=" + ConfigPath().string();

  // web-0 by its name: a foreign process holds the port (exit 1: blocked); the port range shown
  // is the pod's own.
  std::string report;
  EXPECT_EQ(
      RunCommand({PORTWATCH_EXPORTER_BINARY, config, "diagnose", "8080", "--pod", "shop/web-0"},
                 report),
      1)
      << report;
  EXPECT_NE(report.find("port 8080/tcp on 0.0.0.0 in pod shop/web-0 (service shop-web)\n"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("    pid " + std::to_string(pods_[0].process->Pid())), std::string::npos)
      << report;
  EXPECT_NE(report.find("[not the owner]"), std::string::npos) << report;
  EXPECT_NE(report.find("  ephemeral range 30000-30999: port outside\n"), std::string::npos)
      << report;

  // web-1 by its uid, as JSON: java owns the port, inside the pod's range 8000-8999.
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, config, "diagnose", "8080", "--pod", web1,
                        "--output=json"},
                       report),
            1)
      << report;
  const nlohmann::json diagnosis = nlohmann::json::parse(report, nullptr, false);
  ASSERT_FALSE(diagnosis.is_discarded()) << report;
  EXPECT_EQ(diagnosis["pod"]["namespace"], "shop") << report;
  EXPECT_EQ(diagnosis["pod"]["name"], "web-1") << report;
  EXPECT_EQ(diagnosis["pod"]["uid"], web1) << report;
  EXPECT_EQ(diagnosis["service"], "shop-web") << report;
  ASSERT_EQ(diagnosis["holders"].size(), 1U) << report;
  EXPECT_EQ(diagnosis["holders"][0]["pid"], pods_[1].process->Pid()) << report;
  EXPECT_EQ(diagnosis["holders"][0]["command"], "java") << report;
  EXPECT_EQ(diagnosis["holders"][0]["owner"], true) << report;
  EXPECT_EQ(diagnosis["ephemeral_range"]["first"], 8000) << report;
  EXPECT_EQ(diagnosis["ephemeral_range"]["contains_port"], true) << report;

  // Without --pod: the node's namespace, where nothing holds 8080.
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, config, "diagnose", "8080"}, report), 0)
      << report;
  EXPECT_NE(report.find("port 8080/tcp on 0.0.0.0\n  holders:\n    none\n"), std::string::npos)
      << report;

  // A pod that is not there.
  EXPECT_EQ(
      RunCommand({PORTWATCH_EXPORTER_BINARY, config, "diagnose", "8080", "--pod", "shop/web-9"},
                 report),
      3)
      << report;
  EXPECT_NE(report.find("portwatch_exporter diagnose: no pod shop/web-9 "), std::string::npos)
      << report;
}

}  // namespace
}  // namespace portwatch::testing
