#pragma once

// Fakes shared by the socket source tests: sock_diag answering from memory, and an iterator's
// walk as the bytes of a pipe.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/bpf/socket_iter_abi.h"
#include "collectors/socket_source/socket_source.h"

namespace portwatch::testing {

/// sock_diag as a fake: every walk answers one IPv4 listener on port 7 (no SO_REUSEADDR flag:
/// netlink never says) and is recorded in `asked`. With `refuse_both_families`, a request for
/// both families is refused, as by a kernel without the older inet_diag request.
class FakeSockDiag : public SocketSource {
 public:
  explicit FakeSockDiag(std::vector<netlink::DumpRequest>& asked, bool refuse_both_families = false)
      : asked_(asked), refuse_both_families_(refuse_both_families) {}
  SocketBackend Backend(netlink::Protocol /*protocol*/) const override {
    return SocketBackend::kNetlink;
  }
  bool FiltersInKernel(netlink::Protocol /*protocol*/) const override { return true; }
  bool WalksBothFamilies(netlink::Protocol /*protocol*/) const override { return false; }
  netlink::DumpResult Walk(const netlink::DumpRequest& request,
                           const netlink::SocketVisitor& visit) override {
    asked_.push_back(request);
    netlink::DumpResult result;
    if (refuse_both_families_ && request.both_families) {
      result.outcome = netlink::DumpOutcome::kFailed;
      result.error = "Invalid argument";
      return result;
    }
    netlink::SocketRecord record;
    record.family = AF_INET;
    record.state = netlink::kListen;
    record.local_port = 7;
    visit(record);
    result.outcome = netlink::DumpOutcome::kComplete;
    result.sockets = 1;
    return result;
  }

 private:
  std::vector<netlink::DumpRequest>& asked_;
  bool refuse_both_families_;
};

/// An iterator's walk as the kernel hands it: the read end of a pipe holding `records` copies of
/// `record` (its kind set) and the trailer.
inline Result<netlink::UniqueFd> PipeWalk(portwatch_socket_record record, int records) {
  int ends[2];
  if (::pipe(ends) != 0) {
    return Failure{"pipe"};
  }
  netlink::UniqueFd read_end(ends[0]);
  const netlink::UniqueFd write_end(ends[1]);
  record.kind = PORTWATCH_SOCKET_ITER_RECORD;
  for (int i = 0; i < records; ++i) {
    EXPECT_EQ(::write(write_end.Get(), &record, sizeof(record)),
              static_cast<ssize_t>(sizeof(record)));
  }
  portwatch_socket_trailer trailer{};
  trailer.kind = PORTWATCH_SOCKET_ITER_TRAILER;
  trailer.objects = static_cast<uint64_t>(records);
  EXPECT_EQ(::write(write_end.Get(), &trailer, sizeof(trailer)),
            static_cast<ssize_t>(sizeof(trailer)));
  return read_end;
}

}  // namespace portwatch::testing
