#include "collectors/services/service_table.h"

#include <memory>
#include <string>

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
    std::string error;
    owner.cmdline_regex = CompileCmdlineRegex(cmdline, error);
    EXPECT_NE(owner.cmdline_regex, nullptr) << cmdline << ": " << error;
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

}  // namespace
}  // namespace portwatch
