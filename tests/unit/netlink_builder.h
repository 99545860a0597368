// Hand-built netlink sock_diag datagrams for feeding netlink::Dump() through a ReplayTransport.
#pragma once

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"

namespace portwatch::unit {

using netlink::BuildDumpRequest;
using netlink::DumpRequest;
using netlink::Exchange;
using netlink::kEstablished;

/// The fields of an inet_diag_msg that SocketRecord decodes, in host order.
struct DiagSocket {
  uint8_t family = AF_INET;
  uint8_t state = kEstablished;
  uint8_t timer = 0;
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  std::string local_address = "127.0.0.1";
  std::string remote_address = "127.0.0.1";
  uint32_t expires_ms = 0;
  uint32_t uid = 0;
  uint32_t inode = 0;
};

/// A dump request without a port filter (every member named: no -Wmissing-field-initializers).
inline DumpRequest Request(netlink::Protocol protocol, netlink::Family family, uint32_t states,
                           std::vector<uint16_t> local_ports = {}) {
  DumpRequest request;
  request.protocol = protocol;
  request.family = family;
  request.states = states;
  request.local_ports = std::move(local_ports);
  return request;
}

/// The 16 address bytes SocketRecord holds for a textual address (IPv4 in the first 4 bytes).
inline std::array<uint8_t, 16> AddressBytes(uint8_t family, const std::string& text) {
  std::array<uint8_t, 16> bytes{};
  if (::inet_pton(family, text.c_str(), bytes.data()) != 1) {
    std::abort();  // a typo in a test, not something to test around
  }
  return bytes;
}

inline inet_diag_msg ToMessage(const DiagSocket& socket) {
  inet_diag_msg message{};
  message.idiag_family = socket.family;
  message.idiag_state = socket.state;
  message.idiag_timer = socket.timer;
  message.idiag_retrans = 0;
  message.id.idiag_sport = htons(socket.local_port);
  message.id.idiag_dport = htons(socket.remote_port);
  const std::array<uint8_t, 16> source = AddressBytes(socket.family, socket.local_address);
  const std::array<uint8_t, 16> destination = AddressBytes(socket.family, socket.remote_address);
  std::memcpy(message.id.idiag_src, source.data(), source.size());
  std::memcpy(message.id.idiag_dst, destination.data(), destination.size());
  message.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  message.idiag_expires = socket.expires_ms;
  message.idiag_uid = socket.uid;
  message.idiag_inode = socket.inode;
  return message;
}

template <typename T>
std::vector<std::byte> Bytes(const T& value) {
  std::vector<std::byte> bytes(sizeof(value));
  std::memcpy(bytes.data(), &value, sizeof(value));
  return bytes;
}

/// A netlink attribute (struct rtattr) after an inet_diag_msg.
struct Attribute {
  uint16_t type = 0;
  std::vector<std::byte> payload;
  std::optional<uint16_t> length;  ///< overrides rta_len (a lying attribute)
};

/// One datagram of netlink messages, each padded to NLMSG_ALIGNTO like the kernel does.
class DatagramBuilder {
 public:
  DatagramBuilder(uint32_t sequence, uint32_t port_id) : sequence_(sequence), port_id_(port_id) {}

  /// An empty datagram addressed like this one.
  DatagramBuilder Fresh() const { return DatagramBuilder(sequence_, port_id_); }

  /// Addresses the following messages to another sequence and port id.
  DatagramBuilder& Addressed(uint32_t sequence, uint32_t port_id) {
    sequence_ = sequence;
    port_id_ = port_id;
    return *this;
  }

  /// A message with `payload`; `length` overrides nlmsg_len (a lying header).
  DatagramBuilder& Message(uint16_t type, uint16_t flags, const std::vector<std::byte>& payload,
                           std::optional<uint32_t> length = std::nullopt) {
    nlmsghdr header{};
    header.nlmsg_len = length.value_or(static_cast<uint32_t>(NLMSG_LENGTH(payload.size())));
    header.nlmsg_type = type;
    header.nlmsg_flags = flags;
    header.nlmsg_seq = sequence_;
    header.nlmsg_pid = port_id_;
    const std::vector<std::byte> header_bytes = Bytes(header);
    bytes_.insert(bytes_.end(), header_bytes.begin(), header_bytes.end());
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    bytes_.resize(NLMSG_ALIGN(bytes_.size()));
    return *this;
  }

  DatagramBuilder& Socket(const DiagSocket& socket, uint16_t flags = NLM_F_MULTI) {
    return Message(SOCK_DIAG_BY_FAMILY, flags, Bytes(ToMessage(socket)));
  }
  /// A socket in a reply to the older request (TCPDIAG_GETSOCK), whose replies carry its type.
  DatagramBuilder& OlderReplySocket(const DiagSocket& socket) {
    return Message(TCPDIAG_GETSOCK, NLM_F_MULTI, Bytes(ToMessage(socket)));
  }

  /// A socket followed by attributes, each padded to RTA_ALIGNTO.
  DatagramBuilder& Socket(const DiagSocket& socket, const std::vector<Attribute>& attributes) {
    std::vector<std::byte> payload = Bytes(ToMessage(socket));
    payload.resize(NLMSG_ALIGN(payload.size()));
    for (const Attribute& attribute : attributes) {
      rtattr header{};
      header.rta_len =
          attribute.length.value_or(static_cast<uint16_t>(RTA_LENGTH(attribute.payload.size())));
      header.rta_type = attribute.type;
      const std::vector<std::byte> header_bytes = Bytes(header);
      payload.insert(payload.end(), header_bytes.begin(), header_bytes.end());
      payload.insert(payload.end(), attribute.payload.begin(), attribute.payload.end());
      payload.resize(RTA_ALIGN(payload.size()));
    }
    return Message(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, payload);
  }

  /// NLMSG_DONE carrying `error` (0 or -errno), as kernels since 4.x send it.
  DatagramBuilder& Done(int error = 0, uint16_t flags = NLM_F_MULTI) {
    return Message(NLMSG_DONE, flags, Bytes(error));
  }

  /// NLMSG_ERROR for `errno_value` (positive), echoing a request header.
  DatagramBuilder& Error(int errno_value) {
    nlmsgerr error{};
    error.error = -errno_value;
    error.msg.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    error.msg.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    error.msg.nlmsg_seq = sequence_;
    return Message(NLMSG_ERROR, 0, Bytes(error));
  }

  /// Bytes appended verbatim, without alignment: a cut message.
  DatagramBuilder& Raw(const std::vector<std::byte>& bytes) {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return *this;
  }

  std::vector<std::byte> Build() const { return bytes_; }

 private:
  uint32_t sequence_;
  uint32_t port_id_;
  std::vector<std::byte> bytes_;
};

/// The exchange a kernel would have for `request` sent with `sequence` to `port_id`; after the
/// datagrams, a receive fails with `receive_errno` (positive; 0: EAGAIN, the source ran dry).
inline Exchange MakeExchange(const DumpRequest& request, uint32_t sequence, uint32_t port_id,
                             std::vector<std::vector<std::byte>> datagrams, int receive_errno = 0) {
  Exchange exchange;
  exchange.request = BuildDumpRequest(request, sequence);
  exchange.port_id = port_id;
  exchange.truncated.assign(datagrams.size(), false);
  exchange.datagrams = std::move(datagrams);
  exchange.receive_error = receive_errno != 0 ? netlink::ReceiveErrorText(receive_errno) : "";
  return exchange;
}

}  // namespace portwatch::unit
