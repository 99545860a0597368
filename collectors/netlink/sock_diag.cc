#include "collectors/netlink/sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace portwatch::netlink {

namespace {

// The kernel caps dump datagrams at 32 KiB; twice that leaves room and never truncates.
constexpr size_t kReceiveBufferBytes = size_t{64} * 1024;
// A dump of the largest possible table ends far sooner; this only stops a broken source.
constexpr uint64_t kMaxDatagramsPerDump = 1ULL << 26;

struct DumpRequestMessage {
  nlmsghdr header;
  inet_diag_req_v2 body;
};

/// The older request (TCPDIAG_GETSOCK): the kernel reads it as family AF_UNSPEC.
struct BothFamiliesRequestMessage {
  nlmsghdr header;
  inet_diag_req body;
};

/// The errno of a kernel error code (-errno). INT_MIN, which no kernel sends, has no negation.
int ErrnoOf(int code) {
  return code == std::numeric_limits<int>::min() ? std::numeric_limits<int>::max() : -code;
}

bool IsUnsupportedErrno(int error) {
  return error == ENOENT || error == EOPNOTSUPP || error == EPROTONOSUPPORT ||
         error == EAFNOSUPPORT;
}

/// Reads the attributes after the inet_diag_msg that portwatch uses (INET_DIAG_SKV6ONLY).
void DecodeAttributes(const nlmsghdr* header, SocketRecord& record) {
  const auto* message = static_cast<const std::byte*>(NLMSG_DATA(header));
  int remaining = static_cast<int>(header->nlmsg_len) -
                  static_cast<int>(NLMSG_LENGTH(NLMSG_ALIGN(sizeof(inet_diag_msg))));
  const auto* attribute =
      reinterpret_cast<const rtattr*>(message + NLMSG_ALIGN(sizeof(inet_diag_msg)));
  for (; RTA_OK(attribute, remaining); attribute = RTA_NEXT(attribute, remaining)) {
    if (attribute->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(attribute) >= 1) {
      record.v6only = *static_cast<const uint8_t*>(RTA_DATA(attribute)) != 0 ? 1 : 0;
    }
  }
}

SocketRecord DecodeSocket(const inet_diag_msg& message) {
  SocketRecord record;
  record.family = message.idiag_family;
  record.state = message.idiag_state;
  record.timer = message.idiag_timer;
  record.local_port = ntohs(message.id.idiag_sport);
  record.remote_port = ntohs(message.id.idiag_dport);
  std::memcpy(record.local_address.data(), message.id.idiag_src, record.local_address.size());
  std::memcpy(record.remote_address.data(), message.id.idiag_dst, record.remote_address.size());
  record.timer_expires_ms = message.idiag_expires;
  record.uid = message.idiag_uid;
  record.inode = message.idiag_inode;
  return record;
}

/// The dump so far, failed with `error`: what it counted (sockets, stray messages) stays.
DumpResult Failed(DumpResult so_far, std::string error) {
  so_far.outcome = DumpOutcome::kFailed;
  so_far.error = std::move(error);
  return so_far;
}

/// The dump so far, ended because the kernel lacks the table (`error`: a positive errno).
DumpResult Unsupported(DumpResult so_far, int error) {
  so_far.outcome = DumpOutcome::kUnsupported;
  so_far.error = std::strerror(error);
  return so_far;
}

/// "sport == p1 || sport == p2 || ...", compiled like `ss` does: a miss skips to the next test,
/// a hit goes through a JMP past the end (accept); a miss on the last test rejects.
std::vector<inet_diag_bc_op> PortFilterBytecode(const std::vector<uint16_t>& ports) {
  constexpr auto kOp = static_cast<uint16_t>(sizeof(inet_diag_bc_op));
  std::vector<inet_diag_bc_op> ops;
  for (size_t i = 0; i < ports.size(); ++i) {
    ops.push_back({INET_DIAG_BC_S_EQ, 2 * kOp, 3 * kOp});
    ops.push_back({0, 0, ports[i]});
    const size_t tests_after = ports.size() - i - 1;
    if (tests_after > 0) {
      ops.push_back({INET_DIAG_BC_JMP, kOp, static_cast<uint16_t>(size_t{3} * kOp * tests_after)});
    }
  }
  return ops;
}

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kTcp ? "tcp" : "udp";
}

std::string_view FamilyName(Family family) { return family == Family::kIpv4 ? "ipv4" : "ipv6"; }

std::string TableName(Protocol protocol, Family family) {
  return std::string(ProtocolName(protocol)) + "/" + std::string(FamilyName(family));
}

Family FamilyOf(const SocketRecord& record) {
  return record.family == AF_INET6 ? Family::kIpv6 : Family::kIpv4;
}

std::string DumpResult::TableError(const DumpRequest& request) const {
  const std::string table = request.both_families
                                ? std::string(ProtocolName(request.protocol)) + "/ipv4+ipv6"
                                : TableName(request.protocol, request.family);
  return table + ": " + error;
}

std::string_view StateName(uint8_t state) {
  switch (state) {
    case kEstablished:
      return "established";
    case kSynSent:
      return "syn_sent";
    case kSynRecv:
    case kNewSynRecv:
      return "syn_recv";
    case kFinWait1:
      return "fin_wait1";
    case kFinWait2:
      return "fin_wait2";
    case kTimeWait:
      return "time_wait";
    case kClose:
      return "unconn";
    case kCloseWait:
      return "close_wait";
    case kLastAck:
      return "last_ack";
    case kListen:
      return "listen";
    case kClosing:
      return "closing";
    default:
      return "unknown";
  }
}

