#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace portwatch {

/// HTTP basic authentication against the bcrypt hashes of a web config's basic_auth_users,
/// checked with the system's libcrypt (crypt_rn), as the exporter-toolkit checks them with Go's
/// bcrypt.
///
/// bcrypt is slow on purpose (about 70 ms at cost 10), and Prometheus sends the same
/// credentials on every scrape: a pair that verified once is remembered, as a SHA-256 digest of
/// user, password and hash (never the password itself), so later scrapes cost a hash, not a
/// bcrypt. An unknown user is checked against a fixed hash so that the answer takes as long as
/// for a known one.
///
/// Whoever reaches the port can make the exporter run bcrypt with made-up passwords: at most
/// `max_concurrent_bcrypt` checks run at once, and a request arriving while they all do is
/// answered "busy" at once instead of queueing for CPU time, so a flood costs at most that many
/// cores and remembered pairs (Prometheus' scrapes) still pass.
class BasicAuthenticator {
 public:
  enum class Decision { kAllowed, kDenied, kBusy };

  static constexpr int kDefaultMaxConcurrentBcrypt = 2;

  explicit BasicAuthenticator(std::map<std::string, std::string> users,
                              int max_concurrent_bcrypt = kDefaultMaxConcurrentBcrypt);

  /// Whether any user is configured (otherwise every request is allowed).
  bool Enabled() const { return !users_.empty(); }
  /// Whether an Authorization header value ("Basic dXNlcjpwYXNz") grants access. nullptr or a
  /// malformed header: denied.
  Decision Check(const char* authorization);

  /// Pairs that verified and are remembered (for tests).
  size_t RememberedPairs() const;
  /// bcrypt checks running now (for tests).
  int BcryptChecksInFlight() const { return bcrypt_in_flight_.load(); }

  static constexpr size_t kMaxRemembered = 1024;

 private:
  using Digest = std::array<unsigned char, 32>;
  Decision Verifies(const std::string& user, const std::string& password);

  std::map<std::string, std::string> users_;
  const int max_concurrent_bcrypt_;
  std::atomic<int> bcrypt_in_flight_{0};
  mutable std::mutex mutex_;
  std::set<Digest> remembered_;
};

/// The user and password of a basic Authorization header value, or false when it is not one.
bool DecodeBasicAuthorization(std::string_view header, std::string& user, std::string& password);

}  // namespace portwatch
