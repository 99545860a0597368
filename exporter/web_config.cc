#include "exporter/web_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "collectors/common/config_yaml.h"

namespace portwatch {

namespace {

template <typename Value>
struct Name {
  std::string_view name;
  Value value;
};

constexpr std::array<Name<ClientAuth>, 5> kClientAuthTypes = {{
    {"NoClientCert", ClientAuth::kNoClientCert},
    {"RequestClientCert", ClientAuth::kRequestClientCert},
    {"RequireAnyClientCert", ClientAuth::kRequireAnyClientCert},
    {"VerifyClientCertIfGiven", ClientAuth::kVerifyClientCertIfGiven},
    {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerifyClientCert},
}};

constexpr std::array<Name<TlsVersion>, 4> kTlsVersions = {{
    {"TLS10", TlsVersion::kTls10},
    {"TLS11", TlsVersion::kTls11},
    {"TLS12", TlsVersion::kTls12},
    {"TLS13", TlsVersion::kTls13},
}};

/// Go's secure TLS 1.2 suites (crypto/tls.CipherSuites) and their OpenSSL names. The TLS 1.3
/// suites are accepted and mean nothing, as in Go: TLS 1.3 negotiates its own.
constexpr std::array<Name<std::string_view>, 13> kCipherSuites = {{
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
}};

constexpr std::array<Name<std::string_view>, 4> kCurves = {{
    {"CurveP256", "P-256"},
    {"CurveP384", "P-384"},
    {"CurveP521", "P-521"},
    {"X25519", "X25519"},
}};

/// The http_server_config.headers the exporter-toolkit allows; each value "" means unset.
const std::set<std::string>& AllowedHeaders() {
  static const std::set<std::string> kAllowed = {"Content-Security-Policy", "X-Frame-Options",
                                                 "X-Content-Type-Options", "X-XSS-Protection",
                                                 "Strict-Transport-Security"};
  return kAllowed;
}

template <typename Value, size_t N>
Value Choose(const std::array<Name<Value>, N>& names, const YAML::Node& node,
             const std::string& path) {
  std::string allowed;
  for (const Name<Value>& entry : names) {
    if (node.IsScalar() && node.Scalar() == entry.name) {
      return entry.value;
    }
    allowed += (allowed.empty() ? "" : ", ") + std::string(entry.name);
  }
  throw ConfigProblem(node.Mark(),
                      path + " must be one of " + allowed + ", got " + DescribeNode(node));
}

/// A list of names, each mapped through `names`, joined with ':' as OpenSSL lists are.
template <size_t N>
std::string MappedList(const std::array<Name<std::string_view>, N>& names, const YAML::Node& node,
                       const std::string& path) {
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), path + " must be a list, got " + DescribeNode(node));
  }
  std::string joined;
  for (const YAML::Node& item : node) {
    const std::string_view mapped = Choose(names, item, path + " entries");
    if (!mapped.empty()) {
      joined += (joined.empty() ? "" : ":") + std::string(mapped);
    }
  }
  return joined;
}

std::vector<std::string> StringList(const YAML::Node& node, const std::string& path) {
  if (!node.IsSequence()) {
    throw ConfigProblem(node.Mark(), path + " must be a list, got " + DescribeNode(node));
  }
  std::vector<std::string> items;
  for (const YAML::Node& item : node) {
    items.push_back(ParseString(item, path + " entries"));
  }
  return items;
}

/// Relative paths are relative to the web config file, as in the exporter-toolkit.
std::string Anchored(const std::string& path, const std::string& source) {
  if (path.empty() || path.front() == '/') {
    return path;
  }
  const size_t slash = source.rfind('/');
  return slash == std::string::npos ? path : source.substr(0, slash + 1) + path;
}

/// "$2a$", "$2b$" or "$2y$", a two-digit cost from 04 to 31, "$", then 53 characters of bcrypt's
/// base64 (22 of salt, 31 of hash).
bool IsBcryptHash(const std::string& hash) {
  if (hash.size() != 60 || hash.compare(0, 2, "$2") != 0 ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[3] != '$' || hash[6] != '$' ||
      !std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5]))) {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  return cost >= 4 && cost <= 31 && std::all_of(hash.begin() + 7, hash.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/';
         });
}

