#include "collectors/socket_table/socket_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "collectors/collector.h"
#include "collectors/common/family_builder.h"

namespace portwatch {

namespace {

using netlink::Protocol;

constexpr std::array<Protocol, 2> kProtocolsInOrder = {Protocol::kTcp, Protocol::kUdp};
constexpr std::array<netlink::Family, 2> kFamiliesInOrder = {netlink::Family::kIpv4,
                                                             netlink::Family::kIpv6};

/// Calls `visit(port)` for each set bit of `ports`, lowest first: a pod's table touches a few
/// ports, and each pass over the port space costs as many as are set (plus a word scan).
template <typename Visit>
void ForEachPort(const std::bitset<65536>& ports, Visit visit) {
  for (size_t port = ports._Find_first(); port < ports.size(); port = ports._Find_next(port)) {
    visit(static_cast<uint32_t>(port));
  }
}

}  // namespace

size_t SocketTable::DestinationHash::operator()(const Destination& destination) const {
  // FNV-1a over the packed fields: cheap, and good enough for addresses and ports.
  uint64_t hash = 1469598103934665603ULL;
  auto mix = [&hash](uint8_t byte) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  };
  for (uint8_t byte : destination.address) {
    mix(byte);
  }
  mix(static_cast<uint8_t>(destination.port >> 8));
  mix(static_cast<uint8_t>(destination.port));
  mix(destination.family_index);
  mix(destination.protocol_index);
  return static_cast<size_t>(hash);
}

SocketTable::SocketTable(EphemeralRange range, Limits limits, ListeningSet seed, CountArrays arrays)
    : range_(range),
      limits_(limits),
      arrays_(std::move(arrays)),
      listening_(seed.size() == kProtocols ? std::move(seed) : ListeningSet(kProtocols)),
      counted_as_client_(kProtocols),
      touched_local_(kProtocols),
      touched_peer_(kProtocols) {}

SocketTable::PortCounts& SocketTable::Use(PortCounts*& used, std::unique_ptr<PortCounts>& kept) {
  if (used == nullptr) {
    if (!kept) {
      kept = std::make_unique<PortCounts>();  // value-initialized: all zero
    }
    used = kept.get();  // a kept array comes back all zero (ReleaseCountArrays)
  }
  return *used;
}

SocketTable::CountArrays SocketTable::ReleaseCountArrays() {
  // Keeps the arrays this table used, zeroed where it counted; frees the others.
  auto keep_used = [](auto& used, auto& kept, const ListeningSet& touched, auto protocol_of) {
    for (size_t i = 0; i < used.size(); ++i) {
      if (used[i] == nullptr) {
        kept[i].reset();
        continue;
      }
      PortCounts& counts = *used[i];
      ForEachPort(touched[protocol_of(i)], [&counts](uint32_t port) { counts[port] = 0; });
      used[i] = nullptr;
    }
  };
  keep_used(local_, arrays_.local_, touched_local_,
            [](size_t index) { return index / (kFamilies * kStates); });
  keep_used(peer_, arrays_.peer_, touched_peer_, [](size_t index) { return index / kStates; });
  return std::move(arrays_);
}

bool SocketTable::IsListening(Protocol protocol, uint8_t state) {
  return protocol == Protocol::kTcp ? state == netlink::kListen : state == netlink::kClose;
}

void SocketTable::Add(Protocol protocol, const netlink::SocketRecord& record) {
  const auto protocol_index = static_cast<size_t>(protocol);
  const size_t family_index = record.family == AF_INET6 ? 1 : 0;
  const size_t state = record.state < kStates ? record.state : 0;
  const size_t local_index = LocalIndex(protocol_index, family_index, state);
  Use(local_[local_index], arrays_.local_[local_index])[record.local_port]++;
  touched_local_[protocol_index].set(record.local_port);
  if (IsListening(protocol, record.state)) {
    listening_[protocol_index].set(record.local_port);
    late_listeners_ = late_listeners_ || counted_as_client_[protocol_index].test(record.local_port);
  } else if (FoldsAsEphemeral(protocol_index, record.local_port) && record.remote_port != 0) {
    counted_as_client_[protocol_index].set(record.local_port);
    Destination destination{record.remote_address, record.remote_port,
                            static_cast<uint8_t>(family_index),
                            static_cast<uint8_t>(protocol_index)};
    if (family_index == 0) {
      std::fill(destination.address.begin() + 4, destination.address.end(), 0);
    }
    auto found = destinations_.find(destination);
    if (found != destinations_.end()) {
      found->second++;
    } else if (destinations_.size() < kMaxDestinations) {
      destinations_.emplace(destination, 1);
    } else {
      untracked_destination_sockets_++;
    }
    const size_t peer_index = PeerIndex(protocol_index, state);
    Use(peer_[peer_index], arrays_.peer_[peer_index])[record.remote_port]++;
    touched_peer_[protocol_index].set(record.remote_port);
  }
}

void SocketTable::Totals::Allocate() {
  if (local_.empty()) {
    local_.assign(kProtocols * kPorts, 0);
    peer_.assign(kProtocols * kPorts, 0);
  }
}

