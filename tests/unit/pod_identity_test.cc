#include "collectors/pods/pod_identity.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {

// Readable failures; static so that no other test's printer can clash.
[[maybe_unused]] static void PrintTo(const CgroupContainer& container, std::ostream* out) {
  *out << "{pod_uid: \"" << container.pod_uid << "\", container_id: \"" << container.container_id
       << "\"}";
}

[[maybe_unused]] static void PrintTo(const PodName& name, std::ostream* out) {
  *out << "{namespace_name: \"" << name.namespace_name << "\", pod: \"" << name.pod << "\"}";
}

namespace {

const std::string kUid = "0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a57";
// The same uid as the systemd cgroup driver writes it into slice names.
const std::string kUidUnderscored = "0b5c9e2a_7f4d_4c1e_9a3b_2d6f8e1c4a57";
const std::string kOtherUid = "d41e7c3b-95a0-4f2e-8b6d-1c0a9e3f7b25";
const std::string kId = "0aac70fdddbd6db1e3d0d7a6a8c56a74da8b60591c5253bf36816bdef3cb35d2";
const std::string kOtherId = "90386b86959e2de855a16d7bce75ab2f66c38981a3e88648c1bd1d5998bc8220";
const std::string kHostId = "1b510bd8cba58d30d494cb88cb9d67db96ff3b32c314d25fe6eccaa6c9ac944b";
// What the kubelet gives a static pod whose manifest sets no uid: an md5 in hex.
const std::string kStaticUid = "a7975b1b7d3f968a6f2733d2e6124f37";

const CgroupContainer kInContainer{kUid, kId};
const CgroupContainer kInPodCgroup{kUid, ""};

std::optional<CgroupContainer> Parse(const std::string& text) { return ParseCgroupContainer(text); }

/// A cgroup v1 file (the usual controllers) with every hierarchy at `path`.
std::string V1File(const std::string& path) {
  std::string text;
  int id = 12;
  for (const char* controllers :
       {"perf_event", "freezer", "blkio", "cpu,cpuacct", "hugetlb", "net_cls,net_prio", "devices",
        "memory", "pids", "cpuset", "rdma", "name=systemd"}) {
    text += std::to_string(id--) + ":" + controllers + ":" + path + "\n";
  }
  return text;
}

// cgroupfs driver.

TEST(ParseCgroupContainerTest, CgroupfsGuaranteedV2) {
  EXPECT_EQ(Parse("0::/kubepods/pod" + kUid + "/" + kId + "\n"), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsBestEffortV2) {
  EXPECT_EQ(Parse("0::/kubepods/besteffort/pod" + kUid + "/" + kId + "\n"), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsBurstableV2) {
  EXPECT_EQ(Parse("0::/kubepods/burstable/pod" + kUid + "/" + kId + "\n"), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsGuaranteedV1) {
  EXPECT_EQ(Parse(V1File("/kubepods/pod" + kUid + "/" + kId)), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsBestEffortV1) {
  EXPECT_EQ(Parse(V1File("/kubepods/besteffort/pod" + kUid + "/" + kId)), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsBurstableV1) {
  EXPECT_EQ(Parse(V1File("/kubepods/burstable/pod" + kUid + "/" + kId)), kInContainer);
}

TEST(ParseCgroupContainerTest, CgroupfsWithCrioNamesTheContainerCgroupAfterTheRuntime) {
  EXPECT_EQ(Parse("0::/kubepods/burstable/pod" + kUid + "/crio-" + kId + "\n"), kInContainer);
}

TEST(ParseCgroupContainerTest, WithoutTrailingNewline) {
  EXPECT_EQ(Parse("0::/kubepods/pod" + kUid + "/" + kId), kInContainer);
}

// systemd driver.

TEST(ParseCgroupContainerTest, SystemdGuaranteedContainerd) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-pod" + kUidUnderscored + ".slice/cri-containerd-" +
                  kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, SystemdBestEffortContainerd) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                  kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, SystemdBurstableCrio) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kUidUnderscored + ".slice/crio-" + kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, SystemdDocker) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kUidUnderscored + ".slice/docker-" + kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, SystemdV1) {
  EXPECT_EQ(Parse(V1File("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                         kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope")),
            kInContainer);
}

TEST(ParseCgroupContainerTest, CrunSubCgroupBelowTheScopeIsIgnored) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kUidUnderscored + ".slice/crio-" + kId + ".scope/container\n"),
            kInContainer);
}

