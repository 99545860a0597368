// The container image (deploy/container/Containerfile), built with podman on a local Debian base
// (tests/deploy/container_image.sh), and run the way deploy/kubernetes's DaemonSet runs it: the
// pod spec's host namespaces, user, capabilities, read-only root and ConfigMap are read from the
// manifests and turned into podman flags, inside a private network namespace of this test.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "tests/support/child.h"
#include "tests/support/exporter_process.h"
#include "tests/support/fake_pods.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

const std::string kSourceDir = PORTWATCH_SOURCE_DIR;
const std::string kCacheDir = PORTWATCH_DEPLOY_CACHE;
const std::string kPodman = kCacheDir + "/podman";
const std::string kImage = "localhost/portwatch_exporter:test";
const std::string kBaseImage = "localhost/portwatch-test-base:bookworm";
const std::string kKubernetesDir = kSourceDir + "/deploy/kubernetes/exporter";

// A listener held by another user's process, which only the DaemonSet's privileges can name.
constexpr uint16_t kOtherUserPort = 18080;
constexpr uid_t kOtherUser = 4321;
const char* const kOtherUserComm = "pw-other-user";

/// Linux capability numbers (linux/capability.h) by Kubernetes name.
const std::map<std::string, int>& CapabilityNumbers() {
  static const std::map<std::string, int> kNumbers = {
      {"CHOWN", 0},
      {"DAC_OVERRIDE", 1},
      {"DAC_READ_SEARCH", 2},
      {"FOWNER", 3},
      {"FSETID", 4},
      {"KILL", 5},
      {"SETGID", 6},
      {"SETUID", 7},
      {"SETPCAP", 8},
      {"LINUX_IMMUTABLE", 9},
      {"NET_BIND_SERVICE", 10},
      {"NET_BROADCAST", 11},
      {"NET_ADMIN", 12},
      {"NET_RAW", 13},
      {"IPC_LOCK", 14},
      {"IPC_OWNER", 15},
      {"SYS_MODULE", 16},
      {"SYS_RAWIO", 17},
      {"SYS_CHROOT", 18},
      {"SYS_PTRACE", 19},
      {"SYS_PACCT", 20},
      {"SYS_ADMIN", 21},
      {"SYS_BOOT", 22},
      {"SYS_NICE", 23},
      {"SYS_RESOURCE", 24},
      {"SYS_TIME", 25},
      {"SYS_TTY_CONFIG", 26},
      {"MKNOD", 27},
      {"LEASE", 28},
      {"AUDIT_WRITE", 29},
      {"AUDIT_CONTROL", 30},
      {"SETFCAP", 31},
      {"MAC_OVERRIDE", 32},
      {"MAC_ADMIN", 33},
      {"SYSLOG", 34},
      {"WAKE_ALARM", 35},
      {"BLOCK_SUSPEND", 36},
      {"AUDIT_READ", 37},
      {"PERFMON", 38},
      {"BPF", 39},
      {"CHECKPOINT_RESTORE", 40},
  };
  return kNumbers;
}

/// What the DaemonSet's pod asks of the container runtime, read from daemonset.yaml.
struct PodSpec {
  bool host_network = false;
  bool host_pid = false;
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  bool read_only_root = false;
  bool no_new_privileges = false;
  std::string seccomp;
  std::vector<std::string> cap_drop;
  std::vector<std::string> cap_add;
  std::vector<std::string> args;
  std::string config_map;  ///< the ConfigMap mounted into the container
  std::string config_mount_path;
  /// Where the node's directories (hostPath volumes, read-only) are mounted: each gets an empty
  /// directory of the test, as on a node whose kubelet has no pod yet.
  std::vector<std::string> host_path_mounts;
  uint16_t port = 0;
  std::string liveness_path;
  std::string readiness_path;
};

std::vector<std::string> Strings(const YAML::Node& node) {
  std::vector<std::string> out;
  for (const YAML::Node& item : node) {
    out.push_back(item.as<std::string>());
  }
  return out;
}