SocketTable::SeriesBudget::SeriesBudget(std::vector<RankedPort> candidates, size_t protected_count,
                                        size_t cap)
    : folded_(kProtocols) {
  std::sort(candidates.begin(), candidates.end(), [](const RankedPort& a, const RankedPort& b) {
    return std::tie(b.sockets, a.protocol, a.port) < std::tie(a.sockets, b.protocol, b.port);
  });
  const size_t keep = cap > protected_count ? cap - protected_count : 0;
  for (size_t i = keep; i < candidates.size(); ++i) {
    folded_[candidates[i].protocol].set(candidates[i].port);
    folded_count_++;
  }
}

void SocketTable::AppendMetrics(std::vector<prometheus::MetricFamily>& out, Totals& totals) const {
  SumPerPort(totals);
  const SeriesBudget port_budget = LocalPortBudget(totals);
  const SeriesBudget peer_budget = PeerPortBudget(totals);
  AppendSockets(port_budget, out);
  AppendPeerSockets(peer_budget, out);
  AppendDestinations(out);
  FamilyBuilder folded("portwatch_port_series_folded",
                       "Ports folded into the \"other\" series because a cardinality cap "
                       "(max_port_series, max_peer_port_series) was reached.",
                       prometheus::MetricType::Gauge);
  folded.Add({{"metric", "portwatch_peer_sockets"}},
             static_cast<double>(peer_budget.FoldedCount()));
  folded.Add({{"metric", "portwatch_sockets"}}, static_cast<double>(port_budget.FoldedCount()));
  folded.MoveTo(out);
}

void SocketTable::SumPerPort(Totals& totals) const {
  // Only the touched ports' totals are written here and read by the budgets: the others may
  // hold a previous table's sums.
  totals.Allocate();
  for (size_t protocol = 0; protocol < kProtocols; ++protocol) {
    ForEachPort(touched_local_[protocol], [&](uint32_t port) {
      uint64_t sum = 0;
      for (size_t state = 0; state < kStates; ++state) {
        for (size_t family = 0; family < kFamilies; ++family) {
          if (const auto& counts = local_[LocalIndex(protocol, family, state)]) {
            sum += (*counts)[port];
          }
        }
      }
      totals.Local(protocol, port) = sum;
    });
    ForEachPort(touched_peer_[protocol], [&](uint32_t port) {
      uint64_t sum = 0;
      for (size_t state = 0; state < kStates; ++state) {
        if (const auto& counts = peer_[PeerIndex(protocol, state)]) {
          sum += (*counts)[port];
        }
      }
      totals.Peer(protocol, port) = sum;
    });
  }
}

SocketTable::SeriesBudget SocketTable::LocalPortBudget(Totals& totals) const {
  // Listening ports always keep their series, and so do the configured services' ports;
  // client-side ports fold as "ephemeral" instead.
  std::vector<RankedPort> candidates;
  size_t kept_ports = 0;
  for (size_t protocol = 0; protocol < kProtocols; ++protocol) {
    const std::bitset<kPorts>* always_kept =
        limits_.always_kept != nullptr && protocol < limits_.always_kept->size()
            ? &(*limits_.always_kept)[protocol]
            : nullptr;
    // A seeded listening port with no socket left still counts against the cap.
    kept_ports += (listening_[protocol] & ~touched_local_[protocol]).count();
    ForEachPort(touched_local_[protocol], [&](uint32_t port) {
      const uint64_t sockets = totals.Local(protocol, port);
      if (listening_[protocol].test(port)) {
        kept_ports++;
      } else if (sockets > 0 && !FoldsAsEphemeral(protocol, port)) {
        if (always_kept != nullptr && always_kept->test(port)) {
          kept_ports++;
        } else {
          candidates.push_back({sockets, protocol, port});
        }
      }
    });
  }
  return {std::move(candidates), kept_ports, limits_.max_port_series};
}

SocketTable::SeriesBudget SocketTable::PeerPortBudget(Totals& totals) const {
  std::vector<RankedPort> candidates;
  for (size_t protocol = 0; protocol < kProtocols; ++protocol) {
    ForEachPort(touched_peer_[protocol], [&](uint32_t port) {
      if (const uint64_t sockets = totals.Peer(protocol, port); sockets > 0) {
        candidates.push_back({sockets, protocol, port});
      }
    });
  }
  return {std::move(candidates), 0, limits_.max_peer_port_series};
}

