#include "collectors/procfs/procfs.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

const std::string kProcFixture = std::string(PORTWATCH_FIXTURES) + "/proc";
const std::string kIntegerFixtures = std::string(PORTWATCH_FIXTURES) + "/procfs";

TEST(ParseEphemeralRangeTest, ParsesTheKernelFormat) {
  std::optional<EphemeralRange> range = ParseEphemeralRange("32768\t60999\n");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->first, 32768);
  EXPECT_EQ(range->last, 60999);
  EXPECT_EQ(range->Size(), 28232U);
}

TEST(ParseEphemeralRangeTest, AcceptsSpacesAndASinglePort) {
  std::optional<EphemeralRange> range = ParseEphemeralRange("  40000   40999 ");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->first, 40000);
  EXPECT_EQ(range->last, 40999);

  range = ParseEphemeralRange("1024 1024");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->first, 1024);
  EXPECT_EQ(range->last, 1024);
  EXPECT_EQ(range->Size(), 1U);

  range = ParseEphemeralRange("0 65535");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->Size(), 65536U);
}

TEST(ParseEphemeralRangeTest, RejectsReversedRange) {
  EXPECT_EQ(ParseEphemeralRange("60999\t32768\n"), std::nullopt);
  EXPECT_EQ(ParseEphemeralRange("40001 40000"), std::nullopt);
}