PodSpec ReadDaemonSet() {
  const YAML::Node daemonset = YAML::LoadFile(kKubernetesDir + "/daemonset.yaml");
  const YAML::Node pod = daemonset["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  PodSpec spec;
  spec.host_network = pod["hostNetwork"].as<bool>(false);
  spec.host_pid = pod["hostPID"].as<bool>(false);
  // Container-level securityContext fields override the pod-level ones.
  for (const YAML::Node& context : {pod["securityContext"], container["securityContext"]}) {
    if (!context) {
      continue;
    }
    if (context["runAsUser"]) {
      spec.run_as_user = context["runAsUser"].as<int64_t>();
    }
    if (context["runAsGroup"]) {
      spec.run_as_group = context["runAsGroup"].as<int64_t>();
    }
    if (context["seccompProfile"]) {
      spec.seccomp = context["seccompProfile"]["type"].as<std::string>();
    }
    if (context["readOnlyRootFilesystem"]) {
      spec.read_only_root = context["readOnlyRootFilesystem"].as<bool>();
    }
    if (context["allowPrivilegeEscalation"]) {
      spec.no_new_privileges = !context["allowPrivilegeEscalation"].as<bool>();
    }
    if (context["capabilities"]) {
      spec.cap_drop = Strings(context["capabilities"]["drop"]);
      spec.cap_add = Strings(context["capabilities"]["add"]);
    }
  }
  spec.args = Strings(container["args"]);
  spec.port = container["ports"][0]["containerPort"].as<uint16_t>();
  spec.liveness_path = container["livenessProbe"]["httpGet"]["path"].as<std::string>();
  spec.readiness_path = container["readinessProbe"]["httpGet"]["path"].as<std::string>();
  const std::string volume = container["volumeMounts"][0]["name"].as<std::string>();
  spec.config_mount_path = container["volumeMounts"][0]["mountPath"].as<std::string>();
  for (const YAML::Node& candidate : pod["volumes"]) {
    if (candidate["name"].as<std::string>() == volume) {
      spec.config_map = candidate["configMap"]["name"].as<std::string>();
    }
  }
  for (const YAML::Node& mount : container["volumeMounts"]) {
    for (const YAML::Node& candidate : pod["volumes"]) {
      if (candidate["name"].as<std::string>() == mount["name"].as<std::string>() &&
          candidate["hostPath"]) {
        spec.host_path_mounts.push_back(mount["mountPath"].as<std::string>());
      }
    }
  }
  return spec;
}

/// This project's kernels refuse fexit programs (docs/bind_events.md), the only attach path the
/// shipped config allows: to prove that the pod's privileges load and attach bind_events'
/// program, the test's copy of the config also allows the syscall trace events (raw_tracepoint
/// for a container without tracefs). Returns "" or what went wrong.
std::string AllowEveryAttachPath(const std::string& path) {
  YAML::Node config = YAML::LoadFile(path);
  config["collectors"]["bind_events"]["attach"] =
      std::vector<std::string>{"fexit", "tracepoint", "raw_tracepoint"};
  YAML::Emitter out;
  out << config;
  std::ofstream(path) << out.c_str() << "\n";
  return out.good() ? "" : out.GetLastError();
}

/// The data of the ConfigMap `name` in configmap.yaml, file name to content.
std::map<std::string, std::string> ReadConfigMap(const std::string& name) {
  const YAML::Node config_map = YAML::LoadFile(kKubernetesDir + "/configmap.yaml");
  std::map<std::string, std::string> files;
  if (config_map["metadata"]["name"].as<std::string>() == name) {
    for (const auto& entry : config_map["data"]) {
      files[entry.first.as<std::string>()] = entry.second.as<std::string>();
    }
  }
  return files;
}

/// Why podman cannot run containers on this machine at all (empty: it can). Containers need
/// root here (rootless podman is not set up) and new mount and PID namespaces.
std::string ContainersUnsupported() {
  if (::geteuid() != 0) {
    return "containers run as root here (rootless podman is not set up); run the tests as root";
  }
  pid_t child = ::fork();
  if (child == 0) {
    if (::unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
      ::_exit(errno);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/tmp", "tmpfs", 0, nullptr) != 0) {
      ::_exit(errno);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return std::string("this machine cannot create the namespaces and mounts a container needs: ") +
           std::strerror(WIFEXITED(status) ? WEXITSTATUS(status) : EPERM);
  }
  return "";
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

/// `node` as JSON: scalars that were plain in the parsed file (numbers) as they are, the others
/// (quoted in the file, or set by this test) as strings.
std::string Json(const YAML::Node& node) {
  std::string out;
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& entry : node) {
        out += (out.empty() ? "{" : ",") + Json(entry.first) + ":" + Json(entry.second);
      }
      return out.empty() ? "{}" : out + "}";
    case YAML::NodeType::Sequence:
      for (const YAML::Node& item : node) {
        out += (out.empty() ? "[" : ",") + Json(item);
      }
      return out.empty() ? "[]" : out + "]";
    case YAML::NodeType::Scalar:
      if (node.Tag() == "?") {
        return node.Scalar();
      }
      for (char c : node.Scalar()) {
        out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
      }
      return "\"" + out + "\"";
    default:
      return "null";
  }
}

/// Kubernetes' RuntimeDefault seccomp profile as containerd (1.7 and later) and Docker (23 and
/// later) have it, written to `path`: podman's default profile (containers-common), except that
/// `bpf` is allowed under CAP_BPF and `perf_event_open` under CAP_PERFMON, not only under
/// CAP_SYS_ADMIN. Returns why it could not be made (empty: made).
std::string WriteRuntimeDefaultProfile(const std::string& path) {
  std::string source;
  for (const char* candidate :
       {"/etc/containers/seccomp.json", "/usr/share/containers/seccomp.json"}) {
    if (std::filesystem::exists(candidate)) {
      source = candidate;
      break;
    }
  }
  if (source.empty()) {
    return "podman's default seccomp profile (/usr/share/containers/seccomp.json) is missing";
  }
  YAML::Node profile = YAML::LoadFile(source);
  YAML::Node syscalls = YAML::Node(YAML::NodeType::Sequence);
  const std::map<std::string, std::string> kGates = {{"bpf", "CAP_BPF"},
                                                     {"perf_event_open", "CAP_PERFMON"}};
  for (const YAML::Node& rule : profile["syscalls"]) {
    // containers-common denies these two with EPERM unless CAP_SYS_ADMIN: take them out of
    // that rule, then deny each unless CAP_SYS_ADMIN or its own capability.
    YAML::Node kept = YAML::Clone(rule);
    if (rule["action"].as<std::string>() == "SCMP_ACT_ERRNO" && rule["excludes"]["caps"]) {
      kept["names"] = YAML::Node(YAML::NodeType::Sequence);
      for (const YAML::Node& name : rule["names"]) {
        const auto gate = kGates.find(name.as<std::string>());
        if (gate == kGates.end()) {
          kept["names"].push_back(name);
          continue;
        }
        YAML::Node deny = YAML::Clone(rule);
        deny["names"] = YAML::Node(YAML::NodeType::Sequence);
        deny["names"].push_back(name);
        deny["excludes"]["caps"].push_back(gate->second);
        syscalls.push_back(deny);
      }
    }
    if (kept["names"].size() > 0) {
      syscalls.push_back(kept);
    }
  }
  for (const auto& [name, cap] : kGates) {
    YAML::Node allow;
    allow["names"].push_back(name);
    allow["action"] = "SCMP_ACT_ALLOW";
    allow["includes"]["caps"].push_back(cap);
    syscalls.push_back(allow);
  }
  profile["syscalls"] = syscalls;
  std::ofstream(path) << Json(profile) << "\n";
  return "";
}

/// Runs the test suite's podman wrapper; returns the exit code, output in `output`.
int Podman(const std::vector<std::string>& args, std::string& output, int seconds = 120) {
  std::vector<std::string> argv = {kPodman};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, output, seconds);
}

