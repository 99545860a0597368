#pragma once

#include <array>
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
class BasicAuthenticator {
 public:
  explicit BasicAuthenticator(std::map<std::string, std::string> users);

  /// Whether any user is configured (otherwise every request is allowed).
  bool Enabled() const { return !users_.empty(); }
  /// Whether an Authorization header value ("Basic dXNlcjpwYXNz") grants access. nullptr or a
  /// malformed header: no.
  bool Allows(const char* authorization);

  /// Pairs that verified and are remembered (for tests).
  size_t RememberedPairs() const;

  static constexpr size_t kMaxRemembered = 1024;

 private:
  using Digest = std::array<unsigned char, 32>;
  bool Verifies(const std::string& user, const std::string& password);

  std::map<std::string, std::string> users_;
  mutable std::mutex mutex_;
  std::set<Digest> remembered_;
};

/// The user and password of a basic Authorization header value, or false when it is not one.
bool DecodeBasicAuthorization(std::string_view header, std::string& user, std::string& password);

}  // namespace portwatch
