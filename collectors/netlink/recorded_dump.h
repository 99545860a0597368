#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "collectors/netlink/sock_diag.h"

namespace portwatch::netlink {

/// What full dumps of one network namespace returned, as far as narrower requests made of the same
/// namespace soon after need it: every listening TCP socket, every UDP socket, and the TCP sockets
/// on chosen local ports (the configured services'). The sockets collector dumps every table in
/// full; the services collector, right after it in the same scrape, asks for the listeners and the
/// services' ports. Answering those from here spares each namespace four to six dumps a scrape,
/// most of the services collector's time inside a pod, and, with services configured, two walks of
/// the node's whole TCP hash.
///
/// Exact by construction: a request is answered only when every socket the kernel would return for
/// it was kept (Covers()), and Replay() applies the request's state and port filters as the kernel
/// does.
class RecordedDump {
 public:
  using PortSet = std::bitset<65536>;

  /// `tcp_ports`: TCP local ports whose sockets are kept in every state. `max_records`: past it the
  /// recording gives up, keeps nothing and covers no request (a namespace with a huge UDP table is
  /// dumped again by whoever needs it rather than held in memory).
  RecordedDump(std::shared_ptr<const PortSet> tcp_ports, size_t max_records);

  /// One socket of a dump of `protocol`/`family`; kept when a narrower request may ask for it.
  void Add(Protocol protocol, Family family, const SocketRecord& record);
  /// The dump of `protocol`/`family` asking for `states` ended with every socket read (or the
  /// kernel lacks the table: nothing to read). Only then is that table answered from here.
  void Complete(Protocol protocol, Family family, uint32_t states);

  /// Whether Replay(request) gives exactly the sockets a dump of `request` would.
  bool Covers(const DumpRequest& request) const;
  /// Hands `visit` every kept socket a dump of `request` would return; returns how many.
  uint64_t Replay(const DumpRequest& request, const SocketVisitor& visit) const;

  size_t Records() const { return records_; }
  bool GaveUp() const { return gave_up_; }

 private:
  struct Table {
    bool complete = false;
    uint32_t states = 0;
    std::vector<SocketRecord> records;
  };
  Table& TableOf(Protocol protocol, Family family);
  const Table& TableOf(Protocol protocol, Family family) const;

  std::shared_ptr<const PortSet> tcp_ports_;
  size_t max_records_;
  size_t records_ = 0;
  bool gave_up_ = false;
  std::array<Table, 4> tables_;  ///< by protocol, then family
};

}  // namespace portwatch::netlink