/// A `key: value` field of /proc/<pid>/status.
std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string value = line.substr(key.size() + 1);
      return value.substr(value.find_first_not_of(" \t"));
    }
  }
  return "";
}

uint64_t CapabilityMask(const std::vector<std::string>& names) {
  uint64_t mask = 0;
  for (const std::string& name : names) {
    mask |= uint64_t{1} << CapabilityNumbers().at(name);
  }
  return mask;
}

/// A process of user kOtherUser, named kOtherUserComm, listening on 127.0.0.1:kOtherUserPort in
/// the caller's network namespace until destroyed.
/// A process standing in for a Kubernetes pod: a network namespace of its own with a listener on
/// 127.0.0.1:kFakePodPort, in a cgroup named as the kubelet's cgroupfs driver names it, and its
/// kubelet log directory entry (<namespace>_<pod>_<uid>) in `pod_logs_dir`.
constexpr uint16_t kFakePodPort = 7070;
class FakePod {
 public:
  explicit FakePod(const std::filesystem::path& pod_logs_dir) {
    std::mt19937_64 random(std::random_device{}());
    uid_ = NewPodUid(random);
    std::filesystem::path cgroup = CgroupfsRoot();
    for (const std::string& part : {std::string("kubepods"), "pod" + uid_, RandomHex(random, 64)}) {
      cgroup /= part;
      if (!std::filesystem::exists(cgroup)) {
        std::filesystem::create_directory(cgroup);
        made_.push_back(cgroup);
      }
    }
    const std::string procs = (cgroup / "cgroup.procs").string();
    process_ = std::make_unique<ChildProcess>("fake-pod", [procs](std::vector<UniqueFd>& keep) {
      if (!EnterPrivateNetworkNamespace().empty()) {
        ::_exit(3);
      }
      std::ofstream(procs) << ::getpid() << "\n";
      keep.push_back(Listen("127.0.0.1", kFakePodPort));
    });
    std::filesystem::create_directories(pod_logs_dir / ("portwatch-test_fake_" + uid_));
  }
  ~FakePod() {
    process_.reset();  // killed and reaped: its cgroup is empty
    for (auto made = made_.rbegin(); made != made_.rend(); ++made) {
      for (int attempt = 0; attempt < 50 && ::rmdir(made->c_str()) != 0; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the kernel lets go late
      }
    }
  }
  FakePod(const FakePod&) = delete;
  FakePod& operator=(const FakePod&) = delete;
  bool Ready() const { return process_ && process_->Ready(); }

