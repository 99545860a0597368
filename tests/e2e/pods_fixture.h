// The pods end-to-end fixture: private network namespaces stand in for pods. Each holds a
// process placed in a real cgroup named as the kubelet names it, and a kubelet-like
// /var/log/pods tree names them. The exporter runs in a namespace of its own (the "host") with
// collectors.sockets.pods on. Shared by the pods_e2e_test sources (one binary, one resource
// lock: the exporter sees every pod on the machine).
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/child.h"
#include "tests/support/exporter_process.h"
#include "tests/support/fake_pods.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {

namespace fs = std::filesystem;

inline constexpr uint16_t kPort = 9792;
inline const std::string kListen = "--web.listen-address=127.0.0.1:" + std::to_string(kPort);
/// A pod: its uid, the cgroup directories made for it (deepest last) and its process.
struct FakePod {
  std::string uid;
  std::vector<fs::path> made;
  std::unique_ptr<ChildProcess> process;
};

class PodsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    std::string pattern = ::testing::TempDir() + "/portwatch-pods-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ / "pods");
    std::ofstream(dir_ / "portwatch.yaml")
        << "collectors:\n  sockets:\n    pods: true\n    pod_logs_dir: " << (dir_ / "pods").string()
        << "\n";
  }
  void TearDown() override {
    exporter_.reset();
    for (FakePod& pod : pods_) {
      pod.process.reset();  // killed and reaped: its cgroup is empty
    }
    // Latest pod first: an earlier pod made the parents (kubepods/) the later ones live in.
    for (auto pod = pods_.rbegin(); pod != pods_.rend(); ++pod) {
      for (auto made = pod->made.rbegin(); made != pod->made.rend(); ++made) {
        for (int attempt = 0; attempt < 50 && fs::exists(*made) && ::rmdir(made->c_str()) != 0;
             ++attempt) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the kernel lets go late
        }
      }
    }
    fs::remove_all(dir_);
  }

  /// Makes `leaf` under `root` (recording what did not exist), and a process in a new network
  /// namespace in it, which sets its port range and runs `setup`.
  FakePod& StartPod(const std::string& uid, const fs::path& root, const fs::path& leaf,
                    const std::string& port_range, const ChildProcess::Setup& setup,
                    const ChildProcess::Setup& serve = nullptr) {
    FakePod& pod = NewPodCgroup(uid, root, leaf);
    const std::string procs = (root / leaf / "cgroup.procs").string();
    pod.process = std::make_unique<ChildProcess>(
        "pod-" + uid.substr(0, 8),
        [=](auto& keep) {
          if (!EnterPrivateNetworkNamespace().empty() ||
              !WriteSysctl("net/ipv4/ip_local_port_range", port_range).empty()) {
            ::_exit(3);
          }
          std::ofstream(procs) << ::getpid() << "\n";
          setup(keep);
        },
        serve);
    return pod;
  }

  void NamePod(const std::string& ns, const std::string& name, const std::string& uid) {
    fs::create_directories(dir_ / "pods" / (ns + "_" + name + "_" + uid));
  }

  /// A process in the exporter's own network namespace placed in a pod's cgroup `leaf` under
  /// `root`: a hostNetwork pod. It runs `setup`.
  FakePod& StartHostNetworkPod(const std::string& uid, const fs::path& root, const fs::path& leaf,
                               const ChildProcess::Setup& setup) {
    FakePod& pod = NewPodCgroup(uid, root, leaf);
    const std::string procs = (root / leaf / "cgroup.procs").string();
    pod.process = std::make_unique<ChildProcess>("pod-" + uid.substr(0, 8), [=](auto& keep) {
      std::ofstream(procs) << ::getpid() << "\n";
      setup(keep);
    });
    return pod;
  }

  /// A new pod (no process yet) and its cgroup `leaf` under `root`, recording the directories
  /// that did not exist so TearDown removes them.
  FakePod& NewPodCgroup(const std::string& uid, const fs::path& root, const fs::path& leaf) {
    FakePod& pod = pods_.emplace_back();
    pod.uid = uid;
    fs::path path = root;
    for (const fs::path& part : leaf) {
      path /= part;
      if (!fs::exists(path)) {
        fs::create_directory(path);
        pod.made.push_back(path);
      }
    }
    return pod;
  }

  /// Names a container as the kubelet's /var/log/containers does (an empty file stands in for
  /// the link to its log), in the directory AppendConfig can point
  /// collectors.services.container_logs_dir to: ContainerLogsDir().
  void NameContainer(const std::string& ns, const std::string& pod, const std::string& container,
                     const std::string& container_id) {
    fs::create_directories(ContainerLogsDir());
    std::ofstream(ContainerLogsDir() /
                  (pod + "_" + ns + "_" + container + "-" + container_id + ".log"));
  }
  fs::path ContainerLogsDir() const { return dir_ / "containers"; }

  /// Appends `yaml` to the config StartExporter() uses: top-level keys (services:), or keys of
  /// `collectors:` indented by two spaces (its last key so far is sockets).
  void AppendConfig(const std::string& yaml) {
    std::ofstream(dir_ / "portwatch.yaml", std::ios::app) << yaml;
  }
  fs::path ConfigPath() const { return dir_ / "portwatch.yaml"; }

  /// Starts the exporter on the pods config, through `wrapper` (a command and its arguments
  /// that execute the rest) when given, and waits until it is ready.
  void StartExporter(std::vector<std::string> wrapper = {}) {
    std::vector<std::string> command = std::move(wrapper);
    command.insert(command.end(), {PORTWATCH_EXPORTER_BINARY, kListen,
                                   "--config.file=" + (dir_ / "portwatch.yaml").string()});
    const std::string binary = command.front();
    exporter_ = std::make_unique<ExporterProcess>(
        binary, std::vector<std::string>(command.begin() + 1, command.end()));
    ASSERT_TRUE(exporter_->WaitReady(kPort)) << exporter_->Log();
  }

  Exposition Scrape() { return Exposition(HttpRequest(kPort, "GET", "/metrics").body); }

  /// Scrapes until no pod waits for its first reading (pods sharing the node's TCP hash are read
  /// a few per scrape), at most 20 times.
  Exposition ScrapeUntilEveryPodWasRead() {
    Exposition metrics = Scrape();
    for (int attempt = 0; attempt < 20 && metrics.Value("portwatch_pod_network_namespaces",
                                                        {{"state", "pending"}}) != 0;
         ++attempt) {
      metrics = Scrape();
    }
    return metrics;
  }

  fs::path dir_;
  std::vector<FakePod> pods_;
  std::unique_ptr<ExporterProcess> exporter_;
};

}  // namespace portwatch::testing
