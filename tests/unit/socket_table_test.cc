#include "collectors/socket_table/socket_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using netlink::Protocol;
using netlink::SocketRecord;
using unit::FamilyNames;
using unit::PeerKey;
using unit::Samples;
using unit::SocketKey;
using Counts = std::map<std::string, double>;

constexpr EphemeralRange kRange{40000, 40999};
constexpr Protocol kTcp = Protocol::kTcp;
constexpr Protocol kUdp = Protocol::kUdp;

SocketRecord Record(uint8_t state, uint16_t local_port, uint16_t remote_port,
                    uint8_t family = AF_INET) {
  SocketRecord record;
  record.family = family;
  record.state = state;
  record.local_port = local_port;
  record.remote_port = remote_port;
  return record;
}

/// Adds `count` copies of a record.
void AddMany(SocketTable& table, Protocol protocol, const SocketRecord& record, int count) {
  for (int i = 0; i < count; ++i) {
    table.Add(protocol, record);
  }
}

struct TableMetrics {
  std::vector<std::string> names;
  Counts sockets;
  Counts peers;
  Counts folded;
  Counts destinations;
  Counts untracked;
};

TableMetrics Metrics(const SocketTable& table, SocketTable::Totals& totals) {
  std::vector<prometheus::MetricFamily> families;
  table.AppendMetrics(families, totals);
  return TableMetrics{FamilyNames(families),
                      Samples(families, "portwatch_sockets"),
                      Samples(families, "portwatch_peer_sockets"),
                      Samples(families, "portwatch_port_series_folded"),
                      Samples(families, "portwatch_ephemeral_destination_sockets"),
                      Samples(families, "portwatch_ephemeral_destination_untracked_sockets")};
}

TableMetrics Metrics(const SocketTable& table) {
  SocketTable::Totals totals;
  return Metrics(table, totals);
}

std::string DestinationKey(const std::string& address, const std::string& port,
                           const std::string& protocol) {
  return "{peer_address=\"" + address + "\",peer_port=\"" + port + "\",protocol=\"" + protocol +
         "\"}";
}

/// A client-side socket from ephemeral port `local_port` to `remote`:`remote_port`.
SocketRecord Client(uint16_t local_port, const std::string& remote, uint16_t remote_port,
                    uint8_t state = netlink::kEstablished) {
  const bool ipv6 = remote.find(':') != std::string::npos;
  SocketRecord record = Record(state, local_port, remote_port, ipv6 ? AF_INET6 : AF_INET);
  ::inet_pton(ipv6 ? AF_INET6 : AF_INET, remote.c_str(), record.remote_address.data());
  return record;
}

Counts Folded(double peer_sockets, double sockets) {
  return {{R"({metric="portwatch_peer_sockets"})", peer_sockets},
          {R"({metric="portwatch_sockets"})", sockets}};
}

TEST(SocketTableTest, IsListening) {
  EXPECT_TRUE(SocketTable::IsListening(kTcp, netlink::kListen));
  EXPECT_FALSE(SocketTable::IsListening(kTcp, netlink::kClose));
  EXPECT_FALSE(SocketTable::IsListening(kTcp, netlink::kEstablished));
  EXPECT_TRUE(SocketTable::IsListening(kUdp, netlink::kClose));
  EXPECT_FALSE(SocketTable::IsListening(kUdp, netlink::kListen));
  EXPECT_FALSE(SocketTable::IsListening(kUdp, netlink::kEstablished));
}

TEST(SocketTableTest, EmptyTableHasFamiliesWithoutSamples) {
  SocketTable table(kRange, {});
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(
      metrics.names,
      (std::vector<std::string>{
          "portwatch_sockets", "portwatch_peer_sockets", "portwatch_ephemeral_destination_sockets",
          "portwatch_ephemeral_destination_untracked_sockets", "portwatch_port_series_folded"}));
  EXPECT_EQ(metrics.sockets, Counts{});
  EXPECT_EQ(metrics.peers, Counts{});
  EXPECT_EQ(metrics.folded, Folded(0, 0));
  EXPECT_EQ(metrics.destinations, Counts{});
  EXPECT_EQ(metrics.untracked, (Counts{{"", 0}}));
}

