// Bind-event decoding: DecodeBindEvent() / DecodeBindKey() of what the eBPF program sends (ring
// buffer samples and map keys), the log line BindEventsCollector::DescribeFailure() makes of an
// event, and the capped counters of portwatch_bind_failures_total over two scrapes.
//
// Input: u8 max_port_series, u8 flags (bit 0: count only the exporter's own network namespace;
// bit 1: the socket table cannot be read), then records of a raw struct portwatch_bind_event
// (52 bytes, as the ring buffer delivers it), a u16 little-endian count at the first scrape and
// a u8 increase at the second; records beyond the 32nd are ignored.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "collectors/bind_events/bind_event_source.h"
#include "collectors/bind_events/bind_events_collector.h"
#include "collectors/bind_events/bind_events_table.h"
#include "collectors/bpf/bind_events_abi.h"
#include "collectors/netlink/transport.h"
#include "collectors/procfs/procfs.h"
#include "exporter/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using portwatch::fuzz::Check;
namespace netlink = portwatch::netlink;

constexpr uint32_t kOwnNetns = 4026531840U;
bool table_readable = true;

class NoSource : public portwatch::BindEventSource {
 public:
  bool Available() const override { return false; }
  std::string UnavailableReason() const override { return "fuzz: no BPF"; }
  void SetNetnsFilter(uint32_t /*netns*/) override {}
  std::vector<std::pair<portwatch::BindFailureKey, uint64_t>> ReadCounts() override { return {}; }
  uint64_t UncountedFailures() const override { return 0; }
  uint64_t LostEvents() const override { return 0; }
};

/// Answers every dump with one listening socket of inode 1001 (held by a process of
/// tests/fixtures/proc) and NLMSG_DONE.
class OneListener : public netlink::Transport {
 public:
  uint32_t NextSequence() override { return ++sequence_; }
  portwatch::Status Send(std::span<const std::byte> /*request*/) override {
    answered_ = false;
    return {};
  }
  portwatch::Result<netlink::Received> Receive(std::span<std::byte> buffer) override {
    if (answered_) {
      return portwatch::Failure{netlink::ReceiveErrorText(EAGAIN)};
    }
    answered_ = true;
    struct Reply {
      nlmsghdr socket_header;
      inet_diag_msg socket;
      nlmsghdr done_header;
      int done_error;
    } reply{};
    reply.socket_header = {sizeof(nlmsghdr) + sizeof(inet_diag_msg), SOCK_DIAG_BY_FAMILY, 0,
                           sequence_, kPortId};
    reply.socket.idiag_family = AF_INET;
    reply.socket.idiag_state = 10;  // listen
    reply.socket.id.idiag_sport = htons(8080);
    reply.socket.idiag_inode = 1001;
    reply.done_header = {sizeof(nlmsghdr) + sizeof(int), NLMSG_DONE, 0, sequence_, kPortId};
    std::memcpy(buffer.data(), &reply, sizeof(reply));
    return netlink::Received{sizeof(reply), false};
  }
  uint32_t PortId() const override { return kPortId; }

 private:
  static constexpr uint32_t kPortId = 77;
  uint32_t sequence_ = 0;
  bool answered_ = false;
};

portwatch::BindEventsCollector& Collector() {
  static portwatch::BindEventsCollector collector(
      portwatch::ProcFs(PORTWATCH_FIXTURES "/proc"),
      []() -> portwatch::Result<std::unique_ptr<netlink::Transport>> {
        if (!table_readable) {
          return portwatch::Failure{"fuzz: no netlink"};
        }
        return std::unique_ptr<netlink::Transport>(std::make_unique<OneListener>());
      },
      [](const std::vector<portwatch::BindEventsAttach>& /*allowed*/,
         const portwatch::BindEventHandler& /*handler*/) { return std::make_unique<NoSource>(); },
      portwatch::BindEventsConfig{}, kOwnNetns, [](const std::string& /*line*/) {});
  return collector;
}

