#include "collectors/service_table.h"

#include <memory>
#include <regex>
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
    owner.cmdline_regex = std::make_shared<const std::regex>(cmdline);
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
