// --web.config.file end to end, with real clients: a test CA, server and client certificates made
// by `openssl` in the test, curl over TLS with and without credentials and client certificates,
// and the web config changed under a running exporter. Each test in its own network namespace.
#include <crypt.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/exporter_process.h"
#include "tests/support/netns.h"
#include "tests/support/test_ca.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kPort = 9792;
const std::string kListen = "--web.listen-address=127.0.0.1:" + std::to_string(kPort);
const std::string kUrl = "https://localhost:" + std::to_string(kPort);
// bcrypt (cost 4, libcrypt's crypt_gensalt) of "scrape-secret" and of "rotated".
constexpr const char* kScrapeSecret =
    "$2y$04$jtS1.qPrJwMInQsUrOitxeikMJZ0/Ejkz2ReX6v1ObrmDFY9KyZ5O";
constexpr const char* kRotated = "$2y$04$Hvg0Mfg4OJhaWpx5/BKr1e8qvDNuryE4J5z8zoOQMow.Io0UuAEVK";

class WebSecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    std::string pattern = ::testing::TempDir() + "/portwatch-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    // ca.crt, server.{crt,key} (localhost, 127.0.0.1) and client.{crt,key} (SAN
    // prometheus.monitoring.svc) next to web.yml: the web configs below name them relatively.
    TestCertificates certificates;
    ASSERT_EQ(MakeTestCertificates(dir_, certificates), "");
  }
  void TearDown() override {
    exporter_.reset();
    std::filesystem::remove_all(dir_);
  }

  void WriteWebConfig(const std::string& yaml) {
    // Written aside and renamed over: the exporter never reads half a file.
    const std::string path = (dir_ / "web.yml").string();
    std::ofstream(path + ".tmp") << yaml;
    std::filesystem::rename(path + ".tmp", path);
  }

  /// The HTTP status curl got ("000": no HTTP answer), after `extra` curl arguments.
  std::string Curl(std::vector<std::string> extra, const std::string& path = "/metrics") {
    std::vector<std::string> args = {
        "curl",       "-sS", "-o",       (dir_ / "body").string(),  "-w", "%{http_code}",
        "--max-time", "5",   "--cacert", (dir_ / "ca.crt").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(kUrl + path);
    std::string output;
    RunCommand(args, output);
    return output.substr(output.size() >= 3 ? output.size() - 3 : 0);
  }

  /// Starts the exporter and waits until it answers over TLS to curl with `probe` arguments.
  void Start(const std::vector<std::string>& probe = {}) {
    exporter_ = std::make_unique<ExporterProcess>(
        PORTWATCH_EXPORTER_BINARY,
        std::vector<std::string>{kListen, "--web.config.file=" + (dir_ / "web.yml").string()});
    // Ready once TLS answers at all (401 without credentials is an answer).
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (Curl(probe, "/-/ready") != "000") {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "no TLS answer: " << exporter_->Log();
  }

  std::string Body() const {
    std::ifstream in(dir_ / "body");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::filesystem::path dir_;
  std::unique_ptr<ExporterProcess> exporter_;
};

TEST_F(WebSecurityE2eTest, TlsWithBasicAuthOnEveryPath) {
  WriteWebConfig(std::string("tls_server_config:\n  cert_file: server.crt\n  key_file: "
                             "server.key\nbasic_auth_users:\n  prom: ") +
                 kScrapeSecret +
                 "\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n");
  Start();
  EXPECT_EQ(Curl({}), "401");
  EXPECT_EQ(Curl({}, "/-/healthy"), "401");  // every path, as with the exporter-toolkit
  EXPECT_EQ(Curl({"-u", "prom:wrong"}), "401");
  EXPECT_EQ(Curl({"-u", "prom:scrape-secret", "-D", (dir_ / "head").string()}), "200");
  // The three above and Start()'s readiness probe.
  EXPECT_NE(Body().find("portwatch_http_requests_rejected_total{reason=\"unauthorized\"} 4"),
            std::string::npos)
      << Body();
  std::ifstream head(dir_ / "head");
  const std::string headers(std::istreambuf_iterator<char>(head), {});
  EXPECT_NE(headers.find("X-Content-Type-Options: nosniff"), std::string::npos) << headers;

  // Plain HTTP to the TLS port gets no HTTP answer, and the exporter lives on.
  std::string output;
  EXPECT_NE(RunCommand({"curl", "-sS", "--max-time", "5",
                        "http://127.0.0.1:" + std::to_string(kPort) + "/metrics"},
                       output),
            0);
  EXPECT_EQ(Curl({"-u", "prom:scrape-secret"}, "/-/healthy"), "200");
}

TEST_F(WebSecurityE2eTest, ClientCertificatesAreRequiredAndChecked) {
  WriteWebConfig(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
      "  client_allowed_sans: [prometheus.monitoring.svc]\n");
  const std::string client_cert = (dir_ / "client.crt").string();
  const std::string client_key = (dir_ / "client.key").string();
  Start({"--cert", client_cert, "--key", client_key});
  EXPECT_EQ(Curl({}), "000");  // no certificate: the handshake fails
  EXPECT_EQ(Curl({"--cert", client_cert, "--key", client_key}), "200");
  // A certificate of the same CA without an allowed SAN.
  EXPECT_EQ(
      Curl({"--cert", (dir_ / "server.crt").string(), "--key", (dir_ / "server.key").string()}),
      "000");
  EXPECT_EQ(Curl({"--tls-max", "1.2", "--cert", client_cert, "--key", client_key}), "200");
}

TEST_F(WebSecurityE2eTest, Tls12SessionsUseTheExtendedMasterSecret) {
  // CivetWeb 1.15 sets OpenSSL 1.1's option bits, which on OpenSSL 3 turned the extended master
  // secret (RFC 7627) off, among others; the exporter sets OpenSSL 3's own.
  WriteWebConfig("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
  Start();
  std::string output;
  ASSERT_EQ(RunCommand({"sh", "-c",
                        "openssl s_client -connect 127.0.0.1:" + std::to_string(kPort) +
                            " -tls1_2 -CAfile " + (dir_ / "ca.crt").string() + " </dev/null"},
                       output, 20),
            0)
      << output;
  EXPECT_NE(output.find("Extended master secret: yes"), std::string::npos) << output;
}

TEST_F(WebSecurityE2eTest, AFloodOfWrongPasswordsIsTurnedAwayWhileBcryptSlotsAreBusy) {
  // A cost-13 hash (about half a second per check): wrong passwords sent at once for it find
  // both bcrypt slots busy and get 429 at once instead of queueing for CPU.
  std::array<char, 64> setting{};
  ASSERT_NE(::crypt_gensalt_rn("$2b$", 13, nullptr, 0, setting.data(), setting.size()), nullptr);
  crypt_data data{};
  const std::string slow_hash = ::crypt_rn("slow-secret", setting.data(), &data, sizeof(data));
  WriteWebConfig(std::string("tls_server_config:\n  cert_file: server.crt\n  key_file: "
                             "server.key\nbasic_auth_users:\n  prom: ") +
                 kScrapeSecret + "\n  slow: " + slow_hash + "\n");
  Start();
  ASSERT_EQ(Curl({"-u", "prom:scrape-secret"}), "200");  // remembered from now on
  constexpr int kAttempts = 6;
  std::array<std::string, kAttempts> statuses;
  std::vector<std::thread> attackers;
  for (int i = 0; i < kAttempts; ++i) {
    attackers.emplace_back([this, &statuses, i] {
      std::vector<std::string> args = {"curl",
                                       "-sS",
                                       "-o",
                                       "/dev/null",
                                       "-w",
                                       "%{http_code}",
                                       "--max-time",
                                       "20",
                                       "--cacert",
                                       (dir_ / "ca.crt").string(),
                                       "-u",
                                       "slow:wrong",
                                       kUrl + "/metrics"};
      RunCommand(args, statuses[i], 30);
    });
  }
  for (std::thread& attacker : attackers) {
    attacker.join();
  }
  int busy = 0;
  for (const std::string& status : statuses) {
    EXPECT_TRUE(status == "401" || status == "429") << status;
    busy += status == "429" ? 1 : 0;
  }
  EXPECT_GE(busy, 1);
  EXPECT_LE(busy, kAttempts - 1);  // at least one was checked (and refused)
  ASSERT_EQ(Curl({"-u", "prom:scrape-secret"}), "200");
  EXPECT_NE(Body().find("portwatch_http_requests_rejected_total{reason=\"auth_busy\"} " +
                        std::to_string(busy)),
            std::string::npos)
      << Body();
}

TEST_F(WebSecurityE2eTest, ChangesTakeEffectAndABadFileKeepsTheOldOne) {
  WriteWebConfig(std::string("tls_server_config:\n  cert_file: server.crt\n  key_file: "
                             "server.key\nbasic_auth_users:\n  prom: ") +
                 kScrapeSecret + "\n");
  Start();
  EXPECT_EQ(Curl({"-u", "prom:scrape-secret"}), "200");

  WriteWebConfig(std::string("tls_server_config:\n  cert_file: server.crt\n  key_file: "
                             "server.key\nbasic_auth_users:\n  prom: ") +
                 kRotated + "\n");
  EXPECT_EQ(Curl({"-u", "prom:scrape-secret"}), "401");
  EXPECT_EQ(Curl({"-u", "prom:other"}), "200");

  WriteWebConfig("basic_auth_users: [\n");
  EXPECT_EQ(Curl({"-u", "prom:other"}), "200");  // the previous config stays in force
  EXPECT_NE(Body().find("portwatch_web_config_last_reload_successful 0"), std::string::npos)
      << Body();
  EXPECT_NE(exporter_->Log().find("web config reload failed, keeping the previous one"),
            std::string::npos);
}

TEST_F(WebSecurityE2eTest, ABadWebConfigStopsTheStart) {
  WriteWebConfig("tls_server_config:\n  cert_file: server.crt\n");
  ExporterProcess exporter(
      PORTWATCH_EXPORTER_BINARY,
      std::vector<std::string>{kListen, "--web.config.file=" + (dir_ / "web.yml").string()});
  EXPECT_EQ(exporter.WaitExit(10), 1);
  EXPECT_NE(exporter.Log().find("web.yml:2:3: tls_server_config needs a certificate and its "
                                "key: key_file (or key) is missing"),
            std::string::npos)
      << exporter.Log();
}

TEST_F(WebSecurityE2eTest, ConfigCheckReadsTheWebConfigAndItsCertificates) {
  const std::string web_config = (dir_ / "web.yml").string();
  const std::vector<std::string> check = {PORTWATCH_EXPORTER_BINARY, "--config.check",
                                          "--web.config.file=" + web_config};
  std::string output;
  WriteWebConfig("tls_server_config:\n  cert_file: server.crt\n");
  EXPECT_EQ(RunCommand(check, output), 1);
  EXPECT_NE(output.find("web.yml:2:3: tls_server_config needs a certificate and its key: key_file "
                        "(or key) is missing"),
            std::string::npos)
      << output;
  // A certificate that is not there: the start would fail, so the check does.
  WriteWebConfig("tls_server_config:\n  cert_file: gone.crt\n  key_file: server.key\n");
  EXPECT_EQ(RunCommand(check, output), 1);
  EXPECT_NE(output.find("gone.crt"), std::string::npos) << output;
  WriteWebConfig(std::string("tls_server_config:\n  cert_file: server.crt\n  key_file: "
                             "server.key\nbasic_auth_users:\n  prom: ") +
                 kScrapeSecret + "\n");
  EXPECT_EQ(RunCommand(check, output), 0) << output;
  EXPECT_NE(output.find(web_config + ": web config OK\n"), std::string::npos) << output;
  // The listen address a start would refuse.
  std::vector<std::string> bad_address = check;
  bad_address.push_back("--web.listen-address=127.0.0.1:notaport");
  EXPECT_EQ(RunCommand(bad_address, output), 1);
  EXPECT_NE(output.find("notaport"), std::string::npos) << output;
}

}  // namespace
}  // namespace portwatch::testing