// conmon is in the pod's cgroup but in none of the container's namespaces: no container id.
TEST(ParseCgroupContainerTest, ConmonBelongsToThePodWithoutAContainer) {
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kUidUnderscored + ".slice/crio-conmon-" + kId + ".scope\n"),
            kInPodCgroup);
  EXPECT_EQ(Parse("0::/kubepods/burstable/pod" + kUid + "/crio-conmon-" + kId + "\n"),
            kInPodCgroup);
}

// A process in the pod's own cgroup (the pause process on some setups).
TEST(ParseCgroupContainerTest, PodCgroupItselfHasNoContainer) {
  EXPECT_EQ(Parse("0::/kubepods/besteffort/pod" + kUid + "\n"), kInPodCgroup);
  EXPECT_EQ(Parse("0::/kubepods/pod" + kUid + "/\n"), kInPodCgroup);
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kUidUnderscored + ".slice\n"),
            kInPodCgroup);
}

// Prefixes before kubepods.

TEST(ParseCgroupContainerTest, KindNodeKubeletSlicePrefix) {
  EXPECT_EQ(Parse("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                  "kubelet-kubepods-besteffort-pod" +
                  kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope\n"),
            kInContainer);
  EXPECT_EQ(Parse("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" +
                  kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, NodeInADockerContainerPrefix) {
  EXPECT_EQ(Parse("0::/docker/" + kHostId + "/kubepods/besteffort/pod" + kUid + "/" + kId + "\n"),
            kInContainer);
  EXPECT_EQ(Parse(V1File("/docker/" + kHostId + "/kubepods/pod" + kUid + "/" + kId)), kInContainer);
}

// Read from inside a cgroup namespace, another cgroup's path climbs to the common ancestor.
TEST(ParseCgroupContainerTest, PathsRelativeToACgroupNamespace) {
  EXPECT_EQ(Parse("0::/../../kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidUnderscored +
                  ".slice/cri-containerd-" + kId + ".scope\n"),
            kInContainer);
  EXPECT_EQ(Parse("0::/../../../besteffort/pod" + kUid + "/" + kId + "\n"), kInContainer);
  EXPECT_EQ(Parse("0::/../../../pod" + kUid + "/" + kId + "\n"), kInContainer);
}

TEST(ParseCgroupContainerTest, NestedPodsGiveTheInnermost) {
  EXPECT_EQ(Parse("0::/kubepods/pod" + kOtherUid + "/" + kOtherId + "/kubepods/burstable/pod" +
                  kUid + "/" + kId + "\n"),
            kInContainer);
}

// Hybrid hosts: v1 hierarchies plus the v2 line.

TEST(ParseCgroupContainerTest, HybridPrefersTheLineThatNamesAPod) {
  const std::string v1 = V1File("/kubepods/burstable/pod" + kUid + "/" + kId);
  EXPECT_EQ(Parse(v1 + "0::/\n"), kInContainer);
  EXPECT_EQ(Parse("0::/\n" + v1), kInContainer);
  EXPECT_EQ(Parse("1:name=systemd:/init.scope\n0::/kubepods.slice/kubepods-pod" + kUidUnderscored +
                  ".slice/cri-containerd-" + kId + ".scope\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, HybridPrefersALineWithAContainerOverOneWithThePodOnly) {
  EXPECT_EQ(Parse("3:cpuset:/kubepods/pod" + kUid + "\n2:memory:/kubepods/pod" + kUid + "/" + kId +
                  "\n0::/\n"),
            kInContainer);
}

TEST(ParseCgroupContainerTest, HybridSkipsAMalformedLineForAGoodOne) {
  EXPECT_EQ(Parse("3:cpuset:/kubepods/pod" + kUid + "/not-an-id\n2:memory:/kubepods/pod" + kUid +
                  "/" + kId + "\n"),
            kInContainer);
}

// Spellings.

TEST(ParseCgroupContainerTest, StaticPodUidWithoutDashes) {
  EXPECT_EQ(Parse("0::/kubepods/burstable/pod" + kStaticUid + "/" + kId + "\n"),
            (CgroupContainer{kStaticUid, kId}));
  EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  kStaticUid + ".slice/cri-containerd-" + kId + ".scope\n"),
            (CgroupContainer{kStaticUid, kId}));
}

TEST(ParseCgroupContainerTest, UpperCaseHexIsLowered) {
  EXPECT_EQ(Parse("0::/kubepods/pod0B5C9E2A-7F4D-4C1E-9A3B-2D6F8E1C4A57/"
                  "0AAC70FDDDBD6DB1E3D0D7A6A8C56A74DA8B60591C5253BF36816BDEF3CB35D2\n"),
            kInContainer);
}

// cgroup v2 shows the removed cgroup of a process that outlived it (a zombie) with this mark.
TEST(ParseCgroupContainerTest, DeletedCgroupOfAZombie) {
  EXPECT_EQ(Parse("0::/kubepods/besteffort/pod" + kUid + "/" + kId + " (deleted)\n"), kInContainer);
}

// Not in a pod.

TEST(ParseCgroupContainerTest, ProcessesOutsidePodsGiveNothing) {
  for (const std::string& text :
       {std::string("0::/init.scope\n"), std::string("0::/system.slice/containerd.service\n"),
        std::string("0::/system.slice/kubelet.service\n"),
        std::string("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
                    "app-org.gnome.Terminal.slice/vte-spawn-1.scope\n"),
        std::string("0::/user.slice/user-0.slice/session-3.scope\n"), std::string("0::/\n"),
        V1File("/"),
        V1File("/system.slice/containerd.service") + "0::/system.slice/containerd.service\n",
        std::string("0::/docker/" + kHostId + "\n"),
        // kubepods and QoS cgroups themselves are no pod
        std::string("0::/kubepods\n"), std::string("0::/kubepods/besteffort\n"),
        std::string("0::/kubepods.slice\n"),
        std::string("0::/kubepods.slice/kubepods-burstable.slice\n")}) {
    EXPECT_EQ(Parse(text), std::nullopt) << text;
  }
}

TEST(ParseCgroupContainerTest, PodLookalikesOutsideKubepodsGiveNothing) {
  EXPECT_EQ(Parse("0::/system.slice/pod" + kUid + "/" + kId + "\n"), std::nullopt);
  EXPECT_EQ(Parse("0::/pod" + kUid + "/" + kId + "\n"), std::nullopt);
  EXPECT_EQ(
      Parse("0::/system.slice/system-pod" + kUidUnderscored + ".slice/crio-" + kId + ".scope\n"),
      std::nullopt);
  EXPECT_EQ(Parse("0::/machine.slice/libpod-pod" + kUidUnderscored + ".slice\n"), std::nullopt);
}

// Malformed.

TEST(ParseCgroupContainerTest, MalformedTextGivesNothing) {
  for (const std::string& text :
       {std::string(""), std::string("\n"), std::string("\n\n\n"), std::string("garbage"),
        std::string("0:"), std::string("::"), std::string(":::"), std::string("0::"),
        std::string(std::string("\0\0\0", 3)), std::string("\xff\xfe:\x80:/\x81"),
        // no leading slash
        "0::kubepods/pod" + kUid + "/" + kId + "\n",
        // only one colon
        "0:/kubepods/pod" + kUid + "/" + kId + "\n"}) {
    EXPECT_EQ(Parse(text), std::nullopt) << text;
  }
}

TEST(ParseCgroupContainerTest, PodUidThatIsNoUidGivesNothing) {
  for (const std::string& uid : {
           std::string(""), std::string("1234"),
           std::string("0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a5"),    // one digit short
           std::string("0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a577"),  // one digit long
           std::string("0b5c9e2g-7f4d-4c1e-9a3b-2d6f8e1c4a57"),   // not hex
           std::string("0b5c9e2a7-f4d-4c1e-9a3b-2d6f8e1c4a57"),   // dash misplaced
           std::string("0b5c9e2a-7f4d_4c1e-9a3b-2d6f8e1c4a57"),   // mixed separators
           std::string("0b5c9e2a:7f4d:4c1e:9a3b:2d6f8e1c4a57"),   // other separator
           std::string("0b5c9e2a+7f4d+4c1e+9a3b+2d6f8e1c4a57"),
           std::string("a7975b1b7d3f968a6f2733d2e6124f3g"),  // static-pod length, not hex
       }) {
    EXPECT_EQ(Parse("0::/kubepods/besteffort/pod" + uid + "/" + kId + "\n"), std::nullopt) << uid;
    std::string underscored = uid;
    if (uid.find('_') == std::string::npos) {  // keep the mixed spelling mixed
      for (char& c : underscored) {
        c = c == '-' ? '_' : c;
      }
    }
    EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                    underscored + ".slice/cri-containerd-" + kId + ".scope\n"),
              std::nullopt)
        << underscored;
  }
}

TEST(ParseCgroupContainerTest, ContainerIdThatIsNoIdGivesNothing) {
  const std::string not_hex = "0aac70fdddbd6db1e3d0d7a6a8c56a74da8b60591c5253bf36816bdef3cb35dz";
  for (const std::string& id : {
           not_hex,
           kId.substr(1),                      // 63 digits
           kId + "0",                          // 65 digits
           std::string(64, ' '),               // 64 characters, not hex
           "-" + kId.substr(1),                // a dash but no runtime
           "cri-containerd-" + kId.substr(1),  // runtime, 63 digits
           "cri-containerd-" + not_hex,        // runtime, not hex
           "cri-containerd_" + kId,            // runtime without its dash
           "CRI-containerd-" + kId,            // runtime in capitals
           std::string("pause"),               // a name
       }) {
    EXPECT_EQ(Parse("0::/kubepods/burstable/pod" + kUid + "/" + id + "\n"), std::nullopt) << id;
    EXPECT_EQ(Parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                    kUidUnderscored + ".slice/" + id + ".scope\n"),
              std::nullopt)
        << id;
  }
}