TEST(SocketTableTest, ListenersKeepTheirPortAndClientsFoldAsEphemeral) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  // Server side of two connections: local port 5000.
  table.Add(kTcp, Record(netlink::kEstablished, 5000, 40001));
  table.Add(kTcp, Record(netlink::kEstablished, 5000, 40002));
  // Client side of the same connections: ephemeral local ports.
  table.Add(kTcp, Record(netlink::kEstablished, 40001, 5000));
  table.Add(kTcp, Record(netlink::kEstablished, 40002, 5000));
  // Client-side TIME_WAIT toward a remote 443, and a client on a fixed port below the range.
  table.Add(kTcp, Record(netlink::kTimeWait, 40999, 443));
  table.Add(kTcp, Record(netlink::kEstablished, 6000, 5000));

  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "5000", "tcp", "established"), 2},
                                 {SocketKey("ipv4", "6000", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 2},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "time_wait"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{
                               {PeerKey("5000", "tcp", "established"), 2},
                               {PeerKey("443", "tcp", "time_wait"), 1},
                           }));
  EXPECT_EQ(metrics.folded, Folded(0, 0));
}

TEST(SocketTableTest, RangeBoundsAreInclusive) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kEstablished, 39999, 80));
  table.Add(kTcp, Record(netlink::kEstablished, 40000, 81));
  table.Add(kTcp, Record(netlink::kEstablished, 40999, 82));
  table.Add(kTcp, Record(netlink::kEstablished, 41000, 83));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "39999", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "41000", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 2},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{
                               {PeerKey("81", "tcp", "established"), 1},
                               {PeerKey("82", "tcp", "established"), 1},
                           }));
}

TEST(SocketTableTest, ListenedOnEphemeralRangePortKeepsItsPort) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kListen, 40500, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 40500, 40123));  // server side
  table.Add(kTcp, Record(netlink::kTimeWait, 40500, 40124));     // server-side TIME_WAIT
  table.Add(kTcp, Record(netlink::kEstablished, 40123, 40500));  // client side

  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "40500", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "40500", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "40500", "tcp", "time_wait"), 1},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("40500", "tcp", "established"), 1}}));
  EXPECT_EQ(metrics.folded, Folded(0, 0));
}

TEST(SocketTableTest, ListenersOnlyProtectTheirOwnProtocol) {
  SocketTable table(kRange, {});
  table.Add(kUdp, Record(netlink::kClose, 40600, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 53));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "40600", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("53", "tcp", "established"), 1}}));
}

TEST(SocketTableTest, UnconnectedUdpCountsAsListening) {
  SocketTable table(kRange, {});
  table.Add(kUdp, Record(netlink::kClose, 5353, 0));
  table.Add(kUdp, Record(netlink::kClose, 40700, 0));           // unconnected, in the range
  table.Add(kUdp, Record(netlink::kEstablished, 40700, 5353));  // connected, same port
  table.Add(kUdp, Record(netlink::kEstablished, 40701, 5353));  // connected client
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5353", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "40700", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "40700", "udp", "established"), 1},
                                 {SocketKey("ipv4", "ephemeral", "udp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("5353", "udp", "established"), 1}}));
}

TEST(SocketTableTest, BoundInactiveTcpSocketKeepsItsFixedPort) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kClose, 6001, 0));  // bind() without listen() or connect()
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{{SocketKey("ipv4", "6001", "tcp", "unconn"), 1}}));
  EXPECT_EQ(metrics.peers, Counts{});
  EXPECT_FALSE(table.ListeningPorts()[0].test(6001));  // it does not make 6001 a server port
}

TEST(SocketTableTest, BoundInactiveTcpSocketOnAnEphemeralPortHasNoPeer) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kClose, 40123, 0));  // bind(port 0): the kernel picked 40123
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{{SocketKey("ipv4", "ephemeral", "tcp", "unconn"), 1}}));
  EXPECT_EQ(metrics.peers, Counts{});
  EXPECT_EQ(metrics.destinations, Counts{});  // not a connection toward 0.0.0.0:0
}

TEST(SocketTableTest, Ipv6FamilyLabel) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kListen, 5001, 0, AF_INET6));
  table.Add(kTcp, Record(netlink::kListen, 5001, 0, AF_INET));
  table.Add(kTcp, Record(netlink::kTimeWait, 40100, 5001, AF_INET6));
  table.Add(kUdp, Record(netlink::kClose, 5354, 0, AF_INET6));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5001", "tcp", "listen"), 1},
                                 {SocketKey("ipv6", "5001", "tcp", "listen"), 1},
                                 {SocketKey("ipv6", "5354", "udp", "unconn"), 1},
                                 {SocketKey("ipv6", "ephemeral", "tcp", "time_wait"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("5001", "tcp", "time_wait"), 1}}));
}

