#include "exporter/basic_auth.h"

#include <crypt.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <vector>

namespace portwatch {

namespace {

/// A valid bcrypt hash of a random password nobody knows: what an unknown user is checked
/// against, so that a wrong user name costs as much time as a wrong password.
constexpr const char* kUnknownUserHash =
    "$2y$10$fDucQabXsohRj.WcppdldOvDABrvNS5/5MAncNrkYMrxK77nFNUTO";

bool BcryptMatches(const std::string& password, const std::string& hash) {
  // crypt_data is 32 KiB: on the heap, web threads run on small stacks.
  auto data = std::make_unique<crypt_data>();
  const char* result = ::crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof(*data));
  return result != nullptr && result[0] != '*' && std::strlen(result) == hash.size() &&
         CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;
}

}  // namespace

bool DecodeBasicAuthorization(std::string_view header, std::string& user, std::string& password) {
  constexpr std::string_view kScheme = "basic ";
  if (header.size() <= kScheme.size()) {
    return false;
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {  // the scheme is case-insensitive (RFC 7617)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
      return false;
    }
  }
  std::string_view encoded = header.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') {
    encoded.remove_prefix(1);
  }
  while (!encoded.empty() && encoded.back() == ' ') {
    encoded.remove_suffix(1);
  }
  constexpr size_t kMaxEncoded = 4096;
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > kMaxEncoded) {
    return false;
  }
  std::vector<unsigned char> decoded(encoded.size() / 4 * 3 + 1);
  const int length =
      EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(encoded.data()),
                      static_cast<int>(encoded.size()));
  if (length < 0) {
    return false;
  }
  // EVP_DecodeBlock counts the padding as zero bytes: drop one per '='.
  auto size = static_cast<size_t>(length);
  for (size_t i = encoded.size(); i > 0 && encoded[i - 1] == '=' && size > 0; --i) {
    --size;
  }
  const std::string text(reinterpret_cast<const char*>(decoded.data()), size);
  const size_t colon = text.find(':');
  if (colon == std::string::npos) {
    return false;
  }
  user = text.substr(0, colon);
  password = text.substr(colon + 1);
  return true;
}

BasicAuthenticator::BasicAuthenticator(std::map<std::string, std::string> users,
                                       int max_concurrent_bcrypt)
    : users_(std::move(users)), max_concurrent_bcrypt_(max_concurrent_bcrypt) {}

size_t BasicAuthenticator::RememberedPairs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return remembered_.size();
}

BasicAuthenticator::Decision BasicAuthenticator::Check(const char* authorization) {
  if (!Enabled()) {
    return Decision::kAllowed;
  }
  std::string user;
  std::string password;
  if (authorization == nullptr || !DecodeBasicAuthorization(authorization, user, password)) {
    return Decision::kDenied;
  }
  return Verifies(user, password);
}

BasicAuthenticator::Decision BasicAuthenticator::Verifies(const std::string& user,
                                                          const std::string& password) {
  const auto found = users_.find(user);
  const std::string& hash = found != users_.end() ? found->second : kUnknownUserHash;
  std::string material = user;
  material.append(1, '\0').append(password).append(1, '\0').append(hash);
  Digest digest{};
  unsigned int digest_length = 0;
  if (EVP_Digest(material.data(), material.size(), digest.data(), &digest_length, EVP_sha256(),
                 nullptr) != 1) {
    return Decision::kDenied;
  }
  OPENSSL_cleanse(material.data(), material.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (found != users_.end() && remembered_.count(digest) != 0) {
      return Decision::kAllowed;
    }
  }
  if (bcrypt_in_flight_.fetch_add(1) >= max_concurrent_bcrypt_) {
    bcrypt_in_flight_.fetch_sub(1);
    return Decision::kBusy;
  }
  const bool matches = BcryptMatches(password, hash) && found != users_.end();
  bcrypt_in_flight_.fetch_sub(1);
  if (matches) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (remembered_.size() >= kMaxRemembered) {
      remembered_.clear();  // a burst of distinct passwords that verified: start over
    }
    remembered_.insert(digest);
  }
  return matches ? Decision::kAllowed : Decision::kDenied;
}

}  // namespace portwatch
