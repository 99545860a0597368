#include "exporter/basic_auth.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

// bcrypt hashes (cost 4, made with libcrypt's crypt_gensalt) of "scrape-secret" and "other".
constexpr const char* kScrapeSecret =
    "$2y$04$jtS1.qPrJwMInQsUrOitxeikMJZ0/Ejkz2ReX6v1ObrmDFY9KyZ5O";
constexpr const char* kOther = "$2y$04$Hvg0Mfg4OJhaWpx5/BKr1e8qvDNuryE4J5z8zoOQMow.Io0UuAEVK";

TEST(BasicAuthTest, DecodesTheHeader) {
  std::string user;
  std::string password;
  ASSERT_TRUE(DecodeBasicAuthorization("Basic cHJvbTpzY3JhcGUtc2VjcmV0", user, password));
  EXPECT_EQ(user, "prom");
  EXPECT_EQ(password, "scrape-secret");
  ASSERT_TRUE(DecodeBasicAuthorization("basic  YTpiOmM= ", user, password));  // any case, spaces
  EXPECT_EQ(user, "a");
  EXPECT_EQ(password, "b:c");  // only the first colon separates
  ASSERT_TRUE(DecodeBasicAuthorization("Basic YTo=", user, password));
  EXPECT_EQ(password, "");
}

TEST(BasicAuthTest, RefusesMalformedHeaders) {
  std::string user;
  std::string password;
  for (const char* header :
       {"", "Basic", "Basic ", "Bearer cHJvbTpzY3JhcGUtc2VjcmV0",
        "Basic cHJvbTpzY3JhcGUtc2VjcmV0=", "Basic !!!!", "Basic bm9jb2xvbg=="}) {
    EXPECT_FALSE(DecodeBasicAuthorization(header, user, password)) << header;
  }
}

TEST(BasicAuthTest, WithoutUsersEverythingIsAllowed) {
  BasicAuthenticator auth(std::map<std::string, std::string>{});
  EXPECT_FALSE(auth.Enabled());
  EXPECT_TRUE(auth.Allows(nullptr));
}

TEST(BasicAuthTest, ChecksPasswordsAgainstBcryptHashes) {
  BasicAuthenticator auth(
      std::map<std::string, std::string>{{"prom", kScrapeSecret}, {"alice", kOther}});
  EXPECT_TRUE(auth.Enabled());
  EXPECT_TRUE(auth.Allows("Basic cHJvbTpzY3JhcGUtc2VjcmV0"));   // prom:scrape-secret
  EXPECT_FALSE(auth.Allows("Basic cHJvbTpvdGhlcg=="));          // prom:other
  EXPECT_TRUE(auth.Allows("Basic YWxpY2U6b3RoZXI="));           // alice:other
  EXPECT_FALSE(auth.Allows("Basic Ym9iOnNjcmFwZS1zZWNyZXQ="));  // bob: unknown
  EXPECT_FALSE(auth.Allows(nullptr));
  EXPECT_FALSE(auth.Allows("Basic"));
}

TEST(BasicAuthTest, RemembersOnlyPairsThatVerified) {
  BasicAuthenticator auth(std::map<std::string, std::string>{{"prom", kScrapeSecret}});
  EXPECT_FALSE(auth.Allows("Basic cHJvbTpvdGhlcg=="));
  EXPECT_EQ(auth.RememberedPairs(), 0U);
  EXPECT_TRUE(auth.Allows("Basic cHJvbTpzY3JhcGUtc2VjcmV0"));
  EXPECT_TRUE(auth.Allows("Basic cHJvbTpzY3JhcGUtc2VjcmV0"));
  EXPECT_EQ(auth.RememberedPairs(), 1U);
  EXPECT_FALSE(auth.Allows("Basic cHJvbTpvdGhlcg=="));  // a remembered pair is no wildcard
}

}  // namespace
}  // namespace portwatch
