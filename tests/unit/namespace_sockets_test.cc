// A namespace's sysctls are read once per kSettingFreshFor whoever asks: RecentSetting alone on a
// test clock, and NamespaceSockets in the test's own network namespace (entering it needs
// CAP_SYS_ADMIN, as the exporter's does: skipped without).
#include "collectors/netns/namespace_sockets.h"

#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "collectors/procfs/procfs.h"

namespace portwatch {
namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

constexpr TimePoint kStart{std::chrono::seconds(1000)};

TEST(RecentSettingTest, ReadsOnceWithinTheWindow) {
  RecentSetting recent;
  int reads = 0;
  const auto read = [&reads] {
    ++reads;
    return std::optional<std::string>("32768\t60999\n");
  };
  EXPECT_EQ(recent.Get(kStart, milliseconds(1000), read), "32768\t60999\n");
  EXPECT_EQ(recent.Get(kStart, milliseconds(1000), read), "32768\t60999\n");
  EXPECT_EQ(recent.Get(kStart + milliseconds(999), milliseconds(1000), read), "32768\t60999\n");
  EXPECT_EQ(reads, 1);
}

TEST(RecentSettingTest, AChangedValueShowsOnceTheWindowIsOver) {
  RecentSetting recent;
  std::string on_disk = "32768\t60999\n";
  const auto read = [&on_disk] { return std::optional<std::string>(on_disk); };
  EXPECT_EQ(recent.Get(kStart, milliseconds(1000), read), "32768\t60999\n");
  on_disk = "20000\t20999\n";
  EXPECT_EQ(recent.Get(kStart + milliseconds(500), milliseconds(1000), read), "32768\t60999\n");
  // The window counts from the read, not from the last question.
  EXPECT_EQ(recent.Get(kStart + milliseconds(1000), milliseconds(1000), read), "20000\t20999\n");
  on_disk = "40000\t40999\n";
  EXPECT_EQ(recent.Get(kStart + milliseconds(1999), milliseconds(1000), read), "20000\t20999\n");
  EXPECT_EQ(recent.Get(kStart + milliseconds(2000), milliseconds(1000), read), "40000\t40999\n");
}

TEST(RecentSettingTest, AnUnreadableSettingIsKeptForTheWindowToo) {
  RecentSetting recent;
  int reads = 0;
  std::optional<std::string> on_disk;  // e.g. tcp_ehash_entries before Linux 6.1
  const auto read = [&] {
    ++reads;
    return on_disk;
  };
  EXPECT_EQ(recent.Get(kStart, milliseconds(1000), read), std::nullopt);
  on_disk = "1024\n";
  EXPECT_EQ(recent.Get(kStart + milliseconds(10), milliseconds(1000), read), std::nullopt);
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(recent.Get(kStart + milliseconds(1000), milliseconds(1000), read), "1024\n");
  EXPECT_EQ(reads, 2);
}

TEST(RecentSettingTest, ZeroWindowReadsEveryTime) {
  RecentSetting recent;
  int reads = 0;
  const auto read = [&reads] {
    ++reads;
    return std::optional<std::string>(std::to_string(reads));
  };
  EXPECT_EQ(recent.Get(kStart, milliseconds(0), read), "1");
  EXPECT_EQ(recent.Get(kStart, milliseconds(0), read), "2");
}

/// NamespaceSockets that entered the test's own network namespace, on a clock the test moves.
class NamespaceSocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    own_ = ProcFs().NetworkNamespace("self");
    ASSERT_NE(own_, 0U);
    const std::map<uint64_t, std::string> failures =
        sockets_.Refresh({NetworkNamespace{own_, ::getpid(), std::nullopt}});
    if (!failures.empty()) {
      GTEST_SKIP() << "cannot enter a network namespace here: " << failures.begin()->second;
    }
    ASSERT_EQ(sockets_.Size(), 1U);
  }

  TimePoint now_ = kStart;
  NamespaceSockets sockets_{ProcFs(), [this] { return now_; }};
  uint64_t own_ = 0;
};

TEST_F(NamespaceSocketsTest, EachSettingIsReadOncePerWindowWhoeverAsks) {
  const std::optional<std::string> node_range =
      ProcFs().ReadFile("sys/net/ipv4/ip_local_port_range");
  ASSERT_TRUE(node_range.has_value());
  const std::optional<EphemeralRange> node_parsed = ParseEphemeralRange(*node_range);
  ASSERT_TRUE(node_parsed.has_value());
  const auto range_of_own = [this] {
    const std::optional<EphemeralRange> range = sockets_.EphemeralRangeOf(own_);
    return range ? std::optional(std::make_pair(range->first, range->last)) : std::nullopt;
  };
  const auto node_pair = std::optional(std::make_pair(node_parsed->first, node_parsed->last));
  // The sockets, services and kernel_limits collectors of one scrape, one after the other.
  EXPECT_EQ(sockets_.Setting(own_, NamespaceSetting::kPortRange), node_range);
  now_ += milliseconds(40);
  EXPECT_EQ(range_of_own(), node_pair);
  now_ += milliseconds(40);
  EXPECT_EQ(sockets_.Setting(own_, NamespaceSetting::kPortRange), node_range);
  EXPECT_EQ(sockets_.SettingReads(), 1U);

  // Another setting is a read of its own.
  EXPECT_EQ(sockets_.Setting(own_, NamespaceSetting::kMaxTimeWaitBuckets),
            ProcFs().ReadFile("sys/net/ipv4/tcp_max_tw_buckets"));
  EXPECT_EQ(sockets_.SettingReads(), 2U);

  // The next scrape reads again.
  now_ = kStart + kSettingFreshFor;
  EXPECT_EQ(range_of_own(), node_pair);
  EXPECT_EQ(sockets_.SettingReads(), 3U);
}

TEST(NamespaceSocketsNotEnteredTest, ANamespaceNotEnteredReadsNothing) {
  const NamespaceSockets sockets{ProcFs()};
  const uint64_t own = ProcFs().NetworkNamespace("self");
  EXPECT_EQ(sockets.Setting(own, NamespaceSetting::kPortRange), std::nullopt);
  EXPECT_FALSE(sockets.EphemeralRangeOf(own).has_value());
  EXPECT_FALSE(sockets.HasPrivateHash(own));
  EXPECT_EQ(sockets.SettingReads(), 0U);
}

TEST_F(NamespaceSocketsTest, ANamespaceEnteredAgainReadsAfresh) {
  ASSERT_TRUE(sockets_.Setting(own_, NamespaceSetting::kPortRange).has_value());
  EXPECT_EQ(sockets_.SettingReads(), 1U);
  // Gone at one Refresh, back (a new namespace with a reused inode) at the next: what was read
  // of the old one went with it.
  ASSERT_TRUE(sockets_.Refresh({}).empty());
  ASSERT_TRUE(sockets_.Refresh({NetworkNamespace{own_, ::getpid(), std::nullopt}}).empty());
  ASSERT_TRUE(sockets_.Setting(own_, NamespaceSetting::kPortRange).has_value());
  EXPECT_EQ(sockets_.SettingReads(), 2U);
}

}  // namespace
}  // namespace portwatch