TEST(SocketTableTest, OutOfRangeStateReadsUnknown) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(13, 5000, 0));
  table.Add(kTcp, Record(0, 5000, 0));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{{SocketKey("ipv4", "5000", "tcp", "unknown"), 2}}));
}

TEST(SocketTableTest, MaxPortSeriesFoldsTheQuietestPortsIntoOther) {
  // Three listeners take 3 of the 5 series; two more go to the busiest other ports. Ties are
  // kept in (protocol, port) order: tcp before udp, lower ports first.
  SocketTable table(kRange, {.max_port_series = 5, .max_peer_port_series = 100});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  table.Add(kTcp, Record(netlink::kListen, 5001, 0));
  table.Add(kUdp, Record(netlink::kClose, 5353, 0));
  AddMany(table, kTcp, Record(netlink::kEstablished, 5000, 7000), 4);  // a listener's port
  AddMany(table, kTcp, Record(netlink::kEstablished, 6001, 5000), 3);  // tcp 6001: 3
  AddMany(table, kTcp, Record(netlink::kEstablished, 6004, 5000), 2);  // tcp 6004: 2
  AddMany(table, kTcp, Record(netlink::kTimeWait, 6003, 5000), 1);     // tcp 6003: 1 + 1,
  AddMany(table, kTcp, Record(netlink::kEstablished, 6003, 5000), 1);  //   summed over states
  AddMany(table, kUdp, Record(netlink::kEstablished, 6002, 5353), 2);  // udp 6002: 2
  AddMany(table, kTcp, Record(netlink::kEstablished, 6005, 5000), 1);  // tcp 6005: 1
  AddMany(table, kTcp, Record(netlink::kEstablished, 6006, 5000, AF_INET6), 1);  // tcp 6006: 1

  TableMetrics metrics = Metrics(table);
  // Ranking: tcp 6001 (3), tcp 6003 (2), tcp 6004 (2), udp 6002 (2), tcp 6005 (1), tcp 6006 (1)
  // (families summed). Two kept: tcp 6001 and tcp 6003, the lowest port of the tie at 2.
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "5001", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "5353", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "5000", "tcp", "established"), 4},
                                 {SocketKey("ipv4", "6001", "tcp", "established"), 3},
                                 {SocketKey("ipv4", "6003", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "6003", "tcp", "time_wait"), 1},
                                 {SocketKey("ipv4", "other", "tcp", "established"), 2 + 1},
                                 {SocketKey("ipv4", "other", "udp", "established"), 2},
                                 {SocketKey("ipv6", "other", "tcp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, Counts{});
  EXPECT_EQ(metrics.folded, Folded(0, 4));  // tcp 6004, udp 6002, tcp 6005, tcp 6006
}

TEST(SocketTableTest, MaxPortSeriesNeverFoldsListeners) {
  // A cap below the number of listening ports folds every other port but no listener.
  SocketTable table(kRange, {.max_port_series = 1, .max_peer_port_series = 100});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  table.Add(kTcp, Record(netlink::kListen, 5001, 0));
  table.Add(kUdp, Record(netlink::kClose, 5353, 0));
  table.Add(kUdp, Record(netlink::kClose, 40400, 0));
  AddMany(table, kTcp, Record(netlink::kEstablished, 5001, 40001), 5);
  AddMany(table, kTcp, Record(netlink::kEstablished, 6000, 5000), 9);
  table.Add(kTcp, Record(netlink::kEstablished, 40001, 5001));  // ephemeral: not a candidate

  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "5001", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "5001", "tcp", "established"), 5},
                                 {SocketKey("ipv4", "5353", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "40400", "udp", "unconn"), 1},
                                 {SocketKey("ipv4", "other", "tcp", "established"), 9},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("5001", "tcp", "established"), 1}}));
  EXPECT_EQ(metrics.folded, Folded(0, 1));
}