 private:
  std::string uid_;
  std::vector<std::filesystem::path> made_;
  std::unique_ptr<ChildProcess> process_;
};

class OtherUserListener {
 public:
  OtherUserListener() {
    int ready[2];
    if (::pipe(ready) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::prctl(PR_SET_NAME, kOtherUserComm);
      if (::setresgid(kOtherUser, kOtherUser, kOtherUser) != 0 ||
          ::setresuid(kOtherUser, kOtherUser, kOtherUser) != 0) {
        ::_exit(1);
      }
      // Changing uid made the process non-dumpable, which hands its /proc files to root; a
      // process started by that user normally is dumpable, /proc/<pid>/fd owned by the user.
      ::prctl(PR_SET_DUMPABLE, 1);
      UniqueFd listener = Listen("127.0.0.1", kOtherUserPort);
      if (!listener.Valid() || ::write(ready[1], "r", 1) != 1) {
        ::_exit(1);
      }
      ::pause();
      ::_exit(0);
    }
    ::close(ready[1]);
    char byte = 0;
    ready_ = pid_ > 0 && ::read(ready[0], &byte, 1) == 1;
    ::close(ready[0]);
  }
  ~OtherUserListener() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  OtherUserListener(const OtherUserListener&) = delete;
  OtherUserListener& operator=(const OtherUserListener&) = delete;
  bool Ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string unsupported = ContainersUnsupported();
    if (!unsupported.empty()) {
      GTEST_SKIP() << unsupported;
    }
    // Cached layers make this a few seconds after the first build (minutes).
    std::string log;
    const int code =
        RunCommand({"bash", kSourceDir + "/tests/deploy/container_image.sh", kSourceDir, kCacheDir,
                    kImage, PORTWATCH_VERSION, PORTWATCH_REVISION},
                   log, 1500);
    ASSERT_EQ(code, 0) << "building the image failed:\n"
                       << (log.size() > 6000 ? log.substr(log.size() - 6000) : log);
    pod_ = ReadDaemonSet();
    config_dir_ = ::testing::TempDir() + "/portwatch-configmap-" + std::to_string(::getpid());
    std::filesystem::create_directories(config_dir_);
    const auto files = ReadConfigMap(pod_.config_map);
    ASSERT_FALSE(files.empty()) << "no ConfigMap " << pod_.config_map << " in configmap.yaml";
    for (const auto& [name, content] : files) {
      std::ofstream(config_dir_ + "/" + name) << content;
    }
    seccomp_profile_ = config_dir_ + ".seccomp.json";
    ASSERT_EQ(WriteRuntimeDefaultProfile(seccomp_profile_), "");
  }

  void TearDown() override {
    if (!container_.empty()) {
      std::string ignored;
      Podman({"rm", "-f", "-t", "0", container_}, ignored);
    }
    if (!config_dir_.empty()) {
      std::filesystem::remove_all(config_dir_);
      std::filesystem::remove(seccomp_profile_);
      for (size_t i = 0; i < pod_.host_path_mounts.size(); ++i) {
        std::filesystem::remove_all(NodeDirectory(i));
      }
    }
  }

  /// The empty directory of the test standing for the node's directory of hostPath mount `index`.
  std::filesystem::path NodeDirectory(size_t index) const {
    return config_dir_ + ".node" + std::to_string(index);
  }

  /// The fake pod's listener as the exporter on `port` counts it (nullopt: not counted).
  static std::optional<double> FakePodListeners(uint16_t port) {
    const Exposition metrics(HttpRequest(port, "GET", "/metrics").body);
    for (const auto& [key, value] : metrics.Samples()) {
      if (key.rfind("portwatch_sockets{", 0) == 0 &&
          key.find("namespace=\"portwatch-test\"") != std::string::npos &&
          key.find("pod=\"fake\"") != std::string::npos &&
          key.find("port=\"" + std::to_string(kFakePodPort) + "\"") != std::string::npos &&
          key.find("state=\"listen\"") != std::string::npos) {
        return value;
      }
    }
    return std::nullopt;
  }

  /// podman flags equivalent to the DaemonSet's pod spec, with `drop_cap_add` left out of the
  /// added capabilities and hostPID unless `host_pid`. RuntimeDefault is containerd's profile
  /// (WriteRuntimeDefaultProfile) unless `podman_seccomp`: podman's (and CRI-O's) own.
  std::vector<std::string> PodFlags(const std::set<std::string>& drop_cap_add = {},
                                    bool host_pid = true, bool podman_seccomp = false) const {
    std::vector<std::string> flags;
    if (pod_.seccomp == "RuntimeDefault" && !podman_seccomp) {
      flags.push_back("--security-opt=seccomp=" + seccomp_profile_);
    }
    if (pod_.host_network) {
      flags.push_back("--network=host");  // this test's private network namespace
    }
    if (pod_.host_pid && host_pid) {
      flags.push_back("--pid=host");
    }
    if (pod_.run_as_user) {
      flags.push_back("--user=" + std::to_string(*pod_.run_as_user) +
                      (pod_.run_as_group ? ":" + std::to_string(*pod_.run_as_group) : ""));
    }
    if (pod_.read_only_root) {
      flags.insert(flags.end(), {"--read-only", "--read-only-tmpfs=false"});
    }
    if (pod_.no_new_privileges) {
      flags.push_back("--security-opt=no-new-privileges");
    }
    for (const std::string& cap : pod_.cap_drop) {
      flags.push_back("--cap-drop=" + cap);
    }
    for (const std::string& cap : pod_.cap_add) {
      if (drop_cap_add.count(cap) == 0) {
        flags.push_back("--cap-add=" + cap);
      }
    }
    flags.push_back("--volume=" + config_dir_ + ":" + pod_.config_mount_path + ":ro");
    for (size_t i = 0; i < pod_.host_path_mounts.size(); ++i) {
      std::filesystem::create_directories(NodeDirectory(i));
      flags.push_back("--volume=" + NodeDirectory(i).string() + ":" + pod_.host_path_mounts[i] +
                      ":ro");
    }
    return flags;
  }

  /// Starts the image detached with `flags` and `args`, in this test's private network
  /// namespace; waits for `ready_path` on `port`. Returns the container's main pid, -1 on failure.
  pid_t Start(const std::vector<std::string>& flags, const std::vector<std::string>& args,
              uint16_t port, const std::string& ready_path) {
    container_ = "portwatch-test-" + std::to_string(::getpid()) + "-" + std::to_string(++started_);
    std::vector<std::string> command = {"run", "-d", "--name", container_};
    command.insert(command.end(), flags.begin(), flags.end());
    command.push_back(kImage);
    command.insert(command.end(), args.begin(), args.end());
    std::string output;
    if (Podman(command, output) != 0) {
      ADD_FAILURE() << "podman run failed:\n" << output;
      return -1;
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (HttpRequest(port, "GET", ready_path).status == 200) {
        Podman({"inspect", "--format", "{{.State.Pid}}", container_}, output);
        return static_cast<pid_t>(std::stol(Trim(output)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Podman({"logs", container_}, output);
    ADD_FAILURE() << "the container never answered " << ready_path << " on " << port << ":\n"
                  << output;
    return -1;
  }

  /// The process that holds kOtherUserPort, as the running exporter names it.
  std::string OtherUserListenerProcess(uint16_t port) {
    const Exposition metrics(HttpRequest(port, "GET", "/metrics").body);
    for (const auto& [key, value] : metrics.Samples()) {
      if (key.rfind("portwatch_listener_info{", 0) == 0 &&
          key.find("port=\"" + std::to_string(kOtherUserPort) + "\"") != std::string::npos) {
        const size_t start = key.find("process=\"") + 9;
        return key.substr(start, key.find('"', start) - start);
      }
    }
    return "(no portwatch_listener_info series for the port)";
  }

  /// portwatch_bind_events_available of the running exporter (-1: no such sample).
  static double BindEventsAvailable(uint16_t port) {
    const Exposition metrics(HttpRequest(port, "GET", "/metrics").body);
    return metrics.Value("portwatch_bind_events_available").value_or(-1);
  }

  PodSpec pod_;
  std::string config_dir_;
  std::string seccomp_profile_;  ///< RuntimeDefault as containerd has it
  std::string container_;
  int started_ = 0;
};

TEST_F(ContainerTest, ImageIsSlimNonRootAndRunsTheExporter) {
  std::string output;
  ASSERT_EQ(Podman({"image", "inspect", "--format",
                    "{{.Config.User}}\n{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}\n"
                    "{{range $port, $_ := .Config.ExposedPorts}}{{$port}}{{end}}\n"
                    "{{index .Config.Labels \"org.opencontainers.image.version\"}}\n"
                    "{{index .Config.Labels \"org.opencontainers.image.revision\"}}\n{{.Size}}",
                    kImage},
                   output),
            0)
      << output;
  const std::vector<std::string> fields = Lines(output);
  ASSERT_EQ(fields.size(), 7u) << output;
  EXPECT_EQ(fields[0], "65532:65532");
  EXPECT_EQ(fields[1], "[\"/usr/bin/portwatch_exporter\"]");
  EXPECT_EQ(fields[2], "[\"--config.file=/etc/portwatch/portwatch.yaml\"]");
  EXPECT_EQ(fields[3], "9792/tcp");
  EXPECT_EQ(fields[4], PORTWATCH_VERSION);
  EXPECT_EQ(fields[5], PORTWATCH_REVISION);

  // Only the runtime libraries and the binary on top of the base: a few MB.
  ASSERT_EQ(Podman({"image", "inspect", "--format", "{{.Size}}", kBaseImage}, output), 0);
  const double added_mib = (std::stod(fields[6]) - std::stod(output)) / (1024.0 * 1024.0);
  EXPECT_GT(added_mib, 0.5);
  EXPECT_LT(added_mib, 25.0) << "the runtime stage added " << added_mib << " MiB to the base";

  // No compiler, no -dev package.
  ASSERT_EQ(Podman({"run", "--rm", "--network=none", "--entrypoint=/usr/bin/dpkg-query", kImage,
                    "-W", "-f=${Package}\\n"},
                   output),
            0)
      << output;
  const std::vector<std::string> packages = Lines(output);
  const std::set<std::string> installed(packages.begin(), packages.end());
  // The runtime libraries the binary links, found by ldd in the build stage.
  for (const char* library : {"libcivetweb1", "libprometheus-cpp-core1.0", "libre2-9", "libssl3"}) {
    EXPECT_TRUE(installed.count(library)) << library << "\n" << output;
  }
  EXPECT_TRUE(installed.count("libbpf1")) << output;  // bind_events' eBPF loader
  for (const std::string& package : packages) {
    EXPECT_FALSE(package.size() > 4 && package.substr(package.size() - 4) == "-dev") << package;
  }
  for (const char* tool : {"gcc", "g++", "cpp", "gcc-12", "g++-12", "cmake", "make", "binutils",
                           "clang", "clang-14", "llvm-14", "bpftool"}) {
    EXPECT_FALSE(installed.count(tool)) << tool << " is in the runtime image";
  }
  ASSERT_EQ(Podman({"run", "--rm", "--network=none", "--entrypoint=/bin/sh", kImage, "-c",
                    "command -v cc c++ gcc g++ clang cmake ld bpftool || true"},
                   output),
            0);
  EXPECT_EQ(Trim(output), "");

  // The entrypoint takes the exporter's flags.
  ASSERT_EQ(Podman({"run", "--rm", "--network=none", kImage, "--version"}, output), 0) << output;
  EXPECT_NE(output.find("portwatch_exporter " PORTWATCH_VERSION), std::string::npos) << output;
}

TEST_F(ContainerTest, ConfigMapConfigPassesConfigCheckInTheImage) {
  const std::string config = pod_.config_mount_path + "/portwatch.yaml";
  ASSERT_NE(std::find(pod_.args.begin(), pod_.args.end(), "--config.file=" + config),
            pod_.args.end())
      << "the DaemonSet does not pass --config.file=" << config;
  std::string output;
  EXPECT_EQ(Podman({"run", "--rm", "--network=none",
                    "--volume=" + config_dir_ + ":" + pod_.config_mount_path + ":ro", kImage,
                    "--config.check", "--config.file=" + config},
                   output),
            0)
      << output;
  EXPECT_NE(output.find("config OK"), std::string::npos) << output;

  // A broken config fails the same check (exit 1, the error names the line).
  std::ofstream(config_dir_ + "/portwatch.yaml")
      << "collectors:\n  sockets:\n    max_port_series: lots\n";
  EXPECT_EQ(Podman({"run", "--rm", "--network=none",
                    "--volume=" + config_dir_ + ":" + pod_.config_mount_path + ":ro", kImage,
                    "--config.check", "--config.file=" + config},
                   output),
            1)
      << output;
  EXPECT_NE(output.find("portwatch.yaml:3:"), std::string::npos) << output;
}

TEST_F(ContainerTest, RunsAsTheDaemonSetPodAndNamesOtherUsersListeners) {
  ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
  EXPECT_TRUE(pod_.host_network);
  EXPECT_EQ(pod_.seccomp, "RuntimeDefault");  // containerd's, as run here (PodFlags)
  EXPECT_EQ(pod_.cap_drop, std::vector<std::string>{"ALL"});
  OtherUserListener other;
  ASSERT_TRUE(other.Ready());
  ASSERT_FALSE(pod_.host_path_mounts.empty()) << "the DaemonSet mounts no /var/log/pods";
  FakePod fake_pod(NodeDirectory(0));
  ASSERT_TRUE(fake_pod.Ready());
  ASSERT_EQ(AllowEveryAttachPath(config_dir_ + "/portwatch.yaml"), "");

  const pid_t pid = Start(PodFlags(), pod_.args, pod_.port, pod_.readiness_path);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(HttpRequest(pod_.port, "GET", pod_.liveness_path).status, 200);

  const Exposition metrics(HttpRequest(pod_.port, "GET", "/metrics").body);
  EXPECT_EQ(metrics.Value("portwatch_sockets", {{"family", "ipv4"},
                                                {"port", std::to_string(kOtherUserPort)},
                                                {"protocol", "tcp"},
                                                {"state", "listen"}}),
            1.0)
      << metrics.Text();
  int collectors = 0;
  for (const auto& [key, value] : metrics.Samples()) {
    if (key.rfind("portwatch_scrape_collector_success{", 0) == 0) {
      ++collectors;
      EXPECT_EQ(value, 1.0) << key;
    }
  }
  EXPECT_GE(collectors, 3) << metrics.Text();
  EXPECT_EQ(metrics.Sum("portwatch_build_info",
                        {{"version", PORTWATCH_VERSION}, {"revision", PORTWATCH_REVISION}}),
            1.0);
  // hostPID and the two services capabilities name another user's process.
  EXPECT_EQ(OtherUserListenerProcess(pod_.port), kOtherUserComm) << metrics.Text();
  // BPF and PERFMON attach bind_events' eBPF program, under a RuntimeDefault seccomp profile
  // that allows bpf() with CAP_BPF (containerd's, Docker's).
  EXPECT_EQ(BindEventsAvailable(pod_.port), 1.0) << metrics.Text();
  // SYS_ADMIN (setns, which the profile allows with it) and hostPID count the pod's sockets,
  // named from the mounted pod log directory.
  EXPECT_EQ(FakePodListeners(pod_.port), 1.0) << metrics.Text();

  // The exporter runs with exactly the pod's user and capabilities, no new privileges, seccomp,
  // on a read-only root.
  const std::string uid = pod_.run_as_user ? std::to_string(*pod_.run_as_user) : "65532";
  EXPECT_EQ(StatusField(pid, "Uid").substr(0, uid.size() + 1), uid + "\t");
  // CAP_SYS_ADMIN stays permitted only: the thread that enters a pod's namespace raises it.
  const uint64_t sys_admin = uint64_t{1} << CapabilityNumbers().at("SYS_ADMIN");
  EXPECT_EQ(std::stoull(StatusField(pid, "CapPrm"), nullptr, 16), CapabilityMask(pod_.cap_add));
  EXPECT_EQ(std::stoull(StatusField(pid, "CapEff"), nullptr, 16),
            CapabilityMask(pod_.cap_add) & ~sys_admin);
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
  std::ifstream mountinfo("/proc/" + std::to_string(pid) + "/mountinfo");
  bool root_read_only = false;
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point, options;
    fields >> id >> parent >> device >> root >> mount_point >> options;
    if (mount_point == "/") {
      root_read_only = options.rfind("ro", 0) == 0;
    }
  }
  EXPECT_TRUE(root_read_only);
}

TEST_F(ContainerTest, EveryPrivilegeOfThePodIsNeeded) {
  ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
  OtherUserListener other;
  ASSERT_TRUE(other.Ready());
  ASSERT_EQ(AllowEveryAttachPath(config_dir_ + "/portwatch.yaml"), "");
  // Each added capability, and hostPID, left out in turn, while the scrape still succeeds:
  // - services' (DAC_READ_SEARCH, SYS_PTRACE): they find the holders of sockets through /proc
  //   when the eBPF socket-owner walk cannot be used: left out together with BPF, the other
  //   user's process is no longer named; left out alone, the walk still names it.
  // - hostPID: the other user's process is not in the exporter's pid namespace: not named.
  // - BPF, PERFMON, a seccomp profile allowing bpf(): the eBPF programs cannot be loaded or
  //   attached (portwatch_bind_events_available 0); the other user's process is still named,
  //   through /proc.
  // - pods' (SYS_ADMIN): the fake pod's namespace cannot be entered (counted as failed), its
  //   listener is not counted; the rest works.
  // A capability of none fails the test: say here what it is for and how to see it missing.
  const std::set<std::string> kBindEventsCaps = {"BPF", "PERFMON"};
  const std::set<std::string> kServicesCaps = {"DAC_READ_SEARCH", "SYS_PTRACE"};
  const std::set<std::string> kPodsCaps = {"SYS_ADMIN"};
  enum class Loses {
    kBindEvents,
    kProcessNames,
    kPods,
    kProcessNamesAndBindEvents,
    kNothingVisible,  ///< the eBPF socket-owner walk stands in for it (its cost: the fallback)
  };
  struct Variant {
    std::string name;
    std::vector<std::string> flags;
    Loses loses;  ///< what leaving the privilege out costs
  };
  FakePod fake_pod(NodeDirectory(0));
  ASSERT_TRUE(fake_pod.Ready());
  std::vector<Variant> variants;
  for (const std::string& cap : pod_.cap_add) {
    ASSERT_TRUE(kBindEventsCaps.count(cap) || kServicesCaps.count(cap) || kPodsCaps.count(cap))
        << "the DaemonSet adds " << cap << ", which this test does not know how to check";
    if (kServicesCaps.count(cap) != 0) {
      variants.push_back({"without " + cap + " (the eBPF walk names the holder)", PodFlags({cap}),
                          Loses::kNothingVisible});
      variants.push_back({"without " + cap + " and BPF", PodFlags({cap, "BPF"}),
                          Loses::kProcessNamesAndBindEvents});
      continue;
    }
    variants.push_back({"without " + cap, PodFlags({cap}),
                        kBindEventsCaps.count(cap) != 0 ? Loses::kBindEvents : Loses::kPods});
  }
  if (pod_.host_pid) {
    variants.push_back({"without hostPID", PodFlags({}, false), Loses::kProcessNames});
  }
  // Under podman's (and CRI-O's) own default profile bpf() needs CAP_SYS_ADMIN, which the pod
  // has for pods: bind_events is unavailable there only without it (docs/deploy.md says so).
  if (pod_.seccomp == "RuntimeDefault") {
    variants.push_back({"with podman's default seccomp profile, without SYS_ADMIN",
                        PodFlags({"SYS_ADMIN"}, true, true), Loses::kBindEvents});
  }
  ASSERT_FALSE(variants.empty()) << "the DaemonSet asks for no privilege: drop this test";
  for (const auto& [name, flags, loses] : variants) {
    SCOPED_TRACE(name);
    ASSERT_GT(Start(flags, pod_.args, pod_.port, pod_.readiness_path), 0);
    const bool loses_bind_events =
        loses == Loses::kBindEvents || loses == Loses::kProcessNamesAndBindEvents;
    const bool loses_names =
        loses == Loses::kProcessNames || loses == Loses::kProcessNamesAndBindEvents;
    EXPECT_EQ(BindEventsAvailable(pod_.port), loses_bind_events ? 0.0 : 1.0);
    EXPECT_EQ(OtherUserListenerProcess(pod_.port), loses_names ? "unknown" : kOtherUserComm);
    const bool enters_pods =
        std::find(flags.begin(), flags.end(), "--cap-add=SYS_ADMIN") != flags.end();
    if (!enters_pods) {
      EXPECT_EQ(FakePodListeners(pod_.port), std::nullopt);
      EXPECT_GE(Exposition(HttpRequest(pod_.port, "GET", "/metrics").body)
                    .Value("portwatch_pod_network_namespaces", {{"state", "failed"}})
                    .value_or(0),
                1.0);
    } else if (loses == Loses::kBindEvents) {  // (entering pods needs SYS_PTRACE too)
      EXPECT_EQ(FakePodListeners(pod_.port), 1.0);
    }
    std::string ignored;
    Podman({"rm", "-f", "-t", "0", container_}, ignored);
    container_.clear();
  }
}

TEST_F(ContainerTest, ImageDefaultsRunUnprivileged) {
  // The image alone (podman run IMAGE): its own user 65532, no capability, no host PID namespace.
  // The socket, kernel_limits and netstat collectors work; other users' processes are not named.
  ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
  OtherUserListener other;
  ASSERT_TRUE(other.Ready());
  const pid_t pid =
      Start({"--network=host", "--cap-drop=ALL", "--read-only", "--security-opt=no-new-privileges"},
            {}, 9792, "/-/ready");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(StatusField(pid, "Uid").substr(0, 6), "65532\t");
  EXPECT_EQ(StatusField(pid, "CapEff"), "0000000000000000");
  const Exposition metrics(HttpRequest(9792, "GET", "/metrics").body);
  for (const char* collector : {"sockets", "kernel_limits", "netstat", "bind_events"}) {
    EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", collector}}), 1.0)
        << collector;
  }
  EXPECT_EQ(BindEventsAvailable(9792), 0.0);  // no CAP_BPF, no CAP_PERFMON
  EXPECT_EQ(metrics.Value("portwatch_sockets", {{"family", "ipv4"},
                                                {"port", std::to_string(kOtherUserPort)},
                                                {"protocol", "tcp"},
                                                {"state", "listen"}}),
            1.0);
  EXPECT_EQ(OtherUserListenerProcess(9792), "unknown");
}

}  // namespace
}  // namespace portwatch::testing