void RequirePair(const TlsServerConfig& tls, const YAML::Node& node) {
  const bool has_cert = !tls.cert_file.empty() || !tls.cert.empty();
  const bool has_key = !tls.key_file.empty() || !tls.key.empty();
  if (!has_cert || !has_key) {
    throw ConfigProblem(
        node.Mark(),
        std::string("tls_server_config needs a certificate and its key: ") +
            (has_cert ? "key_file (or key) is missing" : "cert_file (or cert) is missing"));
  }
  if ((!tls.cert_file.empty() && !tls.cert.empty()) ||
      (!tls.key_file.empty() && !tls.key.empty()) ||
      (!tls.client_ca_file.empty() && !tls.client_ca.empty())) {
    throw ConfigProblem(node.Mark(),
                        "tls_server_config: give each of cert, key and client_ca either inline "
                        "or as a file, not both");
  }
}

void CheckClientAuth(const TlsServerConfig& tls, const YAML::Node& node) {
  const bool has_ca = !tls.client_ca_file.empty() || !tls.client_ca.empty();
  const bool verifies = tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                        tls.client_auth == ClientAuth::kRequireAndVerifyClientCert;
  if (verifies && !has_ca) {
    throw ConfigProblem(node.Mark(),
                        "tls_server_config.client_auth_type verifies client certificates: "
                        "client_ca_file (or client_ca) is needed");
  }
  if (has_ca && tls.client_auth == ClientAuth::kNoClientCert) {
    throw ConfigProblem(node.Mark(),
                        "tls_server_config.client_ca_file is set but client_auth_type is "
                        "NoClientCert: set client_auth_type (RequireAndVerifyClientCert "
                        "authenticates clients)");
  }
  if (!tls.client_allowed_sans.empty() && tls.client_auth != ClientAuth::kRequireAnyClientCert &&
      tls.client_auth != ClientAuth::kRequireAndVerifyClientCert) {
    throw ConfigProblem(node.Mark(),
                        "tls_server_config.client_allowed_sans needs client_auth_type "
                        "RequireAnyClientCert or RequireAndVerifyClientCert");
  }
  if (tls.min_version > tls.max_version) {
    throw ConfigProblem(node.Mark(), "tls_server_config.min_version is above max_version");
  }
}

TlsServerConfig ParseTls(const YAML::Node& node, const std::string& source) {
  const std::string path = "tls_server_config";
  RequireMap(node, path);
  RejectUnknownKeys(node, path,
                    {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type",
                     "client_ca_file", "client_allowed_sans", "min_version", "max_version",
                     "cipher_suites", "prefer_server_cipher_suites", "curve_preferences"});
  TlsServerConfig tls;
  const auto text = [&node, &path](const char* key, std::string& out) {
    if (const YAML::Node value = node[key]) {
      out = ParseString(value, path + "." + key);
    }
  };
  text("cert", tls.cert);
  text("key", tls.key);
  text("client_ca", tls.client_ca);
  text("cert_file", tls.cert_file);
  text("key_file", tls.key_file);
  text("client_ca_file", tls.client_ca_file);
  tls.cert_file = Anchored(tls.cert_file, source);
  tls.key_file = Anchored(tls.key_file, source);
  tls.client_ca_file = Anchored(tls.client_ca_file, source);
  if (const YAML::Node type = node["client_auth_type"]) {
    tls.client_auth = Choose(kClientAuthTypes, type, path + ".client_auth_type");
  }
  if (const YAML::Node sans = node["client_allowed_sans"]) {
    tls.client_allowed_sans = StringList(sans, path + ".client_allowed_sans");
  }
  if (const YAML::Node version = node["min_version"]) {
    tls.min_version = Choose(kTlsVersions, version, path + ".min_version");
  }
  if (const YAML::Node version = node["max_version"]) {
    tls.max_version = Choose(kTlsVersions, version, path + ".max_version");
  }
  if (const YAML::Node suites = node["cipher_suites"]) {
    tls.cipher_list = MappedList(kCipherSuites, suites, path + ".cipher_suites");
  }
  if (const YAML::Node prefer = node["prefer_server_cipher_suites"]) {
    tls.prefer_server_cipher_suites = ParseBool(prefer, path + ".prefer_server_cipher_suites");
  }
  if (const YAML::Node curves = node["curve_preferences"]) {
    tls.groups = MappedList(kCurves, curves, path + ".curve_preferences");
  }
  RequirePair(tls, node);
  CheckClientAuth(tls, node);
  return tls;
}

