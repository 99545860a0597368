#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <span>

#include "collectors/netlink/sock_diag.h"

namespace portwatch {

/// Reads the next bytes of a walk into the buffer: their count, 0 at the end, or -errno (a BPF
/// iterator fd's read(); a fixture in tests).
using ReadWalkBytes = std::function<ssize_t(std::span<std::byte> buffer)>;

/// Whether a dump of `request` returns `record`: its family, state mask and local ports, as the
/// kernel applies them to sock_diag requests (a request socket is SYN_RECV).
bool RequestWants(const netlink::DumpRequest& request, const netlink::SocketRecord& record);

/// Reads one iterator walk (collectors/bpf/socket_iter_abi.h records, then the trailer, then the
/// end) and hands `visit` every record `request` wants. kComplete only when the trailer arrived
/// and nothing followed it; else kFailed with the reason,
/// the records read so far already handed on (as a failed sock_diag dump does). EAGAIN (the
/// kernel stops a read after a million sockets) and EINTR read again, a bounded number of times.
netlink::DumpResult ReadIteratorWalk(const ReadWalkBytes& read, const netlink::DumpRequest& request,
                                     const netlink::SocketVisitor& visit);

}  // namespace portwatch