namespace {

/// `message` (a header and request body), then the port filter's bytecode attribute if any.
template <typename Message>
std::vector<std::byte> WithBytecode(Message message, const std::vector<inet_diag_bc_op>& bytecode) {
  const size_t bytecode_bytes = bytecode.size() * sizeof(inet_diag_bc_op);
  const size_t attribute_bytes = bytecode.empty() ? 0 : RTA_SPACE(bytecode_bytes);
  message.header.nlmsg_len = static_cast<uint32_t>(sizeof(message) + attribute_bytes);
  std::vector<std::byte> bytes(message.header.nlmsg_len);
  std::memcpy(bytes.data(), &message, sizeof(message));
  if (!bytecode.empty()) {
    rtattr attribute{};
    attribute.rta_len = static_cast<uint16_t>(RTA_LENGTH(bytecode_bytes));
    attribute.rta_type = INET_DIAG_REQ_BYTECODE;
    std::memcpy(bytes.data() + sizeof(message), &attribute, sizeof(attribute));
    std::memcpy(bytes.data() + sizeof(message) + RTA_LENGTH(0), bytecode.data(), bytecode_bytes);
  }
  return bytes;
}

}  // namespace

std::vector<std::byte> BuildDumpRequest(const DumpRequest& request, uint32_t sequence) {
  std::vector<inet_diag_bc_op> bytecode;
  if (!request.local_ports.empty()) {
    bytecode = PortFilterBytecode(request.local_ports);
  }
  if (request.both_families && request.protocol == Protocol::kTcp) {
    BothFamiliesRequestMessage message{};
    message.header.nlmsg_type = TCPDIAG_GETSOCK;
    message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    message.header.nlmsg_seq = sequence;
    message.body.idiag_states = request.states;
    return WithBytecode(message, bytecode);
  }
  DumpRequestMessage message{};
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.header.nlmsg_seq = sequence;
  message.body.sdiag_family = request.family == Family::kIpv4 ? AF_INET : AF_INET6;
  message.body.sdiag_protocol = request.protocol == Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
  message.body.idiag_states = request.states;
  return WithBytecode(message, bytecode);
}

DumpResult Dump(Transport& transport, const DumpRequest& request, const SocketVisitor& visit) {
  const uint32_t sequence = transport.NextSequence();
  DumpResult result;
  // A send that fails is the transport's failure, never "unsupported": the kernel says that in
  // an NLMSG_ERROR (or NLMSG_DONE) reply, handled below.
  if (Status sent = transport.Send(BuildDumpRequest(request, sequence)); !sent) {
    return Failed(result, sent.Error());
  }
  const uint32_t port_id = transport.PortId();
  // The older request's replies carry its type.
  const uint16_t socket_message_type = request.both_families && request.protocol == Protocol::kTcp
                                           ? TCPDIAG_GETSOCK
                                           : SOCK_DIAG_BY_FAMILY;

  // 8-byte alignment is what NLMSG_ALIGN assumes for the headers we cast to.
  alignas(8) static thread_local std::byte buffer[kReceiveBufferBytes];
  bool interrupted = false;
  for (uint64_t datagram = 0; datagram < kMaxDatagramsPerDump; ++datagram) {
    Result<Received> received = transport.Receive(buffer);
    if (!received) {
      return Failed(result, received.Error());
    }
    if (received->truncated) {
      return Failed(result, "netlink datagram truncated");
    }
    int remaining = static_cast<int>(std::min(received->length, sizeof(buffer)));
    auto* header = reinterpret_cast<nlmsghdr*>(buffer);
    for (; NLMSG_OK(header, remaining); header = NLMSG_NEXT(header, remaining)) {
      if (header->nlmsg_seq != sequence || header->nlmsg_pid != port_id) {
        result.stray_messages++;
        continue;
      }
      if ((header->nlmsg_flags & NLM_F_DUMP_INTR) != 0) {
        interrupted = true;
      }
      if (header->nlmsg_type == NLMSG_DONE) {
        // Since Linux 4.x the DONE payload carries the dump's error code, if any.
        if (header->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int done_error = 0;
          std::memcpy(&done_error, NLMSG_DATA(header), sizeof(done_error));
          if (done_error < 0) {
            const int error = ErrnoOf(done_error);
            if (IsUnsupportedErrno(error)) {
              return Unsupported(result, error);
            }
            return Failed(result, std::string("dump ended with error: ") + std::strerror(error));
          }
        }
        result.outcome = interrupted ? DumpOutcome::kInterrupted : DumpOutcome::kComplete;
        if (interrupted) {
          result.error = "dump interrupted (NLM_F_DUMP_INTR): the socket table changed";
        }
        return result;
      }
      if (header->nlmsg_type == NLMSG_ERROR) {
        if (header->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          return Failed(result, "truncated NLMSG_ERROR");
        }
        nlmsgerr error_message{};
        std::memcpy(&error_message, NLMSG_DATA(header), sizeof(error_message));
        const int error = ErrnoOf(error_message.error);
        if (IsUnsupportedErrno(error)) {
          return Unsupported(result, error);
        }
        return Failed(result, std::string("kernel error: ") + std::strerror(error));
      }
      if (header->nlmsg_type != socket_message_type) {
        continue;
      }
      if (header->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
        return Failed(result, "truncated inet_diag_msg");
      }
      inet_diag_msg message{};
      std::memcpy(&message, NLMSG_DATA(header), sizeof(message));
      SocketRecord record = DecodeSocket(message);
      DecodeAttributes(header, record);
      visit(record);
      result.sockets++;
    }
    if (remaining != 0) {
      return Failed(result, "truncated netlink message header");
    }
  }
  return Failed(result, "dump did not end");
}

}  // namespace portwatch::netlink