TEST(SocketTableTest, ConfiguredServicePortsKeepTheirSeriesLikeListeners) {
  // Port 7000 is a configured service's (tcp only): nothing listens there now, yet it keeps its
  // series and counts against the cap like a listener; 7001 has more sockets but folds.
  const SocketTable::ListeningSet service_ports = [] {
    SocketTable::ListeningSet ports(2);
    ports[0].set(7000);
    ports[1].set(7001);  // a udp service: does not protect tcp 7001
    return ports;
  }();
  SocketTable table(
      kRange, {.max_port_series = 2, .max_peer_port_series = 100, .always_kept = &service_ports});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  AddMany(table, kTcp, Record(netlink::kTimeWait, 7000, 40001), 2);
  AddMany(table, kTcp, Record(netlink::kEstablished, 7001, 40002), 4);
  AddMany(table, kTcp, Record(netlink::kEstablished, 7002, 40003), 3);

  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "7000", "tcp", "time_wait"), 2},
                                 {SocketKey("ipv4", "other", "tcp", "established"), 7},
                             }));
  EXPECT_EQ(metrics.folded, Folded(0, 2));
}

TEST(SocketTableTest, MaxPortSeriesNotReachedFoldsNothing) {
  SocketTable table(kRange, {.max_port_series = 3, .max_peer_port_series = 100});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 6000, 5000));
  table.Add(kUdp, Record(netlink::kEstablished, 6000, 53));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "6000", "tcp", "established"), 1},
                                 {SocketKey("ipv4", "6000", "udp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.folded, Folded(0, 0));
}

TEST(SocketTableTest, MaxPeerPortSeriesFoldsTheQuietestPeerPorts) {
  SocketTable table(kRange, {.max_port_series = 1000, .max_peer_port_series = 2});
  AddMany(table, kTcp, Record(netlink::kEstablished, 40001, 443), 2);
  AddMany(table, kTcp, Record(netlink::kTimeWait, 40002, 443), 1);      // 443: 3 in all
  AddMany(table, kUdp, Record(netlink::kEstablished, 40003, 53), 2);    // udp 53: 2
  AddMany(table, kTcp, Record(netlink::kEstablished, 40004, 8080), 2);  // tcp 8080: 2
  AddMany(table, kTcp, Record(netlink::kTimeWait, 40005, 80), 1);       // tcp 80: 1

  TableMetrics metrics = Metrics(table);
  // Ranking: tcp 443 (3), tcp 8080 (2, tcp before udp), udp 53 (2), tcp 80 (1).
  EXPECT_EQ(metrics.peers, (Counts{
                               {PeerKey("443", "tcp", "established"), 2},
                               {PeerKey("443", "tcp", "time_wait"), 1},
                               {PeerKey("8080", "tcp", "established"), 2},
                               {PeerKey("other", "tcp", "time_wait"), 1},
                               {PeerKey("other", "udp", "established"), 2},
                           }));
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "ephemeral", "tcp", "established"), 4},
                                 {SocketKey("ipv4", "ephemeral", "tcp", "time_wait"), 2},
                                 {SocketKey("ipv4", "ephemeral", "udp", "established"), 2},
                             }));
  EXPECT_EQ(metrics.folded, Folded(2, 0));
}

TEST(SocketTableTest, PeerPortTiesKeepTheLowerPort) {
  SocketTable table(kRange, {.max_port_series = 1000, .max_peer_port_series = 1});
  table.Add(kTcp, Record(netlink::kEstablished, 40001, 9000));
  table.Add(kTcp, Record(netlink::kEstablished, 40002, 8000));
  table.Add(kTcp, Record(netlink::kEstablished, 40003, 8500));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.peers, (Counts{
                               {PeerKey("8000", "tcp", "established"), 1},
                               {PeerKey("other", "tcp", "established"), 2},
                           }));
  EXPECT_EQ(metrics.folded, Folded(2, 0));
}

