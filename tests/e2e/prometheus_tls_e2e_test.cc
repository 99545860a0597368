// The client that matters for --web.config.file: a real Prometheus scraping the real exporter
// over TLS with a client certificate and basic auth, through its own scrape options
// (tls_config: ca_file, cert_file, key_file, server_name; basic_auth: username, password_file).
// The exporter requires and verifies the client certificate (RequireAndVerifyClientCert,
// client_ca_file, client_allowed_sans) and checks a bcrypt hash made here with libcrypt. Checked
// through Prometheus' HTTP API: the right job is up and its samples are stored; a wrong password,
// a missing client certificate and plain HTTP are each down. Loopback in a private network
// namespace; web_security_e2e_test.cc covers the same web config with curl, case by case.
#include <crypt.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"
#include "tests/support/test_ca.h"

namespace portwatch::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kUser = "prometheus";
constexpr const char* kPassword = "scrape-secret";

// One job per case, all scraping the same exporter target. Go negotiates TLS 1.3 unless told
// otherwise; the exporter also offers TLS 1.2 (the exporter-toolkit's default minimum), so the
// right credentials are tried with both.
constexpr const char* kGoodJob = "client-cert-basic-auth";
constexpr const char* kGoodTls12Job = "client-cert-basic-auth-tls12";
constexpr const char* kWrongPasswordJob = "wrong-password";
constexpr const char* kNoClientCertJob = "no-client-cert";
constexpr const char* kPlainHttpJob = "plain-http";

/// A mkdtemp directory, removed with its contents when this goes away (also when a test fails
/// half-way through).
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "/portwatch-prometheus-tls-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~ScopedTempDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  /// Empty when mkdtemp failed.
  const fs::path& Path() const { return path_; }

 private:
  fs::path path_;
};

/// bcrypt of `password` with a fresh random salt, by the system's libcrypt as the exporter checks
/// it. Cost 4, bcrypt's minimum: the hash is made and verified once per run, and a real cost
/// would only slow the test. Empty on failure.
std::string Bcrypt(const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (::crypt_gensalt_rn("$2y$", 4, nullptr, 0, setting, sizeof(setting)) == nullptr) {
    return "";
  }
  // crypt_data is tens of kilobytes: not for the stack.
  auto data = std::make_unique<crypt_data>();
  const char* hash = ::crypt_rn(password.c_str(), setting, data.get(), sizeof(crypt_data));
  // libcrypt's failure tokens start with '*'.
  return hash == nullptr || hash[0] == '*' ? "" : hash;
}

/// `count` distinct loopback TCP ports free right now: held together while chosen so that they
/// differ, then released for the processes started next (no connection, so no TIME_WAIT).
std::vector<uint16_t> FreePorts(int count) {
  std::vector<UniqueFd> held;
  std::vector<uint16_t> ports;
  for (int i = 0; i < count; ++i) {
    held.push_back(Listen("127.0.0.1", 0));
    ports.push_back(held.back().Valid() ? LocalPort(held.back()) : 0);
  }
  return ports;
}

class PrometheusTlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string prometheus = PORTWATCH_PROMETHEUS_BINARY;
    ASSERT_FALSE(prometheus.empty())
        << "the prometheus binary was not found when CMake configured this build: install it "
           "(tools/dev.sh test installs Debian's prometheus package) and re-run cmake";
    ASSERT_EQ(::access(prometheus.c_str(), X_OK), 0)
        << prometheus << " (found by CMake) is not executable now";
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    ASSERT_FALSE(dir_.Path().empty()) << "mkdtemp failed under " << ::testing::TempDir();
    ASSERT_EQ(MakeTestCertificates(dir_.Path(), certs_), "");
    const std::vector<uint16_t> ports = FreePorts(2);
    ASSERT_NE(ports[0], 0);
    ASSERT_NE(ports[1], 0);
    exporter_port_ = ports[0];
    prometheus_port_ = ports[1];
  }

  fs::path File(const std::string& name) const { return dir_.Path() / name; }

  /// HTTP status of a GET by curl with the client certificate and the credentials ("000": no
  /// HTTP answer): the exporter's readiness, checked without Prometheus.
  std::string CurlStatus(const std::string& path) {
    std::string output;
    RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                "--cacert", certs_.ca_cert.string(), "--cert", certs_.client_cert.string(), "--key",
                certs_.client_key.string(), "-u", std::string(kUser) + ":" + kPassword,
                "https://localhost:" + std::to_string(exporter_port_) + path},
               output, 10);
    return output.substr(output.size() >= 3 ? output.size() - 3 : 0);
  }

  void StartExporter() {
    const std::string hash = Bcrypt(kPassword);
    ASSERT_FALSE(hash.empty()) << "libcrypt made no bcrypt hash";
    // Relative names: the exporter takes them from the web config's directory.
    std::ofstream(File("web.yml")) << "tls_server_config:\n"
                                      "  cert_file: server.crt\n"
                                      "  key_file: server.key\n"
                                      "  client_auth_type: RequireAndVerifyClientCert\n"
                                      "  client_ca_file: ca.crt\n"
                                      "  client_allowed_sans: ["
                                   << kClientSan
                                   << "]\n"
                                      "basic_auth_users:\n  "
                                   << kUser << ": \"" << hash << "\"\n";
    // bind_events watches every namespace through eBPF: nothing here needs it.
    exporter_ = std::make_unique<ExporterProcess>(
        PORTWATCH_EXPORTER_BINARY,
        std::vector<std::string>{"--web.listen-address=127.0.0.1:" + std::to_string(exporter_port_),
                                 "--web.config.file=" + File("web.yml").string(),
                                 "--no-collector.bind_events"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::string status;
    while (std::chrono::steady_clock::now() < deadline) {
      ASSERT_EQ(exporter_->WaitExit(0), -1) << "the exporter exited:\n" << exporter_->Log();
      status = CurlStatus("/-/ready");
      if (status == "200") {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the exporter never answered 200 over TLS to curl (last: " << status << ")\n"
           << exporter_->Log();
  }

  void StartPrometheus() {
    // A YAML double-quoted string, as fs::path's operator<< quotes it.
    const auto q = [](const fs::path& path) {
      std::ostringstream out;
      out << path;
      return out.str();
    };
    std::ofstream(File("password")) << kPassword;
    const std::string target = "127.0.0.1:" + std::to_string(exporter_port_);
    // The target is an address and the server certificate also names "localhost": server_name
    // makes Prometheus verify that name, as it must when scraping a pod IP.
    const std::string full_tls = "    tls_config:\n      ca_file: " + q(certs_.ca_cert) +
                                 "\n      cert_file: " + q(certs_.client_cert) +
                                 "\n      key_file: " + q(certs_.client_key) +
                                 "\n      server_name: localhost\n";
    const auto job = [&](const std::string& name, const std::string& scheme, const std::string& tls,
                         const std::string& auth) {
      return "  - job_name: " + name + "\n    scheme: " + scheme + "\n" + tls +
             "    basic_auth:\n      username: " + kUser + "\n" + auth +
             "    static_configs:\n      - targets: ['" + target + "']\n";
    };
    const std::string password_file = "      password_file: " + q(File("password")) + "\n";
    std::ofstream(File("prometheus.yml"))
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n"
        << job(kGoodJob, "https", full_tls, password_file)
        << job(kGoodTls12Job, "https", full_tls + "      max_version: TLS12\n", password_file)
        << job(kWrongPasswordJob, "https", full_tls, "      password: not-the-secret\n")
        // The server is trusted and the password right: only the certificate is missing.
        << job(kNoClientCertJob, "https",
               "    tls_config:\n      ca_file: " + q(certs_.ca_cert) +
                   "\n      server_name: localhost\n",
               password_file)
        << job(kPlainHttpJob, "http", "", password_file);
    fs::create_directories(File("tsdb"));
    prometheus_ = std::make_unique<ExporterProcess>(
        PORTWATCH_PROMETHEUS_BINARY,
        std::vector<std::string>{
            "--config.file=" + File("prometheus.yml").string(),
            "--storage.tsdb.path=" + File("tsdb").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
            "--log.level=warn"});
    ASSERT_TRUE(prometheus_->WaitReady(prometheus_port_)) << prometheus_->Log();
  }

  /// GET /api/v1/PATH from Prometheus: its "data", null on any error.
  json Api(const std::string& path) {
    const HttpResponse response = HttpRequest(prometheus_port_, "GET", "/api/v1/" + path);
    if (response.status != 200) {
      return nullptr;
    }
    json parsed = json::parse(response.body, nullptr, false);
    return parsed.is_discarded() || !parsed.contains("data") ? json(nullptr) : parsed["data"];
  }

  /// An instant query whose text needs no URL encoding (a bare metric name): each sample's
  /// value by its job label.
  std::map<std::string, double> ValuesByJob(const std::string& metric,
                                            const std::map<std::string, std::string>& labels = {}) {
    std::map<std::string, double> values;
    const json data = Api("query?query=" + metric);
    if (!data.is_object()) {
      return values;
    }
    for (const json& sample : data["result"]) {
      bool matches = true;
      for (const auto& [key, value] : labels) {
        matches = matches && sample["metric"].value(key, "") == value;
      }
      if (matches) {
        values[sample["metric"].value("job", "")] =
            std::stod(sample["value"][1].get<std::string>());
      }
    }
    return values;
  }

  /// The active targets' `field` ("health", "lastError") by job name.
  std::map<std::string, std::string> TargetsByJob(const std::string& field) {
    std::map<std::string, std::string> targets;
    const json data = Api("targets?state=active");
    if (data.is_object()) {
      for (const json& target : data["activeTargets"]) {
        targets[target["labels"].value("job", "")] = target.value(field, "");
      }
    }
    return targets;
  }

  // Declared first, destroyed last: the processes below stop (by PID) before their files go.
  ScopedTempDir dir_;
  TestCertificates certs_;
  uint16_t exporter_port_ = 0;
  uint16_t prometheus_port_ = 0;
  std::unique_ptr<ExporterProcess> exporter_;
  std::unique_ptr<ExporterProcess> prometheus_;
};

TEST_F(PrometheusTlsE2eTest, ScrapesWithClientCertificateAndBasicAuthOnly) {
  ASSERT_NO_FATAL_FAILURE(StartExporter());
  ASSERT_NO_FATAL_FAILURE(StartPrometheus());

  // Wait until every job scraped at least once and each good job scraped again after a refused
  // one (its samples then count the 401s). Prometheus scrapes every second, so 30 s is plenty.
  const std::vector<std::string> good_jobs = {kGoodJob, kGoodTls12Job};
  const std::vector<std::string> bad_jobs = {kWrongPasswordJob, kNoClientCertJob, kPlainHttpJob};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::map<std::string, double> up;
  std::map<std::string, double> build_info;
  std::map<std::string, double> unauthorized;
  std::map<std::string, std::string> health;
  std::map<std::string, std::string> last_error;
  const auto settled = [&] {
    for (const std::string& job : bad_jobs) {
      if (up.count(job) == 0 || last_error[job].empty()) {
        return false;
      }
    }
    for (const std::string& job : good_jobs) {
      if (up[job] != 1 || build_info.count(job) == 0 || unauthorized[job] <= 0) {
        return false;
      }
    }
    return true;
  };
  while (std::chrono::steady_clock::now() < deadline) {
    up = ValuesByJob("up");
    build_info = ValuesByJob("portwatch_build_info");
    unauthorized =
        ValuesByJob("portwatch_http_requests_rejected_total", {{"reason", "unauthorized"}});
    health = TargetsByJob("health");
    last_error = TargetsByJob("lastError");
    if (settled()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (!settled()) {
    std::string states;
    for (const auto& [job, error] : last_error) {
      states += "\n  " + job + ": " + health[job] + " " + error;
    }
    ADD_FAILURE() << "not as expected within 30 s; targets:" << states << "\nPrometheus log:\n"
                  << prometheus_->Log() << "exporter log:\n"
                  << exporter_->Log();
  }

  // (1) Client certificate and password, TLS 1.3 and TLS 1.2: up, and the exporter's own
  // samples stored under the job, with the instance Prometheus scraped.
  for (const std::string& job : good_jobs) {
    EXPECT_EQ(up[job], 1) << job;
    EXPECT_EQ(health[job], "up") << job;
    EXPECT_EQ(last_error[job], "") << job;
    // The refused scrapes of the wrong-password job, as the exporter counted them.
    EXPECT_GT(unauthorized[job], 0) << job;
  }
  if (up[kGoodTls12Job] == 1 && up[kGoodJob] != 1) {
    ADD_FAILURE() << "the same credentials work over TLS 1.2 but not over TLS 1.3: "
                  << last_error[kGoodJob];
  }
  const json build = Api("query?query=portwatch_build_info");
  ASSERT_TRUE(build.is_object());
  std::map<std::string, json> build_by_job;
  for (const json& sample : build["result"]) {
    build_by_job[sample["metric"].value("job", "")] = sample;
  }
  EXPECT_EQ(build_by_job.size(), good_jobs.size())
      << "only the good jobs store samples: " << build.dump(1);
  for (const std::string& job : good_jobs) {
    if (build_by_job.count(job) == 0) {
      ADD_FAILURE() << job << ": no portwatch_build_info";
      continue;
    }
    const json& series = build_by_job[job]["metric"];
    EXPECT_EQ(series.value("instance", ""), "127.0.0.1:" + std::to_string(exporter_port_));
    EXPECT_EQ(series.value("version", ""), PORTWATCH_VERSION) << series.dump();
    EXPECT_EQ(build_by_job[job]["value"][1], "1") << series.dump();
  }

  // (2) Wrong password: the TLS handshake passes, basic auth answers 401.
  EXPECT_EQ(up.count(kWrongPasswordJob), 1U);
  EXPECT_EQ(up[kWrongPasswordJob], 0);
  EXPECT_EQ(health[kWrongPasswordJob], "down");
  const std::string wrong_password_error = last_error[kWrongPasswordJob];
  EXPECT_NE(wrong_password_error.find("401"), std::string::npos) << wrong_password_error;
  EXPECT_NE(wrong_password_error.find("Unauthorized"), std::string::npos) << wrong_password_error;

  // (3) Right password but no client certificate, and plain HTTP to the TLS port: down, and not
  // for the password's sake (no 401 answer there; the error quotes the URL, whose random port
  // may contain "401": look for the status as Prometheus words it).
  for (const char* job : {kNoClientCertJob, kPlainHttpJob}) {
    EXPECT_EQ(up.count(job), 1U) << job;
    EXPECT_EQ(up[job], 0) << job;
    EXPECT_EQ(health[job], "down") << job;
    const std::string error = last_error[job];
    EXPECT_FALSE(error.empty()) << job;
    EXPECT_EQ(error.find("HTTP status 401"), std::string::npos) << job << ": " << error;
    EXPECT_EQ(error.find("Unauthorized"), std::string::npos) << job << ": " << error;
  }
  // The handshake itself fails: the exporter refuses a client without a certificate. With TLS
  // 1.3 the client may send its request before the server's alert arrives: Prometheus then
  // reports the alert ("remote error: tls: ...") or the closed connection it wrote to (a CI run:
  // "write: broken pipe"), never an HTTP answer.
  const std::string no_certificate_error = last_error[kNoClientCertJob];
  EXPECT_TRUE(no_certificate_error.find("tls") != std::string::npos ||
              no_certificate_error.find("broken pipe") != std::string::npos ||
              no_certificate_error.find("connection reset") != std::string::npos ||
              no_certificate_error.find("EOF") != std::string::npos)
      << no_certificate_error;
  EXPECT_EQ(no_certificate_error.find("HTTP status"), std::string::npos) << no_certificate_error;
}

}  // namespace
}  // namespace portwatch::testing
