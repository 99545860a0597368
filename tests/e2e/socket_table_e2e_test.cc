// End to end: a known socket table in a private network namespace, the real exporter binary
// inside it, and exact counts asserted on a real /metrics scrape.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/known_socket_table.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kExporterPort = 9792;
constexpr const char* kEphemeralRange = "40000 40999";

using Labels = std::map<std::string, std::string>;

class SocketTableE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_port_range", kEphemeralRange), "");
  }

  /// Scrapes until every expectation holds or 5 s pass (closing handshakes settle
  /// asynchronously), then returns the last scrape for exact assertions.
  Exposition ScrapeUntil(const std::map<std::string, double>& expected) {
    std::string last;
    for (int attempt = 0; attempt < 50; ++attempt) {
      HttpResponse response = HttpRequest(kExporterPort, "GET", "/metrics");
      last = response.status == 200
                 ? response.body
                 : "scrape failed: " + std::to_string(response.status) + " " + response.error;
      Exposition exposition(last);
      bool all = response.status == 200;
      for (const auto& [key, value] : expected) {
        auto found = exposition.Samples().find(key);
        all = all && found != exposition.Samples().end() && found->second == value;
      }
      if (all) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Exposition(last);
  }
};

std::string Sockets(const std::string& protocol, const std::string& family,
                    const std::string& state, const std::string& port) {
  return SeriesKey("portwatch_sockets",
                   {{"family", family}, {"port", port}, {"protocol", protocol}, {"state", state}});
}

std::string Peers(const std::string& protocol, const std::string& state,
                  const std::string& peer_port) {
  return SeriesKey("portwatch_peer_sockets",
                   {{"peer_port", peer_port}, {"protocol", protocol}, {"state", state}});
}