TEST(ParseCgroupContainerTest, HugeInputsGiveNothingQuickly) {
  const size_t size = size_t{100} * 1024;
  std::string repeated_kubepods;
  while (repeated_kubepods.size() < size) {
    repeated_kubepods += "/kubepods";
  }
  std::string repeated_pod_slices;
  while (repeated_pod_slices.size() < size) {
    repeated_pod_slices += "/kubepods-pod.slice";
  }
  for (const std::string& text : {
           std::string(size, 'a'),
           "0::/" + std::string(size, 'a') + "\n",
           "0::" + std::string(size, '/') + "\n",
           "0::" + std::string(size, ':') + "\n",
           std::string(size, '\n'),
           "0::" + repeated_kubepods + "\n",
           "0::" + repeated_pod_slices + "\n",
           "0::/kubepods/pod" + std::string(size, 'a') + "/" + kId + "\n",
           "0::/kubepods/pod" + kUid + "/" + std::string(size, 'a') + "\n",
           "0::/kubepods/pod" + kUid + "/cri-" + std::string(size, '-') + kId + "\n",
       }) {
    EXPECT_EQ(Parse(text), std::nullopt) << text.substr(0, 40);
  }
  // A good line after a huge bad one is still found.
  EXPECT_EQ(Parse("0::/" + std::string(size, 'x') + "\n1:cpu:/kubepods/pod" + kUid + "/" + kId),
            kInContainer);
}

