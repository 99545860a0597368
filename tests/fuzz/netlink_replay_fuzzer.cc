// ReplayTransport::Load() over a fuzzed recording file (the "PWNL" format that
// --debug.record-netlink writes and the golden tests replay), then netlink::Dump() over every
// exchange it holds whose request is one the sockets collector sends.
//
// Input: a recording file, e.g. tests/fixtures/sockdiag/table.nlrec.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using portwatch::fuzz::Check;
namespace netlink = portwatch::netlink;

/// The requests the sockets collector sends, with and without bound-inactive sockets.
std::vector<netlink::DumpRequest> CollectorRequests() {
  std::vector<netlink::DumpRequest> requests;
  for (uint32_t states :
       {netlink::kAllStates, netlink::kAllStates | netlink::kBoundInactiveStates}) {
    for (netlink::Protocol protocol : {netlink::Protocol::kTcp, netlink::Protocol::kUdp}) {
      for (netlink::Family family : {netlink::Family::kIpv4, netlink::Family::kIpv6}) {
        requests.push_back(netlink::DumpRequest{protocol, family, states, {}});
      }
    }
  }
  return requests;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<netlink::DumpRequest> kRequests = CollectorRequests();
  static const std::string kPath = portwatch::fuzz::ScratchDir() + "/recording.nlrec";
  portwatch::fuzz::WriteFile(kPath, std::string_view(reinterpret_cast<const char*>(data), size));

  portwatch::Result<std::unique_ptr<netlink::ReplayTransport>> loaded =
      netlink::ReplayTransport::Load(kPath);
  if (!loaded) {
    Check(!loaded.Error().empty(), "a rejected recording says why");
    return 0;
  }
  const std::unique_ptr<netlink::ReplayTransport>& transport = *loaded;
  // A request that differs from the recorded one fails in Send() and consumes nothing: try the
  // next candidate; stop when none matches (or the recording is exhausted).
  constexpr int kMaxDumps = 64;
  for (int dump = 0; dump < kMaxDumps; ++dump) {
    const size_t served = transport->RequestsServed();
    for (const netlink::DumpRequest& request : kRequests) {
      uint64_t visited = 0;
      const netlink::DumpResult result = netlink::Dump(
          *transport, request, [&visited](const netlink::SocketRecord& /*record*/) { visited++; });
      Check(result.sockets == visited, "DumpResult.sockets counts the visited sockets");
      if (transport->RequestsServed() != served) {
        break;
      }
    }
    if (transport->RequestsServed() == served) {
      break;
    }
  }
  return 0;
}
