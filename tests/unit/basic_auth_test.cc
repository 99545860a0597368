#include "exporter/basic_auth.h"

#include <crypt.h>

#include <array>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

// bcrypt hashes (cost 4, made with libcrypt's crypt_gensalt) of "scrape-secret" and "other".
constexpr const char* kScrapeSecret =
    "$2y$04$jtS1.qPrJwMInQsUrOitxeikMJZ0/Ejkz2ReX6v1ObrmDFY9KyZ5O";
constexpr const char* kOther = "$2y$04$Hvg0Mfg4OJhaWpx5/BKr1e8qvDNuryE4J5z8zoOQMow.Io0UuAEVK";
constexpr auto kAllowed = BasicAuthenticator::Decision::kAllowed;
constexpr auto kDenied = BasicAuthenticator::Decision::kDenied;
constexpr auto kBusy = BasicAuthenticator::Decision::kBusy;

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
  EXPECT_EQ(auth.Check(nullptr), kAllowed);
}

TEST(BasicAuthTest, ChecksPasswordsAgainstBcryptHashes) {
  BasicAuthenticator auth(
      std::map<std::string, std::string>{{"prom", kScrapeSecret}, {"alice", kOther}});
  EXPECT_TRUE(auth.Enabled());
  EXPECT_EQ(auth.Check("Basic cHJvbTpzY3JhcGUtc2VjcmV0"), kAllowed);  // prom:scrape-secret
  EXPECT_EQ(auth.Check("Basic cHJvbTpvdGhlcg=="), kDenied);           // prom:other
  EXPECT_EQ(auth.Check("Basic YWxpY2U6b3RoZXI="), kAllowed);          // alice:other
  EXPECT_EQ(auth.Check("Basic Ym9iOnNjcmFwZS1zZWNyZXQ="), kDenied);   // bob: unknown
  EXPECT_EQ(auth.Check(nullptr), kDenied);
  EXPECT_EQ(auth.Check("Basic"), kDenied);
}

TEST(BasicAuthTest, RemembersOnlyPairsThatVerified) {
  BasicAuthenticator auth(std::map<std::string, std::string>{{"prom", kScrapeSecret}});
  EXPECT_EQ(auth.Check("Basic cHJvbTpvdGhlcg=="), kDenied);
  EXPECT_EQ(auth.RememberedPairs(), 0U);
  EXPECT_EQ(auth.Check("Basic cHJvbTpzY3JhcGUtc2VjcmV0"), kAllowed);
  EXPECT_EQ(auth.Check("Basic cHJvbTpzY3JhcGUtc2VjcmV0"), kAllowed);
  EXPECT_EQ(auth.RememberedPairs(), 1U);
  EXPECT_EQ(auth.Check("Basic cHJvbTpvdGhlcg=="), kDenied);  // a remembered pair is no wildcard
}

TEST(BasicAuthTest, ABusyBcryptSlotAnswersAtOnceAndRememberedPairsStillPass) {
  // Cost 13: about half a second of bcrypt, long enough to be seen in flight.
  std::array<char, 64> setting{};
  ASSERT_NE(::crypt_gensalt_rn("$2b$", 13, nullptr, 0, setting.data(), setting.size()), nullptr);
  crypt_data data{};
  const std::string slow_hash = ::crypt_rn("slow-secret", setting.data(), &data, sizeof(data));
  BasicAuthenticator auth(
      std::map<std::string, std::string>{{"prom", kScrapeSecret}, {"slow", slow_hash}},
      /*max_concurrent_bcrypt=*/1);
  ASSERT_EQ(auth.Check("Basic cHJvbTpzY3JhcGUtc2VjcmV0"), kAllowed);  // remembered from now on

  std::thread attacker([&auth] {
    EXPECT_EQ(auth.Check("Basic c2xvdzp3cm9uZw=="), kDenied);  // slow:wrong
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (auth.BcryptChecksInFlight() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(auth.BcryptChecksInFlight(), 1);
  EXPECT_EQ(auth.Check("Basic cHJvbTpvdGhlcg=="), kBusy);             // prom:other
  EXPECT_EQ(auth.Check("Basic cHJvbTpzY3JhcGUtc2VjcmV0"), kAllowed);  // no bcrypt needed
  EXPECT_EQ(auth.Check("Basic"), kDenied);                            // malformed: no bcrypt
  attacker.join();
  EXPECT_EQ(auth.BcryptChecksInFlight(), 0);
  EXPECT_EQ(auth.Check("Basic cHJvbTpvdGhlcg=="), kDenied);
}

}  // namespace
}  // namespace portwatch
