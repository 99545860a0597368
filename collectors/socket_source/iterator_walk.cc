#include "collectors/socket_source/iterator_walk.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "collectors/bpf/socket_iter_abi.h"

namespace portwatch {

namespace {

constexpr size_t kRecordSize = PORTWATCH_SOCKET_ITER_RECORD_SIZE;
static_assert(sizeof(portwatch_socket_record) == kRecordSize);
static_assert(sizeof(portwatch_socket_trailer) == kRecordSize);

netlink::SocketRecord Decode(const portwatch_socket_record& raw) {
  netlink::SocketRecord record;
  record.family = raw.family;
  record.state = raw.state;
  record.timer = raw.timer;
  record.local_port = raw.local_port;
  record.remote_port = raw.remote_port;
  std::memcpy(record.local_address.data(), raw.local_address, record.local_address.size());
  std::memcpy(record.remote_address.data(), raw.remote_address, record.remote_address.size());
  record.v6only = raw.v6only;
  record.reuse = raw.reuse;
  record.reuseport = raw.reuseport;
  record.timer_expires_ms = raw.timer_expires_ms;
  record.uid = raw.uid;
  record.inode = raw.inode;
  return record;
}

}  // namespace

bool RequestWants(const netlink::DumpRequest& request, const netlink::SocketRecord& record) {
  if (!request.both_families && netlink::FamilyOf(record) != request.family) {
    return false;
  }
  if (record.state > netlink::kMaxState ||
      (request.states & netlink::StateBit(static_cast<netlink::SocketState>(record.state))) == 0) {
    return false;
  }
  return request.local_ports.empty() ||
         std::find(request.local_ports.begin(), request.local_ports.end(), record.local_port) !=
             request.local_ports.end();
}

netlink::DumpResult ReadIteratorWalk(const ReadWalkBytes& read, const netlink::DumpRequest& request,
                                     const netlink::SocketVisitor& visit) {
  netlink::DumpResult result;
  const Status walked = ReadRecordWalk(
      read,
      {"socket iterator", kRecordSize, PORTWATCH_SOCKET_ITER_RECORD, PORTWATCH_SOCKET_ITER_TRAILER},
      [&request, &visit, &result](const std::byte* bytes) {
        portwatch_socket_record raw{};
        std::memcpy(&raw, bytes, kRecordSize);
        const netlink::SocketRecord record = Decode(raw);
        if (RequestWants(request, record)) {
          ++result.sockets;
          visit(record);
        }
      });
  if (walked) {
    result.outcome = netlink::DumpOutcome::kComplete;
  } else {
    result.outcome = netlink::DumpOutcome::kFailed;
    result.error = walked.Error();
  }
  return result;
}

}  // namespace portwatch
