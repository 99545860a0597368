#include "collectors/services/socket_intake.h"

#include <algorithm>

#include "collectors/socket_table/socket_table.h"

namespace portwatch {

namespace {

void AddUnique(std::vector<uint32_t>& inodes, uint32_t inode) {
  if (inodes.size() < kMaxInodesPerService &&
      std::find(inodes.begin(), inodes.end(), inode) == inodes.end()) {
    inodes.push_back(inode);
  }
}

}  // namespace

bool PortObservation::AnythingOverlaps() const {
  return std::any_of(overlapping_by_state.begin(), overlapping_by_state.end(),
                     [](uint64_t count) { return count > 0; });
}

netlink::Protocol ProtocolOf(const ServiceConfig& service) {
  return service.protocol == ServiceProtocol::kTcp ? netlink::Protocol::kTcp
                                                   : netlink::Protocol::kUdp;
}

void ObserveSocket(const ServiceConfig& service, netlink::Protocol protocol,
                   const netlink::SocketRecord& record, PortObservation& observation) {
  if (ProtocolOf(service) != protocol || service.port != record.local_port) {
    return;
  }
  const size_t state = record.state < kStateSlots ? record.state : 0;
  observation.sockets_by_state[state]++;
  if (!AddressesOverlap(EndpointOf(service), EndpointOf(record))) {
    return;
  }
  observation.overlapping_by_state[state]++;
  if (SocketTable::IsListening(protocol, record.state)) {
    AddUnique(observation.listener_inodes, record.inode);
  } else if (record.state == netlink::kTimeWait) {
    observation.longest_time_wait_ms =
        std::max(observation.longest_time_wait_ms, record.timer_expires_ms);
  } else if (record.state == netlink::kSynRecv) {
    // Request sockets hold no port of their own: their listener does.
  } else if (record.inode != 0) {
    AddUnique(observation.other_inodes, record.inode);
  } else {
    observation.others_without_inode++;
  }
}

void ListenerIntake::Add(netlink::Protocol protocol, const netlink::SocketRecord& record) {
  if (!SocketTable::IsListening(protocol, record.state)) {
    return;
  }
  if (listeners_.size() < kMaxListeners) {
    listeners_.push_back({protocol, EndpointOf(record), record.local_port, record.inode});
  } else {
    dropped_++;
  }
}

}  // namespace portwatch
