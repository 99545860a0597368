#include "collectors/socket_source/iterator_walk.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "collectors/bpf/socket_iter_abi.h"

namespace portwatch {

namespace {

constexpr size_t kRecordSize = PORTWATCH_SOCKET_ITER_RECORD_SIZE;
static_assert(sizeof(portwatch_socket_record) == kRecordSize);
static_assert(sizeof(portwatch_socket_trailer) == kRecordSize);

/// The kernel fills at most 32 KiB per read() (bpf_seq_read's buffer); twice that, a whole number
/// of records, so a read never splits one in the usual case.
constexpr size_t kReadBufferSize = kRecordSize * 1170;

/// EAGAIN comes after a million sockets shown with nothing written: never in a walk that writes
/// every socket, so a few retries in a row mean something else is wrong.
constexpr int kMaxRetriesInARow = 64;

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

netlink::DumpResult Failed(netlink::DumpResult result, std::string error) {
  result.outcome = netlink::DumpOutcome::kFailed;
  result.error = std::move(error);
  return result;
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
  std::vector<std::byte> buffer(kReadBufferSize);
  size_t held = 0;  // bytes of an incomplete record kept from the previous read
  bool trailer_seen = false;
  int retries = 0;
  for (;;) {
    const ssize_t got = read(std::span(buffer).subspan(held));
    if (got == -EAGAIN || got == -EINTR) {
      if (++retries > kMaxRetriesInARow) {
        return Failed(
            result, "socket iterator: read: " + std::string(std::strerror(static_cast<int>(-got))) +
                        " " + std::to_string(retries) + " times in a row");
      }
      continue;
    }
    if (got < 0) {
      return Failed(result,
                    "socket iterator: read: " + std::string(std::strerror(static_cast<int>(-got))));
    }
    retries = 0;
    if (got == 0) {
      break;
    }
    held += static_cast<size_t>(got);
    size_t offset = 0;
    for (; held - offset >= kRecordSize; offset += kRecordSize) {
      const std::byte* bytes = buffer.data() + offset;
      if (trailer_seen) {
        return Failed(result, "socket iterator: data after the end of the walk");
      }
      const auto kind = static_cast<uint8_t>(bytes[0]);
      if (kind == PORTWATCH_SOCKET_ITER_TRAILER) {
        trailer_seen = true;
        continue;
      }
      if (kind != PORTWATCH_SOCKET_ITER_RECORD) {
        return Failed(result, "socket iterator: unknown record kind " + std::to_string(kind));
      }
      portwatch_socket_record raw{};
      std::memcpy(&raw, bytes, kRecordSize);
      const netlink::SocketRecord record = Decode(raw);
      if (RequestWants(request, record)) {
        ++result.sockets;
        visit(record);
      }
    }
    held -= offset;
    std::memmove(buffer.data(), buffer.data() + offset, held);
  }
  if (held != 0) {
    return Failed(result, "socket iterator: the walk ended inside a record");
  }
  if (!trailer_seen) {
    return Failed(result, "socket iterator: the walk ended without its trailer");
  }
  result.outcome = netlink::DumpOutcome::kComplete;
  return result;
}

}  // namespace portwatch