bool Printable(const std::string& text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

/// The sum of portwatch_bind_failures_total.
double Total(const portwatch::BindFailureCounters& counters) {
  std::vector<prometheus::MetricFamily> families;
  counters.AppendMetrics(families);
  portwatch::fuzz::Render(families);
  double total = 0;
  for (const prometheus::MetricFamily& family : families) {
    if (family.name == "portwatch_bind_failures_total") {
      for (const prometheus::ClientMetric& metric : family.metric) {
        total += metric.counter.value;
      }
    }
  }
  return total;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kRecord = sizeof(portwatch_bind_event) + 3;
  if (size < 2) {
    return 0;
  }
  portwatch::BindFailureCounters::Options options;
  options.max_port_series = data[0];
  options.only_netns = (data[1] & 1) != 0 ? kOwnNetns : 0;
  table_readable = (data[1] & 2) == 0;

  // The kernel map has one counter per distinct raw key.
  std::map<std::vector<uint8_t>, std::pair<uint64_t, uint64_t>> counters_by_raw_key;
  std::vector<std::pair<portwatch::BindFailureKey, uint64_t>> first;
  std::vector<std::pair<portwatch::BindFailureKey, uint64_t>> second;
  uint64_t expected_first = 0;
  uint64_t expected_second = 0;
  // 32 records are plenty for key collisions and the port cap; more only slow the target down.
  constexpr size_t kMaxRecords = 32;
  constexpr size_t kDescribed = 4;
  size_t described = 0;
  const size_t end = 2 + std::min(size - 2, kMaxRecords * kRecord);
  for (size_t offset = 2; offset + kRecord <= end; offset += kRecord) {
    portwatch_bind_event raw{};
    std::memcpy(&raw, data + offset, sizeof(raw));
    const uint8_t* counts = data + offset + sizeof(raw);
    const portwatch::BindFailureEvent event = portwatch::DecodeBindEvent(raw);
    Check(event.key.comm.size() <= PORTWATCH_COMM_LEN && Printable(event.key.comm),
          "a comm label is at most 16 printable characters");
    Check(!portwatch::SyscallLabel(event.key.syscall).empty(), "every syscall has a label");
    Check(!portwatch::ErrnoLabel(event.key.err).empty(), "every errno has a label");
    if (!event.address.empty()) {
      unsigned char address[16];
      Check(::inet_pton(event.key.family, event.address.c_str(), address) == 1,
            "a decoded address parses back");
    }
    // A log line reads the socket table and /proc: a few per input keep the target fast (the
    // exporter itself logs at most kLogBurst in a burst).
    if (described++ < kDescribed) {
      Check(Printable(Collector().DescribeFailure(event)), "a log line has no control characters");
    }

    const portwatch::BindFailureKey key = portwatch::DecodeBindKey(raw.key);
    Check(key == event.key, "a map key and a ring buffer event decode alike");
    const auto* key_bytes = reinterpret_cast<const uint8_t*>(&raw.key);
    std::vector<uint8_t> raw_key(key_bytes, key_bytes + sizeof(raw.key));
    const uint64_t count = counts[0] | (uint64_t{counts[1]} << 8);
    const uint64_t later = count + counts[2];
    if (!counters_by_raw_key.try_emplace(raw_key, count, later).second) {
      continue;
    }
    first.emplace_back(key, count);
    second.emplace_back(key, later);
    if (options.only_netns == 0 || key.netns == options.only_netns) {
      expected_first += count;
      expected_second += later;
    }
  }

  portwatch::BindFailureCounters counters;
  const std::set<uint16_t> kept = {80, 443, 8080};
  counters.Update(first, kept, options);
  Check(Total(counters) == static_cast<double>(expected_first),
        "the first scrape counts every failure once");
  counters.Update(second, kept, options);
  Check(Total(counters) == static_cast<double>(expected_second),
        "the second scrape counts every failure once");
  return 0;
}
