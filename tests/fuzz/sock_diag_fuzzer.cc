// netlink::Dump() over fuzzed sock_diag replies: message headers, NLMSG_ERROR / NLMSG_DONE,
// inet_diag_msg and its attributes, stray and truncated datagrams.
//
// Input: u32 sequence, u32 port id (little endian: what the replies must be addressed to),
// u8 request (bit 0 UDP, bit 1 IPv6, bit 2 bound-inactive, bit 3 a local port filter), u8 flags
// (bit 0: the last datagram is reported truncated; bits 1-7: errno of the receive after the last
// datagram), then datagrams, each as a u16 little-endian length and its bytes.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using portwatch::fuzz::Check;
namespace netlink = portwatch::netlink;

uint32_t ReadU32(const uint8_t* bytes) {
  return static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
         static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 10;
  if (size < kHeader) {
    return 0;
  }
  const uint32_t sequence = ReadU32(data);
  const uint32_t port_id = ReadU32(data + 4);
  const uint8_t selector = data[8];
  const uint8_t flags = data[9];

  netlink::DumpRequest request;
  request.protocol = (selector & 1) != 0 ? netlink::Protocol::kUdp : netlink::Protocol::kTcp;
  request.family = (selector & 2) != 0 ? netlink::Family::kIpv6 : netlink::Family::kIpv4;
  request.states = netlink::kAllStates | ((selector & 4) != 0 ? netlink::kBoundInactiveStates : 0);
  if ((selector & 8) != 0) {
    request.local_ports = {5000, 40500, 65535};
  }

  netlink::Exchange exchange;
  exchange.request = netlink::BuildDumpRequest(request, sequence);
  exchange.port_id = port_id;
  size_t offset = kHeader;
  while (offset + 2 <= size) {
    const size_t length =
        std::min<size_t>(data[offset] | (size_t{data[offset + 1]} << 8), size - offset - 2);
    offset += 2;
    const auto* begin = reinterpret_cast<const std::byte*>(data + offset);
    exchange.datagrams.emplace_back(begin, begin + length);
    exchange.truncated.push_back(false);
    offset += length;
  }
  if (!exchange.truncated.empty() && (flags & 1) != 0) {
    exchange.truncated.back() = true;
  }
  // 0: the source runs dry (EAGAIN); else that errno.
  const int receive_errno = flags >> 1;
  exchange.receive_error = receive_errno != 0 ? netlink::ReceiveErrorText(receive_errno) : "";

  std::vector<netlink::Exchange> exchanges;
  exchanges.push_back(std::move(exchange));
  netlink::ReplayTransport transport(std::move(exchanges));
  Check(transport.NextSequence() == sequence, "the replay dictates the recorded sequence");
  uint64_t visited = 0;
  const netlink::DumpResult result =
      netlink::Dump(transport, request, [&visited](const netlink::SocketRecord& record) {
        visited++;
        Check(record.v6only >= -1 && record.v6only <= 1, "v6only is -1, 0 or 1");
        Check(!netlink::StateName(record.state).empty(), "every state has a name");
      });
  Check(result.sockets == visited, "DumpResult.sockets counts the visited sockets");
  Check(result.outcome != netlink::DumpOutcome::kFailed || !result.error.empty(),
        "a failed dump says why");
  Check(result.outcome != netlink::DumpOutcome::kComplete || result.error.empty(),
        "a complete dump has no error");
  return 0;
}