TEST(ParseEphemeralRangeTest, RejectsMalformedText) {
  for (const char* text :
       {"", "\n", "32768", "32768 60999 1", "a b", "32768 b", "-1 5", "70000 70001", "32768 65536",
        "32768.0 60999", "0x8000 60999", "+32768 60999", "32768,60999"}) {
    EXPECT_EQ(ParseEphemeralRange(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(EphemeralRangeTest, ContainsIsInclusive) {
  const EphemeralRange range{40000, 40999};
  EXPECT_FALSE(range.Contains(39999));
  EXPECT_TRUE(range.Contains(40000));
  EXPECT_TRUE(range.Contains(40999));
  EXPECT_FALSE(range.Contains(41000));
  EXPECT_FALSE(range.Contains(40000 + 65536));  // no 16-bit wrap-around
  EXPECT_EQ(range.Size(), 1000U);
  const EphemeralRange defaults;
  EXPECT_EQ(defaults.first, 32768);
  EXPECT_EQ(defaults.last, 60999);
}

TEST(ParseNetstatTest, ParsesACapturedProcNetNetstat) {
  std::optional<std::string> text = ProcFs(kProcFixture).ReadFile("net/netstat");
  ASSERT_TRUE(text.has_value());
  auto sections = ParseNetstat(*text);
  ASSERT_EQ(sections.size(), 3U);
  ASSERT_EQ(sections.count("TcpExt"), 1U);
  ASSERT_EQ(sections.count("IpExt"), 1U);
  ASSERT_EQ(sections.count("MPTcpExt"), 1U);
  const std::map<std::string, uint64_t>& tcp_ext = sections["TcpExt"];
  const std::map<std::string, uint64_t>& ip_ext = sections["IpExt"];
  EXPECT_EQ(tcp_ext.size(), 135U);
  EXPECT_EQ(ip_ext.size(), 18U);
  EXPECT_EQ(sections["MPTcpExt"].size(), 76U);

  // The four counters the netstat collector exports.
  EXPECT_EQ(tcp_ext.at("TW"), 19U);
  EXPECT_EQ(tcp_ext.at("TCPTimeWaitOverflow"), 0U);
  EXPECT_EQ(tcp_ext.at("ListenOverflows"), 0U);
  EXPECT_EQ(tcp_ext.at("ListenDrops"), 0U);
  // Others, first, middle and last of their lines.
  EXPECT_EQ(tcp_ext.at("SyncookiesSent"), 0U);
  EXPECT_EQ(tcp_ext.at("TCPPureAcks"), 43U);
  EXPECT_EQ(tcp_ext.at("TCPHPAcks"), 31U);
  EXPECT_EQ(tcp_ext.at("TCPRcvCoalesce"), 721U);
  EXPECT_EQ(tcp_ext.at("TCPOrigDataSent"), 106U);
  EXPECT_EQ(tcp_ext.at("TCPDelivered"), 126U);
  EXPECT_EQ(tcp_ext.at("TCPAODroppedIcmps"), 0U);
  EXPECT_EQ(ip_ext.at("InOctets"), 41623821U);
  EXPECT_EQ(ip_ext.at("OutOctets"), 56734U);
  EXPECT_EQ(ip_ext.at("InNoECTPkts"), 1100U);
  EXPECT_EQ(ip_ext.at("ReasmOverlaps"), 0U);
}

TEST(ParseNetstatTest, SkipsPairsWhoseHeaderAndValuesDisagree) {
  const std::string text =
      "TcpExt: A B C\n"
      "TcpExt: 1 2\n"  // one value short: the pair is skipped
      "IpExt: X\n"
      "Other: 5\n"  // prefixes differ
      "NoColon X\n"
      "NoColon 5\n"  // a prefix must end in ':'
      "Good: Y Z\n"
      "Good: 7 18446744073709551615\n"
      "Big: Q R\n"
      "Big: 18446744073709551616 -1\n"  // values that are not u64 are left out
      "Last: W\n";                      // no value line
  auto sections = ParseNetstat(text);
  const std::map<std::string, std::map<std::string, uint64_t>> expected = {
      {"Good", {{"Y", 7}, {"Z", 18446744073709551615ULL}}},
  };
  EXPECT_EQ(sections, expected);
}

TEST(ParseNetstatTest, EmptyText) { EXPECT_TRUE(ParseNetstat("").empty()); }

TEST(ProcFsTest, ReadsFixtureSysctls) {
  const ProcFs procfs(kProcFixture);
  EXPECT_EQ(procfs.Root(), kProcFixture);
  EXPECT_EQ(procfs.ReadInteger("sys/net/ipv4/tcp_max_tw_buckets"), 131072);
  EXPECT_EQ(procfs.ReadFile("sys/net/ipv4/ip_local_port_range"), "40000\t40999\n");
  EXPECT_EQ(procfs.ReadInteger("sys/net/ipv4/ip_local_port_range"), std::nullopt);
}

TEST(ProcFsTest, MissingFiles) {
  const ProcFs procfs(kProcFixture);
  EXPECT_EQ(procfs.ReadFile("sys/net/ipv4/no_such_sysctl"), std::nullopt);
  EXPECT_EQ(procfs.ReadInteger("sys/net/ipv4/no_such_sysctl"), std::nullopt);
  EXPECT_EQ(ProcFs("/nonexistent/portwatch").ReadFile("net/netstat"), std::nullopt);
}

TEST(ProcFsTest, ReadIntegerAcceptsOneDecimalIntegerWithWhitespace) {
  const ProcFs procfs(kIntegerFixtures);
  EXPECT_EQ(procfs.ReadInteger("integer_negative"), -5);
  EXPECT_EQ(procfs.ReadInteger("integer_padded"), 42);
  EXPECT_EQ(procfs.ReadInteger("integer_max"), INT64_MAX);
}

TEST(ProcFsTest, ReadIntegerRejectsAnythingElse) {
  const ProcFs procfs(kIntegerFixtures);
  for (const char* name : {"integer_empty", "integer_two_words", "integer_text", "integer_overflow",
                           "integer_plus", "integer_hex"}) {
    EXPECT_EQ(procfs.ReadInteger(name), std::nullopt) << name;
  }
}

TEST(ProcFsTest, ReadFileReturnsExactBytes) {
  const ProcFs procfs(kIntegerFixtures);
  EXPECT_EQ(procfs.ReadFile("integer_padded"), "  42 \n\n");
  EXPECT_EQ(procfs.ReadFile("integer_empty"), "");
}

/// A ProcFs rooted at a fresh temporary directory, removed afterwards.
class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/portwatch-readfile-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override {
    if (!root_.empty()) {
      std::filesystem::remove_all(root_);
    }
  }
  void Write(const std::string& name, const std::string& contents) const {
    std::ofstream(root_ + "/" + name, std::ios::binary) << contents;
  }

  std::string root_;
};

TEST_F(ReadFileTest, SmallFileExactly) {
  using namespace std::string_literals;
  Write("comm", "nginx\n");
  Write("cmdline", "nginx: master\0-g\0daemon off;\0"s);
  EXPECT_EQ(ProcFs(root_).ReadFile("comm"), "nginx\n");
  EXPECT_EQ(ProcFs(root_).ReadFile("cmdline"), "nginx: master\0-g\0daemon off;\0"s);
}

TEST_F(ReadFileTest, FileOfManyReadsComesBackWhole) {
  // 200 KB and a few bytes: many times what one read() asks for, and not a multiple of it.
  std::string contents;
  for (size_t i = 0; contents.size() < 200 * 1024 + 7; ++i) {
    contents += std::to_string(i) + (i % 7 == 0 ? '\0' : ' ');
  }
  Write("cmdline", contents);
  const std::optional<std::string> read = ProcFs(root_).ReadFile("cmdline");
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->size(), contents.size());
  EXPECT_EQ(*read, contents);
}

TEST_F(ReadFileTest, MissingFileIsNullopt) {
  EXPECT_EQ(ProcFs(root_).ReadFile("no_such_file"), std::nullopt);
  EXPECT_EQ(ProcFs(root_).ReadFile("no_such_dir/comm"), std::nullopt);
}

TEST_F(ReadFileTest, DirectoryReadsAsEmpty) {
  // As std::ifstream read it (ReadFile used one before): it opens, and holds no text.
  std::filesystem::create_directories(root_ + "/42/fd");
  EXPECT_EQ(ProcFs(root_).ReadFile("42"), "");
  EXPECT_EQ(ProcFs(root_).ReadFile("42/fd"), "");
}

TEST(ProcFsTest, ReadFailureIsNullopt) {
  // /proc/self/mem opens, but reading at offset 0 (never mapped) fails with EIO.
  EXPECT_EQ(ProcFs().ReadFile("self/mem"), std::nullopt);
}

TEST(ProcFsTest, ReadsTheRealProcAsStdIfstreamDoes) {
  // Files that do not change while the test runs; /proc reports a size of 0 for each.
  for (const char* file : {"self/comm", "self/cmdline", "sys/kernel/osrelease"}) {
    std::ifstream in(std::string("/proc/") + file, std::ios::binary);
    ASSERT_TRUE(in) << file;
    const std::string expected{std::istreambuf_iterator<char>(in), {}};
    EXPECT_FALSE(expected.empty()) << file;
    EXPECT_EQ(ProcFs().ReadFile(file), expected) << file;
  }
}

TEST(ParsePortListTest, ReservedPortsSyntax) {
  EXPECT_EQ(ParsePortList("8080,9000-9003\n"),
            (std::vector<uint16_t>{8080, 9000, 9001, 9002, 9003}));
  EXPECT_EQ(ParsePortList("22"), (std::vector<uint16_t>{22}));
  EXPECT_EQ(ParsePortList("0-2,65535"), (std::vector<uint16_t>{0, 1, 2, 65535}));
  EXPECT_EQ(ParsePortList("7-7"), (std::vector<uint16_t>{7}));
  // The kernel writes an empty line when nothing is reserved.
  EXPECT_EQ(ParsePortList("\n"), std::vector<uint16_t>{});
  EXPECT_EQ(ParsePortList(""), std::vector<uint16_t>{});
  EXPECT_EQ(ParsePortList("0-65535")->size(), 65536U);
}

TEST(ParsePortListTest, OverlappingItemsListEachPortOnceInOrder) {
  // The sysctl is a bitmap (tests/fuzz found the duplicates, regressions/sysctl).
  EXPECT_EQ(ParsePortList("9000-9002,80,9001,80-80\n"),
            (std::vector<uint16_t>{80, 9000, 9001, 9002}));
  const std::string everything_twice = "0-65535,0-65535";
  EXPECT_EQ(ParsePortList(everything_twice)->size(), 65536U);
}

TEST(ParsePortListTest, RejectsMalformedLists) {
  for (const char* text :
       {"a", "1,,2", "5-3", "1-2-3", "70000", "1-70000", "1, 2", "1 2", "-5", "5-", ",1"}) {
    EXPECT_EQ(ParsePortList(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(KernelAtLeastTest, ComparesMajorAndMinor) {
  EXPECT_TRUE(KernelAtLeast("6.18.44-fc-v669", 6, 10));
  EXPECT_TRUE(KernelAtLeast("6.10.0", 6, 10));
  EXPECT_TRUE(KernelAtLeast("6.10", 6, 10));
  EXPECT_TRUE(KernelAtLeast("7.0.1", 6, 10));
  EXPECT_FALSE(KernelAtLeast("6.9.12-amd64", 6, 10));
  EXPECT_FALSE(KernelAtLeast("5.15.0-91-generic", 6, 10));
  EXPECT_FALSE(KernelAtLeast("6.1.0-13-amd64\n", 6, 10));
}

TEST(KernelAtLeastTest, UnreadableReleaseIsNotNewEnough) {
  for (const char* release : {"", "6", "6-10", "six.ten", "\n"}) {
    EXPECT_FALSE(KernelAtLeast(release, 6, 10)) << '"' << release << '"';
  }
  EXPECT_TRUE(KernelAtLeast("6.10.0", 0, 0));
}

}  // namespace
}  // namespace portwatch