TEST(CanonicalPodUidTest, AcceptsTheSpellingsOfAUid) {
  EXPECT_EQ(CanonicalPodUid(kUid), kUid);
  EXPECT_EQ(CanonicalPodUid(kUidUnderscored), kUid);
  EXPECT_EQ(CanonicalPodUid("0B5C9E2A_7F4D_4C1E_9A3B_2D6F8E1C4A57"), kUid);
  EXPECT_EQ(CanonicalPodUid(kStaticUid), kStaticUid);
  EXPECT_EQ(CanonicalPodUid("A7975B1B7D3F968A6F2733D2E6124F37"), kStaticUid);
}

TEST(CanonicalPodUidTest, RejectsWhatIsNoUid) {
  for (const char* uid :
       {"", "-", "0b5c9e2a-7f4d-4c1e-9a3b", "0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a57 ",
        " 0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a57", "0b5c9e2a_7f4d-4c1e-9a3b-2d6f8e1c4a57",
        "0b5c9e2a-7f4d-4c1e-9a3b-2d6f8e1c4a5x", "0b5c9e2a07f4d04c1e09a3b02d6f8e1c4a57",
        "a7975b1b7d3f968a6f2733d2e6124f3", "a7975b1b-7d3f968a6f2733d2e6124f37"}) {
    EXPECT_EQ(CanonicalPodUid(uid), std::nullopt) << uid;
  }
}