TEST(SocketTableTest, TotalsReusedByTheNextScrapeStartFromZero) {
  // The ranking behind max_port_series and max_peer_port_series reads the totals: left over from
  // the first table, they would keep 6000 and peer port 80 instead of 6001 and 443.
  const SocketTable::Limits one_each{
      .max_port_series = 1, .max_peer_port_series = 1, .top_destinations = 10};
  SocketTable first(kRange, one_each);
  AddMany(first, kTcp, Record(netlink::kEstablished, 6000, 30000), 5);
  AddMany(first, kTcp, Client(40001, "192.0.2.1", 80), 5);
  SocketTable second(kRange, one_each);
  AddMany(second, kTcp, Record(netlink::kEstablished, 6000, 30000), 1);
  AddMany(second, kTcp, Record(netlink::kEstablished, 6001, 30000), 2);
  AddMany(second, kTcp, Client(40001, "192.0.2.1", 80), 1);
  AddMany(second, kTcp, Client(40002, "192.0.2.1", 443), 2);

  SocketTable::Totals totals;
  Metrics(first, totals);
  const TableMetrics reused = Metrics(second, totals);
  EXPECT_EQ(reused.sockets, (Counts{
                                {SocketKey("ipv4", "6001", "tcp", "established"), 2},
                                {SocketKey("ipv4", "other", "tcp", "established"), 1},
                                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 3},
                            }));
  EXPECT_EQ(reused.peers, (Counts{
                              {PeerKey("443", "tcp", "established"), 2},
                              {PeerKey("other", "tcp", "established"), 1},
                          }));
  EXPECT_EQ(reused.folded, Folded(1, 1));
}

/// Listeners on 5000 (tcp) and 5353 (udp), a server-side and a client-side connection on 5000
/// and a client-side udp socket toward 5353.
void AddFewSockets(SocketTable& table) {
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 5000, 40001));
  table.Add(kTcp, Record(netlink::kEstablished, 40001, 5000));
  table.Add(kUdp, Record(netlink::kClose, 5353, 0));
  table.Add(kUdp, Client(40002, "192.0.2.1", 5353));
}

TEST(SocketTableTest, CountArraysReusedByTheNextTableStartFromZero) {
  // The first table uses the second's ports and states, other ports in those states, and states
  // (both families, local and peer) the second never uses.
  SocketTable first(kRange, {});
  AddMany(first, kTcp, Record(netlink::kListen, 5000, 0), 3);
  AddMany(first, kTcp, Record(netlink::kEstablished, 5000, 40001), 4);
  AddMany(first, kTcp, Record(netlink::kEstablished, 6000, 30000), 5);
  AddMany(first, kTcp, Client(40001, "192.0.2.1", 5000), 6);
  AddMany(first, kTcp, Client(40003, "192.0.2.1", 7000, netlink::kTimeWait), 7);
  AddMany(first, kTcp, Client(40004, "2001:db8::1", 8000, netlink::kSynSent), 8);
  AddMany(first, kTcp, Record(netlink::kCloseWait, 6001, 30001, AF_INET6), 9);
  AddMany(first, kUdp, Record(netlink::kClose, 5353, 0), 2);
  AddMany(first, kUdp, Client(40002, "192.0.2.1", 5353), 3);
  Metrics(first);

  SocketTable second(kRange, {}, {}, first.ReleaseCountArrays());
  AddFewSockets(second);
  SocketTable fresh(kRange, {});
  AddFewSockets(fresh);
  const TableMetrics expected = Metrics(fresh);
  ASSERT_EQ(expected.sockets.size(), 5U);
  ASSERT_EQ(expected.peers.size(), 2U);
  const TableMetrics reused = Metrics(second);
  EXPECT_EQ(reused.sockets, expected.sockets);
  EXPECT_EQ(reused.peers, expected.peers);
  EXPECT_EQ(reused.folded, expected.folded);

  // And once more, from a table that used fewer arrays than the one before it.
  SocketTable third(kRange, {}, {}, second.ReleaseCountArrays());
  AddFewSockets(third);
  const TableMetrics again = Metrics(third);
  EXPECT_EQ(again.sockets, expected.sockets);
  EXPECT_EQ(again.peers, expected.peers);
}

TEST(SocketTableTest, TableReleasingItsCountArraysCountsNothing) {
  SocketTable table(kRange, {});
  AddFewSockets(table);
  table.ReleaseCountArrays();
  const TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, Counts{});
  EXPECT_EQ(metrics.peers, Counts{});
}

TEST(SocketTableTest, ListenerAfterItsClientSideSocketsIsLate) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 5000));  // counted as a client
  EXPECT_FALSE(table.HasLateListeners());
  table.Add(kTcp, Record(netlink::kListen, 40600, 0, AF_INET6));
  EXPECT_TRUE(table.HasLateListeners());
  EXPECT_TRUE(table.ListeningPorts()[0].test(40600));
}

