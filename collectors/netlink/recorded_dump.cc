#include "collectors/netlink/recorded_dump.h"

#include <algorithm>
#include <utility>

namespace portwatch::netlink {

namespace {

size_t TableIndex(Protocol protocol, Family family) {
  return (protocol == Protocol::kTcp ? 0 : 2) + (family == Family::kIpv4 ? 0 : 1);
}

}  // namespace

RecordedDump::RecordedDump(std::shared_ptr<const PortSet> tcp_ports, size_t max_records)
    : tcp_ports_(std::move(tcp_ports)), max_records_(max_records) {}

RecordedDump::Table& RecordedDump::TableOf(Protocol protocol, Family family) {
  return tables_[TableIndex(protocol, family)];
}

const RecordedDump::Table& RecordedDump::TableOf(Protocol protocol, Family family) const {
  return tables_[TableIndex(protocol, family)];
}

void RecordedDump::Add(Protocol protocol, Family family, const SocketRecord& record) {
  if (gave_up_) {
    return;
  }
  const bool wanted = protocol == Protocol::kUdp || record.state == kListen ||
                      (tcp_ports_ != nullptr && tcp_ports_->test(record.local_port));
  if (!wanted) {
    return;
  }
  if (records_ == max_records_) {
    gave_up_ = true;
    tables_ = {};  // frees what was kept
    records_ = 0;
    return;
  }
  TableOf(protocol, family).records.push_back(record);
  ++records_;
}

void RecordedDump::Complete(Protocol protocol, Family family, uint32_t states) {
  Table& table = TableOf(protocol, family);
  // Bound-inactive sockets come back as kClose, like real CLOSE ones: a recording that holds them
  // could not tell them apart for a request that asks for kClose alone.
  table.complete = (states & ~kAllStates) == 0;
  table.states = states;
}

bool RecordedDump::Covers(const DumpRequest& request) const {
  const Table& table = TableOf(request.protocol, request.family);
  if (gave_up_ || !table.complete || (request.states & ~table.states) != 0) {
    return false;
  }
  if (request.protocol == Protocol::kUdp || (request.states & ~StateBit(kListen)) == 0) {
    return true;  // every UDP socket and every TCP listener is kept
  }
  // Other TCP states are kept on the chosen ports only.
  return !request.local_ports.empty() && tcp_ports_ != nullptr &&
         std::all_of(request.local_ports.begin(), request.local_ports.end(),
                     [this](uint16_t port) { return tcp_ports_->test(port); });
}

uint64_t RecordedDump::Replay(const DumpRequest& request, const SocketVisitor& visit) const {
  uint64_t replayed = 0;
  for (const SocketRecord& record : TableOf(request.protocol, request.family).records) {
    if ((request.states & (1U << record.state)) == 0) {
      continue;
    }
    if (!request.local_ports.empty() &&
        std::find(request.local_ports.begin(), request.local_ports.end(), record.local_port) ==
            request.local_ports.end()) {
      continue;
    }
    visit(record);
    ++replayed;
  }
  return replayed;
}

}  // namespace portwatch::netlink