// PodDirectory from names.

TEST(PodDirectoryTest, FindsPodsByUid) {
  const PodDirectory pods({"kube-system_coredns-5d78c9869d-x7k2p_" + kUid,
                           "monitoring_prometheus-k8s-0_" + kOtherUid,
                           "kube-system_etcd-control-plane.example.com_" + kStaticUid});
  EXPECT_EQ(pods.Size(), 3U);
  EXPECT_EQ(pods.Skipped(), 0U);
  EXPECT_EQ(pods.Error(), "");
  EXPECT_EQ(pods.Find(kUid), (PodName{"kube-system", "coredns-5d78c9869d-x7k2p"}));
  EXPECT_EQ(pods.Find(kOtherUid), (PodName{"monitoring", "prometheus-k8s-0"}));
  EXPECT_EQ(pods.Find(kStaticUid), (PodName{"kube-system", "etcd-control-plane.example.com"}));
}

TEST(PodDirectoryTest, FindAcceptsEverySpellingOfTheUid) {
  const PodDirectory pods({"default_web-0_" + kUid});
  EXPECT_EQ(pods.Find(kUidUnderscored), (PodName{"default", "web-0"}));
  EXPECT_EQ(pods.Find("0B5C9E2A-7F4D-4C1E-9A3B-2D6F8E1C4A57"), (PodName{"default", "web-0"}));
}

TEST(PodDirectoryTest, UnknownOrMalformedUidFindsNothing) {
  const PodDirectory pods({"default_web-0_" + kUid});
  EXPECT_EQ(pods.Find(kOtherUid), std::nullopt);
  EXPECT_EQ(pods.Find(""), std::nullopt);
  EXPECT_EQ(pods.Find("web-0"), std::nullopt);
  EXPECT_EQ(pods.Find("default_web-0_" + kUid), std::nullopt);
}

TEST(PodDirectoryTest, UidEntryNamesAreCanonicalized) {
  const PodDirectory pods({"default_web-0_0B5C9E2A-7F4D-4C1E-9A3B-2D6F8E1C4A57"});
  EXPECT_EQ(pods.Find(kUid), (PodName{"default", "web-0"}));
}

TEST(PodDirectoryTest, SkipsAndCountsNamesThatDoNotParse) {
  const PodDirectory pods({
      "default_web-0_" + kUid,
      "garbage",
      "default_web-0",                                       // no uid
      "default_web-0_not-a-uid",                             // uid that is no uid
      "_web-0_" + kOtherUid,                                 // no namespace
      "default__" + kOtherUid,                               // no pod name
      "Default_web-0_" + kOtherUid,                          // namespace is no DNS label
      "default_web_0_" + kOtherUid,                          // underscore inside the pod name
      "default.ns_web-0_" + kOtherUid,                       // a dot in the namespace
      std::string(64, 'n') + "_web-0_" + kOtherUid,          // namespace too long
      "default_" + std::string(254, 'p') + "_" + kOtherUid,  // pod name too long
      "",
      "default_web-0_" + kUid + ".log",
  });
  EXPECT_EQ(pods.Size(), 1U);
  EXPECT_EQ(pods.Skipped(), 12U);
  EXPECT_EQ(pods.Find(kUid), (PodName{"default", "web-0"}));
  EXPECT_EQ(pods.Find(kOtherUid), std::nullopt);
}

TEST(PodDirectoryTest, LongestValidNamesAreKept) {
  const std::string namespace_name(63, 'n');
  const std::string pod(253, 'p');
  const PodDirectory pods({namespace_name + "_" + pod + "_" + kUid});
  EXPECT_EQ(pods.Skipped(), 0U);
  EXPECT_EQ(pods.Find(kUid), (PodName{namespace_name, pod}));
}