TEST(SocketTableTest, ListenersBeforeTheirSocketsAreNotLate) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kListen, 40600, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 5000));
  // A listener on a port whose sockets were not folded (outside the range, or other protocol).
  table.Add(kTcp, Record(netlink::kEstablished, 6000, 5000));
  table.Add(kTcp, Record(netlink::kListen, 6000, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 40700, 53));
  table.Add(kUdp, Record(netlink::kClose, 40700, 0));
  EXPECT_FALSE(table.HasLateListeners());
}

TEST(SocketTableTest, ListeningPortsArePerProtocol) {
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kListen, 5000, 0));
  table.Add(kUdp, Record(netlink::kClose, 5353, 0));
  table.Add(kUdp, Record(netlink::kEstablished, 40001, 5353));
  const SocketTable::ListeningSet& listening = table.ListeningPorts();
  ASSERT_EQ(listening.size(), 2U);
  EXPECT_EQ(listening[0].count(), 1U);
  EXPECT_TRUE(listening[0].test(5000));
  EXPECT_EQ(listening[1].count(), 1U);
  EXPECT_TRUE(listening[1].test(5353));
}

TEST(SocketTableTest, SeededListenersApplyFromTheFirstSocket) {
  SocketTable::ListeningSet seed(2);
  seed[0].set(40600);
  SocketTable table(kRange, {}, seed);
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 5000));
  table.Add(kTcp, Record(netlink::kListen, 40600, 0, AF_INET6));
  table.Add(kUdp, Record(netlink::kEstablished, 40600, 53));  // the seed is per protocol
  EXPECT_FALSE(table.HasLateListeners());
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "40600", "tcp", "established"), 1},
                                 {SocketKey("ipv6", "40600", "tcp", "listen"), 1},
                                 {SocketKey("ipv4", "ephemeral", "udp", "established"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("53", "udp", "established"), 1}}));
}

TEST(SocketTableTest, SeedOfTheWrongShapeIsIgnored) {
  SocketTable::ListeningSet seed(1);
  seed[0].set(40600);
  SocketTable table(kRange, {}, seed);
  ASSERT_EQ(table.ListeningPorts().size(), 2U);
  EXPECT_EQ(table.ListeningPorts()[0].count(), 0U);
  EXPECT_EQ(table.ListeningPorts()[1].count(), 0U);
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 5000));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{{SocketKey("ipv4", "ephemeral", "tcp", "established"), 1}}));
}

TEST(SocketTableTest, LateListenerRelabelsButKeepsThePeerCount) {
  // Why the collector reads again: a table that saw the client first counts it both ways.
  SocketTable table(kRange, {});
  table.Add(kTcp, Record(netlink::kEstablished, 40600, 5000));
  table.Add(kTcp, Record(netlink::kListen, 40600, 0, AF_INET6));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.sockets, (Counts{
                                 {SocketKey("ipv4", "40600", "tcp", "established"), 1},
                                 {SocketKey("ipv6", "40600", "tcp", "listen"), 1},
                             }));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("5000", "tcp", "established"), 1}}));
}

TEST(SocketTableTest, BusiestDestinationsOfClientSockets) {
  SocketTable table(kRange,
                    {.max_port_series = 1000, .max_peer_port_series = 100, .top_destinations = 3});
  table.Add(kTcp, Record(netlink::kListen, 8443, 0));
  table.Add(kTcp, Record(netlink::kEstablished, 8443, 40900));  // server side: no destination
  for (uint16_t port : {40001, 40002}) {
    table.Add(kTcp, Client(port, "10.0.0.1", 443));
  }
  table.Add(kTcp, Client(40003, "10.0.0.1", 443, netlink::kTimeWait));  // every state counts
  table.Add(kTcp, Client(40004, "10.0.0.2", 443));
  table.Add(kTcp, Client(40005, "2001:db8::1", 443));
  table.Add(kTcp, Client(40006, "2001:db8::1", 443));
  table.Add(kUdp, Client(40007, "10.0.0.1", 53));
  table.Add(kUdp, Client(40008, "10.0.0.1", 53));
  table.Add(kTcp, Client(6000, "10.0.0.3", 443));  // fixed local port: not client-side
  TableMetrics metrics = Metrics(table);
  // 10.0.0.1:443 (3), then the ties at 2 by port and address: udp 10.0.0.1:53, then
  // [2001:db8::1]:443; 10.0.0.2:443 (1) is past top_destinations.
  EXPECT_EQ(metrics.destinations, (Counts{
                                      {DestinationKey("10.0.0.1", "443", "tcp"), 3},
                                      {DestinationKey("10.0.0.1", "53", "udp"), 2},
                                      {DestinationKey("2001:db8::1", "443", "tcp"), 2},
                                  }));
  EXPECT_EQ(metrics.untracked, (Counts{{"", 0}}));
}