std::vector<std::pair<std::string, std::string>> ParseHttpServerConfig(const YAML::Node& node) {
  const std::string path = "http_server_config";
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"headers", "http2"});
  // HTTP/2 is on by default in Go; CivetWeb speaks HTTP/1.1 only, which every scraper speaks.
  if (const YAML::Node http2 = node["http2"]) {
    ParseBool(http2, path + ".http2");
  }
  std::vector<std::pair<std::string, std::string>> headers;
  const YAML::Node map = node["headers"];
  if (!map || map.IsNull()) {
    return headers;
  }
  RequireMap(map, path + ".headers");
  RejectUnknownKeys(map, path + ".headers", AllowedHeaders());
  for (const auto& entry : map) {
    const std::string name = entry.first.Scalar();
    const std::string key_path = path + ".headers." + name;
    if (!entry.second.IsScalar()) {
      throw ConfigProblem(entry.second.Mark(),
                          key_path + " must be a string, got " + DescribeNode(entry.second));
    }
    std::string value = entry.second.Scalar();
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "X-Frame-Options" && !value.empty() && lower != "deny" && lower != "sameorigin") {
      throw ConfigProblem(entry.second.Mark(), key_path + " must be deny or sameorigin, got " +
                                                   DescribeNode(entry.second));
    }
    if (name == "X-Content-Type-Options" && !value.empty() && lower != "nosniff") {
      throw ConfigProblem(entry.second.Mark(),
                          key_path + " must be nosniff, got " + DescribeNode(entry.second));
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      throw ConfigProblem(entry.second.Mark(), key_path + " must be one line");
    }
    if (!value.empty()) {  // blank means unset
      headers.emplace_back(name, std::move(value));
    }
  }
  return headers;
}

std::map<std::string, std::string> ParseUsers(const YAML::Node& node) {
  const std::string path = "basic_auth_users";
  std::map<std::string, std::string> users;
  if (node.IsNull()) {
    return users;
  }
  RequireMap(node, path);
  for (const auto& entry : node) {
    const std::string user = ParseString(entry.first, path + " user names");
    if (user.find(':') != std::string::npos) {
      throw ConfigProblem(entry.first.Mark(), path + ": user name \"" + user +
                                                  "\" contains ':', which basic "
                                                  "authentication cannot carry");
    }
    const std::string hash = ParseString(entry.second, path + "." + user);
    if (!IsBcryptHash(hash)) {
      // The value is a secret's hash: name the user, never echo it.
      throw ConfigProblem(entry.second.Mark(),
                          path + "." + user +
                              " must be a bcrypt hash ($2y$10$ and 53 more characters; "
                              "htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)");
    }
    users[user] = hash;
  }
  return users;
}

WebConfig ParseRoot(const YAML::Node& root, const std::string& source) {
  WebConfig config;
  config.source = source;
  if (root.IsNull()) {
    return config;
  }
  RequireMap(root, "the web config");
  if (const YAML::Node limit = root["rate_limit"]) {
    throw ConfigProblem(limit.Mark(),
                        "rate_limit is not supported by portwatch_exporter: "
                        "--web.max-requests caps concurrent scrapes");
  }
  RejectUnknownKeys(root, "the web config",
                    {"tls_server_config", "http_server_config", "basic_auth_users"});
  if (const YAML::Node tls = root["tls_server_config"]; tls && !tls.IsNull()) {
    config.tls = ParseTls(tls, source);
  }
  if (const YAML::Node http = root["http_server_config"]; http && !http.IsNull()) {
    config.headers = ParseHttpServerConfig(http);
  }
  if (const YAML::Node users = root["basic_auth_users"]) {
    config.basic_auth_users = ParseUsers(users);
  }
  return config;
}

}  // namespace

Result<WebConfig> ParseWebConfig(const std::string& text, const std::string& source) {
  return ParseYamlDocument<WebConfig>(
      text, source, [&source](const YAML::Node& root) { return ParseRoot(root, source); });
}

Result<WebConfig> LoadWebConfig(const std::string& path) {
  Result<std::string> text = ReadConfigFile(path, "web config file");
  if (!text) {
    return Failure{text.Error()};
  }
  return ParseWebConfig(*text, path);
}

}  // namespace portwatch