void SocketTable::AppendSockets(const SeriesBudget& budget,
                                std::vector<prometheus::MetricFamily>& out) const {
  // Folding makes several ports share one series: sum into the labelled series first.
  std::map<std::tuple<size_t, size_t, size_t, std::string>, uint64_t> series;
  for (size_t protocol = 0; protocol < kProtocols; ++protocol) {
    for (size_t state = 0; state < kStates; ++state) {
      for (size_t family = 0; family < kFamilies; ++family) {
        const auto& counts = local_[LocalIndex(protocol, family, state)];
        if (counts == nullptr) {
          continue;
        }
        ForEachPort(touched_local_[protocol], [&](uint32_t port) {
          if ((*counts)[port] == 0) {
            return;
          }
          std::string label = FoldsAsEphemeral(protocol, port) ? "ephemeral"
                              : budget.Folded(protocol, port)  ? "other"
                                                               : std::to_string(port);
          series[{protocol, family, state, std::move(label)}] += (*counts)[port];
        });
      }
    }
  }
  FamilyBuilder family_builder(
      "portwatch_sockets",
      "Sockets by local port and state, read from the kernel via sock_diag. Client-side sockets "
      "on ephemeral ports nobody listens on fold into port=\"ephemeral\"; ports beyond "
      "max_port_series fold into port=\"other\".",
      prometheus::MetricType::Gauge);
  for (const auto& [key, count] : series) {
    const auto& [protocol, family, state, port] = key;
    family_builder.Add(
        {{"family", std::string(netlink::FamilyName(kFamiliesInOrder[family]))},
         {"port", port},
         {"protocol", std::string(netlink::ProtocolName(kProtocolsInOrder[protocol]))},
         {"state", std::string(netlink::StateName(state))}},
        static_cast<double>(count));
  }
  family_builder.MoveTo(out);
}

void SocketTable::AppendPeerSockets(const SeriesBudget& budget,
                                    std::vector<prometheus::MetricFamily>& out) const {
  std::map<std::tuple<size_t, size_t, std::string>, uint64_t> series;
  for (size_t protocol = 0; protocol < kProtocols; ++protocol) {
    for (size_t state = 0; state < kStates; ++state) {
      const auto& counts = peer_[PeerIndex(protocol, state)];
      if (counts == nullptr) {
        continue;
      }
      ForEachPort(touched_peer_[protocol], [&](uint32_t port) {
        if ((*counts)[port] != 0) {
          std::string label = budget.Folded(protocol, port) ? "other" : std::to_string(port);
          series[{protocol, state, std::move(label)}] += (*counts)[port];
        }
      });
    }
  }
  FamilyBuilder family_builder(
      "portwatch_peer_sockets",
      "Client-side sockets (local port folded as ephemeral) by the remote port they talk to and "
      "state; remote ports beyond max_peer_port_series fold into peer_port=\"other\".",
      prometheus::MetricType::Gauge);
  for (const auto& [key, count] : series) {
    const auto& [protocol, state, peer_port] = key;
    family_builder.Add(
        {{"peer_port", peer_port},
         {"protocol", std::string(netlink::ProtocolName(kProtocolsInOrder[protocol]))},
         {"state", std::string(netlink::StateName(state))}},
        static_cast<double>(count));
  }
  family_builder.MoveTo(out);
}

void SocketTable::AppendDestinations(std::vector<prometheus::MetricFamily>& out) const {
  // The busiest destinations: how close connect() is to EADDRNOTAVAIL toward each.
  std::vector<std::pair<const Destination*, uint32_t>> busiest;
  busiest.reserve(destinations_.size());
  for (const auto& [destination, count] : destinations_) {
    busiest.emplace_back(&destination, count);
  }
  // Busiest first; ties by port, address, protocol (tcp first) and family (ipv4 first): a total
  // order over everything that tells destinations apart, so the cut never depends on the order
  // the hash map happens to hold them in.
  const size_t shown = std::min(limits_.top_destinations, busiest.size());
  std::partial_sort(
      busiest.begin(), busiest.begin() + static_cast<std::ptrdiff_t>(shown), busiest.end(),
      [](const auto& a, const auto& b) {
        const Destination& x = *a.first;
        const Destination& y = *b.first;
        return std::tie(b.second, x.port, x.address, x.protocol_index, x.family_index) <
               std::tie(a.second, y.port, y.address, y.protocol_index, y.family_index);
      });
  FamilyBuilder destination_family(
      "portwatch_ephemeral_destination_sockets",
      "Client-side sockets (local port folded as ephemeral) toward one remote address and port, "
      "for the busiest top_destinations of them: connect() fails with EADDRNOTAVAIL when this "
      "reaches portwatch_ephemeral_ports_available.",
      prometheus::MetricType::Gauge);
  for (size_t i = 0; i < shown; ++i) {
    const Destination& destination = *busiest[i].first;
    const Protocol proto = kProtocolsInOrder[destination.protocol_index];
    char address[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(destination.family_index == 0 ? AF_INET : AF_INET6, destination.address.data(),
                address, sizeof(address));
    destination_family.Add({{"peer_address", address},
                            {"peer_port", std::to_string(destination.port)},
                            {"protocol", std::string(netlink::ProtocolName(proto))}},
                           busiest[i].second);
  }
  destination_family.MoveTo(out);
  FamilyBuilder("portwatch_ephemeral_destination_untracked_sockets",
                "Client-side sockets not counted per destination because more than 65536 "
                "distinct destinations were seen in this scrape.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(untracked_destination_sockets_))
      .MoveTo(out);
}

}  // namespace portwatch
