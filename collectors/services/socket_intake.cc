#include "collectors/services/socket_intake.h"

#include <algorithm>

#include "collectors/socket_table/socket_table.h"

namespace portwatch {

namespace {

/// Keeps the record's inode in `inodes` (each once, at most kMaxInodesPerService), with the flag
/// the record carried. Inode 0 is no socket's key: sockets without an fd would share it.
void KeepInode(const netlink::SocketRecord& record, std::vector<uint32_t>& inodes,
               PortObservation& observation) {
  if (inodes.size() >= kMaxInodesPerService) {
    return;
  }
  if (std::find(inodes.begin(), inodes.end(), record.inode) == inodes.end()) {
    inodes.push_back(record.inode);
  }
  if (record.inode != 0 && record.reuse >= 0) {
    observation.reuse_by_inode[record.inode] = record.reuse != 0;
  }
}

void CountInodelessReuse(const netlink::SocketRecord& record, size_t state,
                         PortObservation& observation) {
  if (record.reuse > 0) {
    observation.reuse_without_inode.set[state]++;
  } else if (record.reuse == 0) {
    observation.reuse_without_inode.unset[state]++;
  }
}

}  // namespace

bool IsRequestSocket(uint8_t state) {
  return state == netlink::kSynRecv || state == netlink::kNewSynRecv;
}

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
    KeepInode(record, observation.listener_inodes, observation);
  } else if (record.state == netlink::kTimeWait) {
    observation.longest_time_wait_ms =
        std::max(observation.longest_time_wait_ms, record.timer_expires_ms);
    CountInodelessReuse(record, state, observation);
  } else if (IsRequestSocket(record.state)) {
    // Their listener holds the port.
  } else if (record.inode != 0) {
    KeepInode(record, observation.other_inodes, observation);
  } else {
    observation.others_without_inode++;
    CountInodelessReuse(record, state, observation);
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
