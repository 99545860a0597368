#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/netlink/sock_diag.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// Per-scrape aggregate of the socket table. Memory is bounded by the port space, never by the
/// number of sockets: each (protocol, family, state) gets one dense per-port counter array.
///
/// A socket whose local port lies in the ephemeral range and that nobody listens on (no TCP
/// LISTEN / unconnected UDP socket of that protocol) is a client-side socket: it folds into
/// port="ephemeral" and is counted by its remote port instead. That decision is made while
/// reading, so no socket has to be stored. The kernel lists a family's TCP listeners before its
/// other sockets, but not across families nor for UDP: when a listener turns up on a port whose
/// sockets were already counted as client-side, HasLateListeners() says so, and the caller reads
/// the table again into a SocketTable seeded with ListeningPorts().
class SocketTable {
  static constexpr size_t kPorts = 65536;
  static constexpr size_t kStates = netlink::kMaxState + 1;
  static constexpr size_t kProtocols = 2;
  static constexpr size_t kFamilies = 2;
  using PortCounts = std::array<uint32_t, kPorts>;

 public:
  /// Per protocol (tcp, udp), the ports with a listening socket.
  using ListeningSet = std::vector<std::bitset<65536>>;
  struct Limits {
    size_t max_port_series = 1000;
    size_t max_peer_port_series = 100;
    /// Busiest remote address:port destinations to expose.
    size_t top_destinations = 10;
    /// Per protocol, ports that keep their series like listening ones (the configured
    /// services' ports); null: none. Must outlive the table.
    const ListeningSet* always_kept = nullptr;
  };

  /// The per-port count arrays a table fills, one per (protocol, family, state) and per
  /// (protocol, state) of client-side sockets in use (256 KiB each). Hand them from one table to
  /// the next (ReleaseCountArrays, then the constructor) to keep them across scrapes: a table
  /// allocates only those its predecessor did not use, and hands them back all zero (it clears
  /// only the ports it touched, so a pod with a few sockets costs a few entries, not 256 KiB).
  class CountArrays {
   private:
    friend class SocketTable;
    std::array<std::unique_ptr<PortCounts>, kProtocols * kFamilies * kStates> local_;
    std::array<std::unique_ptr<PortCounts>, kProtocols * kStates> peer_;
  };

  SocketTable(EphemeralRange range, Limits limits, ListeningSet seed = {}, CountArrays arrays = {});

  static bool IsListening(netlink::Protocol protocol, uint8_t state);

  void Add(netlink::Protocol protocol, const netlink::SocketRecord& record);
  bool HasLateListeners() const { return late_listeners_; }
  const ListeningSet& ListeningPorts() const { return listening_; }

  /// Working memory of AppendMetrics: every port's socket count per protocol, as a local and as
  /// a peer port (2 MiB). Keep one across scrapes: only the first use allocates, and each use
  /// writes (and later reads) only the ports its table touched.
  class Totals {
   private:
    friend class SocketTable;
    void Allocate();
    uint64_t& Local(size_t protocol, uint32_t port) { return local_[protocol * kPorts + port]; }
    uint64_t& Peer(size_t protocol, uint32_t port) { return peer_[protocol * kPorts + port]; }

    std::vector<uint64_t> local_;
    std::vector<uint64_t> peer_;
  };

  /// portwatch_sockets, portwatch_peer_sockets and portwatch_port_series_folded.
  void AppendMetrics(std::vector<prometheus::MetricFamily>& out, Totals& totals) const;

  /// The count arrays this table used, for the next table; the others are freed. The table
  /// counts nothing afterwards.
  CountArrays ReleaseCountArrays();

 private:
  struct RankedPort {
    uint64_t sockets;
    size_t protocol;
    uint32_t port;
  };
  /// Which (protocol, port) pairs keep their own series: every protected one, then the busiest
  /// of `candidates` up to `cap` in total; the rest are folded.
  class SeriesBudget {
   public:
    SeriesBudget(std::vector<RankedPort> candidates, size_t protected_count, size_t cap);
    bool Folded(size_t protocol, uint32_t port) const { return folded_[protocol].test(port); }
    size_t FoldedCount() const { return folded_count_; }

   private:
    std::vector<std::bitset<kPorts>> folded_;  // on the heap: 16 KiB
    size_t folded_count_ = 0;
  };

  // The steps of AppendMetrics.
  void SumPerPort(Totals& totals) const;
  SeriesBudget LocalPortBudget(Totals& totals) const;
  SeriesBudget PeerPortBudget(Totals& totals) const;
  void AppendSockets(const SeriesBudget& budget, std::vector<prometheus::MetricFamily>& out) const;
  void AppendPeerSockets(const SeriesBudget& budget,
                         std::vector<prometheus::MetricFamily>& out) const;
  void AppendDestinations(std::vector<prometheus::MetricFamily>& out) const;

  /// This table's array at `used`, taken from `kept` (zeroed, or allocated) on first use.
  static PortCounts& Use(PortCounts*& used, std::unique_ptr<PortCounts>& kept);

  static size_t LocalIndex(size_t protocol, size_t family, size_t state) {
    return (protocol * kFamilies + family) * kStates + state;
  }
  static size_t PeerIndex(size_t protocol, size_t state) { return protocol * kStates + state; }
  bool FoldsAsEphemeral(size_t protocol, uint32_t port) const {
    return range_.Contains(port) && !listening_[protocol].test(port);
  }

  /// A remote endpoint client-side sockets talk to: family, address, port and protocol packed.
  struct Destination {
    std::array<uint8_t, 16> address;
    uint16_t port;
    uint8_t family_index;
    uint8_t protocol_index;
    bool operator==(const Destination& other) const = default;
  };
  struct DestinationHash {
    size_t operator()(const Destination& destination) const;
  };
  /// Distinct destinations tracked per scrape; past it new ones are only counted as untracked.
  static constexpr size_t kMaxDestinations = 65536;

  EphemeralRange range_;
  Limits limits_;
  std::unordered_map<Destination, uint32_t, DestinationHash> destinations_;
  uint64_t untracked_destination_sockets_ = 0;
  CountArrays arrays_;
  /// The arrays of arrays_ this table counts into (zeroed at first use); null for the others,
  /// which may still hold a previous table's counts.
  std::array<PortCounts*, kProtocols * kFamilies * kStates> local_{};
  std::array<PortCounts*, kProtocols * kStates> peer_{};
  // On the heap, like everything sized by the port space: web threads have small stacks.
  ListeningSet listening_;
  ListeningSet counted_as_client_;  ///< ephemeral ports whose sockets went to peer counts
  /// Per protocol, the ports with a count in any local (touched_local_) or peer (touched_peer_)
  /// array: every pass over the port space visits only these.
  ListeningSet touched_local_;
  ListeningSet touched_peer_;
  bool late_listeners_ = false;
};

}  // namespace portwatch