/// Two destinations with one socket each, in a table with room for one: `winner` must be the one
/// shown whichever of the two is read first.
void ExpectTieGoesTo(const std::string& winner_key, Protocol winner_protocol,
                     const SocketRecord& winner, Protocol loser_protocol,
                     const SocketRecord& loser) {
  for (const bool winner_first : {true, false}) {
    SocketTable table(
        kRange, {.max_port_series = 1000, .max_peer_port_series = 100, .top_destinations = 1});
    table.Add(winner_first ? winner_protocol : loser_protocol, winner_first ? winner : loser);
    table.Add(winner_first ? loser_protocol : winner_protocol, winner_first ? loser : winner);
    EXPECT_EQ(Metrics(table).destinations, (Counts{{winner_key, 1}}))
        << (winner_first ? "read first" : "read second");
  }
}

TEST(SocketTableTest, DestinationTiesAtTheCutDoNotDependOnTheReadingOrder) {
  // Same address and port over TCP and over UDP: TCP.
  ExpectTieGoesTo(DestinationKey("192.0.2.1", "53", "tcp"), kTcp, Client(40001, "192.0.2.1", 53),
                  kUdp, Client(40002, "192.0.2.1", 53));
  // 192.0.2.1 and c000:201:: have the same 16 address bytes (IPv4 zero-padded): IPv4.
  ExpectTieGoesTo(DestinationKey("192.0.2.1", "80", "tcp"), kTcp, Client(40001, "192.0.2.1", 80),
                  kTcp, Client(40002, "c000:201::", 80));
}

TEST(SocketTableTest, DestinationIgnoresBytesPastAnIpv4Address) {
  SocketTable table(kRange, {});
  SocketRecord first = Client(40001, "192.0.2.1", 80);
  SocketRecord second = Client(40002, "192.0.2.1", 80);
  second.remote_address[8] = 0xaa;  // garbage a decoder could leave: the same destination
  table.Add(kTcp, first);
  table.Add(kTcp, second);
  EXPECT_EQ(Metrics(table).destinations, (Counts{{DestinationKey("192.0.2.1", "80", "tcp"), 2}}));
}

TEST(SocketTableTest, NoDestinationsWhenTopDestinationsIsZero) {
  SocketTable table(kRange,
                    {.max_port_series = 1000, .max_peer_port_series = 100, .top_destinations = 0});
  table.Add(kTcp, Client(40001, "10.0.0.1", 443));
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.destinations, Counts{});
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("443", "tcp", "established"), 1}}));
}

TEST(SocketTableTest, DestinationsBeyond65536AreCountedAsUntracked) {
  SocketTable table(kRange,
                    {.max_port_series = 1000, .max_peer_port_series = 100, .top_destinations = 1});
  // 65536 distinct destinations: 10.0.<hi>.<lo>:1000.
  for (uint32_t i = 0; i < 65536; ++i) {
    SocketRecord record = Client(40001, "10.0.0.0", 1000);
    record.remote_address[2] = static_cast<uint8_t>(i >> 8);
    record.remote_address[3] = static_cast<uint8_t>(i);
    table.Add(kTcp, record);
  }
  table.Add(kTcp, Client(40002, "10.0.0.5", 1000));  // already tracked
  table.Add(kTcp, Client(40003, "10.1.0.0", 1000));  // new: untracked
  table.Add(kTcp, Client(40004, "10.1.0.1", 1000));  // new: untracked
  TableMetrics metrics = Metrics(table);
  EXPECT_EQ(metrics.destinations, (Counts{{DestinationKey("10.0.0.5", "1000", "tcp"), 2}}));
  EXPECT_EQ(metrics.untracked, (Counts{{"", 2}}));
  EXPECT_EQ(metrics.peers, (Counts{{PeerKey("1000", "tcp", "established"), 65539}}));
}

}  // namespace
}  // namespace portwatch