TEST_F(SocketTableE2eTest, CountsEveryKindOfSocketExactly) {
  KnownSocketTable table;
  ASSERT_TRUE(table.Build());

  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort)});
  ASSERT_TRUE(exporter.WaitReady(kExporterPort)) << exporter.Log();

  // The scrape itself is one more connection: its client side folds as ephemeral.
  const std::map<std::string, double> expected = {
      {Sockets("tcp", "ipv4", "listen", "5000"), 1},
      {Sockets("tcp", "ipv4", "established", "5000"), 3 + 1 + 1},
      {Sockets("tcp", "ipv6", "listen", "40600"), 1},
      {Sockets("tcp", "ipv4", "established", "40600"), 1},
      {Sockets("tcp", "ipv4", "time_wait", "5000"), 2},
      {Sockets("tcp", "ipv6", "listen", "5001"), 1},
      {Sockets("tcp", "ipv6", "time_wait", "ephemeral"), 4},
      {Sockets("tcp", "ipv4", "listen", "40500"), 1},
      {Sockets("tcp", "ipv4", "established", "40500"), 1},
      {Sockets("tcp", "ipv4", "listen", "5002"), 1},
      {Sockets("tcp", "ipv4", "syn_recv", "5002"), 2},
      {Sockets("tcp", "ipv4", "established", "ephemeral"), 3 + 1 + 2 + 1},
      {Sockets("tcp", "ipv4", "established", "6000"), 1},
      {Sockets("tcp", "ipv4", "listen", std::to_string(kExporterPort)), 1},
      {Sockets("tcp", "ipv4", "established", std::to_string(kExporterPort)), 1},
      {Sockets("udp", "ipv4", "unconn", "5353"), 1},
      {Sockets("udp", "ipv6", "unconn", "5354"), 1},
      {Sockets("udp", "ipv4", "established", "ephemeral"), 1},
      {Sockets("udp", "ipv4", "unconn", "7000"), 1},
      {Peers("tcp", "established", "5000"), 3},
      {Peers("tcp", "established", "40500"), 1},
      {Peers("tcp", "established", "5002"), 2},
      {Peers("tcp", "established", std::to_string(kExporterPort)), 1},
      {Peers("tcp", "time_wait", "5001"), 4},
      {Peers("udp", "established", "5353"), 1},
      {SeriesKey("portwatch_ephemeral_destination_sockets",
                 {{"peer_address", "::1"}, {"peer_port", "5001"}, {"protocol", "tcp"}}),
       4},
      {SeriesKey("portwatch_ephemeral_destination_sockets",
                 {{"peer_address", "127.0.0.1"}, {"peer_port", "5000"}, {"protocol", "tcp"}}),
       3},
      {SeriesKey("portwatch_ephemeral_destination_sockets",
                 {{"peer_address", "127.0.0.1"}, {"peer_port", "5353"}, {"protocol", "udp"}}),
       1},
      {SeriesKey("portwatch_ephemeral_ports_available", {}), 1000},
  };
  Exposition metrics = ScrapeUntil(expected);
  for (const auto& [series, value] : expected) {
    auto found = metrics.Samples().find(series);
    ASSERT_NE(found, metrics.Samples().end()) << series << " missing from\n" << metrics.Text();
    EXPECT_EQ(found->second, value) << series;
  }
  // Nothing else: no series for a port we did not create, nothing folded by the cap.
  EXPECT_EQ(metrics.Sum("portwatch_sockets", {{"protocol", "udp"}}), 4);
  EXPECT_EQ(metrics.Sum("portwatch_peer_sockets", {{"protocol", "udp"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_port_series_folded", {{"metric", "portwatch_sockets"}}), 0);
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_first"), 40000);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_last"), 40999);
  // Every client-side socket is counted toward its destination: 3 + 1 + 2 + 1 (the scrape)
  // established, 4 TIME_WAIT, 1 UDP.
  EXPECT_EQ(metrics.Sum("portwatch_ephemeral_destination_sockets"), 3 + 1 + 2 + 1 + 4 + 1);
  EXPECT_EQ(
      metrics.Value("portwatch_scrape_sockets_read", {{"family", "ipv4"}, {"protocol", "udp"}}), 3);
}

TEST_F(SocketTableE2eTest, CardinalityCapFoldsTheQuietestPortsButNeverListeners) {
  const std::string config_path = ::testing::TempDir() + "/portwatch-cap.yaml";
  std::ofstream(config_path)
      << "collectors:\n  sockets:\n    max_port_series: 3\n    bound_inactive: true\n";
  // Three listeners (5000, 5001 and the exporter's own) are never folded; they use the whole
  // budget, so every other port folds into "other".
  UniqueFd listener_a = Listen("127.0.0.1", 5000);
  UniqueFd listener_b = Listen("127.0.0.1", 5001);
  std::vector<UniqueFd> held;
  for (uint16_t port : {6001, 6002, 6003, 6004}) {
    held.push_back(ConnectFrom(SOCK_STREAM, "127.0.0.1", port, "127.0.0.1", 5000));
    ASSERT_TRUE(held.back().Valid());
  }
  // Bound, never listening nor connected: counted only with bound_inactive (Linux 6.10+).
  held.push_back(Bind(SOCK_STREAM, "127.0.0.1", 6005));
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort),
                            "--config.file=" + config_path, "--no-collector.netstat"});
  ASSERT_TRUE(exporter.WaitReady(kExporterPort)) << exporter.Log();
  Exposition metrics = ScrapeUntil({{Sockets("tcp", "ipv4", "established", "other"), 4}});
  EXPECT_EQ(metrics.Value(
                "portwatch_sockets",
                {{"family", "ipv4"}, {"port", "5000"}, {"protocol", "tcp"}, {"state", "listen"}}),
            1);
  EXPECT_EQ(metrics.Value("portwatch_port_series_folded", {{"metric", "portwatch_sockets"}}), 5);
  EXPECT_EQ(metrics.Value(
                "portwatch_sockets",
                {{"family", "ipv4"}, {"port", "other"}, {"protocol", "tcp"}, {"state", "unconn"}}),
            1);
  EXPECT_EQ(
      metrics.Value(
          "portwatch_sockets",
          {{"family", "ipv4"}, {"port", "other"}, {"protocol", "tcp"}, {"state", "established"}}),
      4);
  EXPECT_EQ(metrics.Value(
                "portwatch_sockets",
                {{"family", "ipv4"}, {"port", "5001"}, {"protocol", "tcp"}, {"state", "listen"}}),
            1);
  // --no-collector.netstat turned that collector off.
  EXPECT_FALSE(metrics.Value("portwatch_scrape_collector_success", {{"collector", "netstat"}}));
  EXPECT_FALSE(metrics.Value("portwatch_tcpext_listen_drops_total"));
  ::unlink(config_path.c_str());
}

}  // namespace
}  // namespace portwatch::testing