// Two names for one uid: the first in sorted order wins whatever the listing's order.
TEST(PodDirectoryTest, SecondNameForAUidIsSkipped) {
  for (const std::vector<std::string>& names :
       {std::vector<std::string>{"a_one_" + kUid, "b_two_" + kUid},
        std::vector<std::string>{"b_two_" + kUid, "a_one_" + kUid}}) {
    const PodDirectory pods(names);
    EXPECT_EQ(pods.Size(), 1U);
    EXPECT_EQ(pods.Skipped(), 1U);
    EXPECT_EQ(pods.Find(kUid), (PodName{"a", "one"}));
  }
}

TEST(PodDirectoryTest, DefaultConstructedIsEmpty) {
  const PodDirectory pods;
  EXPECT_EQ(pods.Size(), 0U);
  EXPECT_EQ(pods.Skipped(), 0U);
  EXPECT_EQ(pods.Error(), "");
  EXPECT_EQ(pods.Find(kUid), std::nullopt);
}

// PodDirectory::Read on a real directory.

/// A fake /var/log/pods in a fresh temporary directory, removed afterwards.
class PodDirectoryReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/portwatch-pods-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override {
    if (!root_.empty()) {
      std::filesystem::permissions(root_, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add);
      std::filesystem::remove_all(root_);
    }
  }

  void AddDirectory(const std::string& name) {
    ASSERT_TRUE(std::filesystem::create_directory(root_ + "/" + name)) << name;
  }

  std::string root_;
};

TEST_F(PodDirectoryReadTest, ReadsTheEntries) {
  AddDirectory("kube-system_coredns-5d78c9869d-x7k2p_" + kUid);
  AddDirectory("monitoring_prometheus-k8s-0_" + kOtherUid);
  AddDirectory("kube-system_kube-apiserver-node-1_" + kStaticUid);
  AddDirectory("lost+found");
  std::ofstream(root_ + "/README") << "not a pod\n";

  const PodDirectory pods = PodDirectory::Read(root_);
  EXPECT_EQ(pods.Error(), "");
  EXPECT_EQ(pods.Size(), 3U);
  EXPECT_EQ(pods.Skipped(), 2U);  // lost+found, README; never "." and ".."
  EXPECT_EQ(pods.Find(kUid), (PodName{"kube-system", "coredns-5d78c9869d-x7k2p"}));
  EXPECT_EQ(pods.Find(kOtherUid), (PodName{"monitoring", "prometheus-k8s-0"}));
  EXPECT_EQ(pods.Find(kStaticUid), (PodName{"kube-system", "kube-apiserver-node-1"}));
}

TEST_F(PodDirectoryReadTest, EmptyDirectoryIsNoError) {
  const PodDirectory pods = PodDirectory::Read(root_);
  EXPECT_EQ(pods.Error(), "");
  EXPECT_EQ(pods.Size(), 0U);
  EXPECT_EQ(pods.Skipped(), 0U);
}

TEST_F(PodDirectoryReadTest, MissingDirectoryGivesAnEmptyIndexAndTheReason) {
  const std::string missing = root_ + "/missing";
  const PodDirectory pods = PodDirectory::Read(missing);
  EXPECT_EQ(pods.Error(), missing + ": No such file or directory");
  EXPECT_EQ(pods.Size(), 0U);
  EXPECT_EQ(pods.Skipped(), 0U);
  EXPECT_EQ(pods.Find(kUid), std::nullopt);
}

TEST_F(PodDirectoryReadTest, FileInsteadOfADirectoryGivesTheReason) {
  const std::string file = root_ + "/pods";
  std::ofstream(file) << "";
  const PodDirectory pods = PodDirectory::Read(file);
  EXPECT_EQ(pods.Error(), file + ": Not a directory");
  EXPECT_EQ(pods.Size(), 0U);
}

TEST_F(PodDirectoryReadTest, UnreadableDirectoryGivesTheReason) {
  AddDirectory("default_web-0_" + kUid);
  ASSERT_EQ(::chmod(root_.c_str(), 0), 0);
  // Root reads any directory: read as nobody, in a child, when the test runs as root.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(2);
    }
    const PodDirectory pods = PodDirectory::Read(root_);
    ::_exit(pods.Error() == root_ + ": Permission denied" && pods.Size() == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace portwatch
