#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <span>

#include "collectors/common/record_walk.h"
#include "collectors/netlink/sock_diag.h"

namespace portwatch {

/// Whether a dump of `request` returns `record`: its family, state mask and local ports, as the
/// kernel applies them to sock_diag requests (a request socket is SYN_RECV).
bool RequestWants(const netlink::DumpRequest& request, const netlink::SocketRecord& record);

/// Reads one iterator walk (collectors/bpf/socket_iter_abi.h records, then the trailer, then the
/// end, see ReadRecordWalk) and hands `visit` every record `request` wants. kComplete only when
/// the walk ended as it should; else kFailed with the reason, the records read so far already
/// handed on (as a failed sock_diag dump does).
netlink::DumpResult ReadIteratorWalk(const ReadWalkBytes& read, const netlink::DumpRequest& request,
                                     const netlink::SocketVisitor& visit);

}  // namespace portwatch
