#include "collectors/bind_events/bind_events_table.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "collectors/collector.h"
#include "collectors/common/family_builder.h"

namespace portwatch {

std::string_view SyscallLabel(uint8_t syscall) {
  switch (syscall) {
    case PORTWATCH_SYSCALL_BIND:
      return "bind";
    case PORTWATCH_SYSCALL_LISTEN:
      return "listen";
    case PORTWATCH_SYSCALL_CONNECT:
      return "connect";
    default:
      return "unknown";
  }
}

std::string ErrnoLabel(uint8_t err) {
  switch (err) {
    case EADDRINUSE:
      return "EADDRINUSE";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    case EACCES:
      return "EACCES";
    default:
      return std::to_string(err);
  }
}

std::string_view FamilyLabel(uint16_t family) {
  switch (family) {
    case AF_INET:
      return "ipv4";
    case AF_INET6:
      return "ipv6";
    default:
      return "unknown";
  }
}

std::string CommLabel(const char* comm, size_t size) {
  std::string label;
  for (size_t i = 0; i < size && comm[i] != '\0'; ++i) {
    const char c = comm[i];
    label += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '_';
  }
  return label;
}

BindFailureKey DecodeBindKey(const portwatch_bind_key& raw) {
  BindFailureKey key;
  key.netns = raw.netns;
  key.port = raw.port;
  key.syscall = raw.syscall;
  key.err = raw.err;
  key.family = raw.family;
  key.comm = CommLabel(raw.comm, sizeof(raw.comm));
  return key;
}

BindFailureEvent DecodeBindEvent(const portwatch_bind_event& raw) {
  BindFailureEvent event;
  event.key = DecodeBindKey(raw.key);
  event.pid = static_cast<pid_t>(raw.pid);
  event.uid = raw.uid;
  if (raw.key.syscall != PORTWATCH_SYSCALL_LISTEN &&
      (raw.key.family == AF_INET || raw.key.family == AF_INET6)) {
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(raw.key.family, raw.addr, text, sizeof(text)) != nullptr) {
      event.address = text;
    }
  }
  return event;
}

void BindFailureCounters::Update(const std::vector<std::pair<BindFailureKey, uint64_t>>& snapshot,
                                 const std::set<uint16_t>& kept_ports, const Options& options) {
  // Several kernel keys can decode to one key (comm bytes that CommLabel turns into '_', bytes
  // after the comm's NUL): add their counters up first. Taken one by one they would each be
  // compared with the other's last count, and every scrape would count their difference again.
  std::map<BindFailureKey, uint64_t> counts;
  for (const auto& [key, count] : snapshot) {
    counts[key] += count;
  }
  // Increases since the last scrape, the busiest first so they win the free port labels.
  std::vector<std::pair<const BindFailureKey*, uint64_t>> increases;
  for (const auto& [key, count] : counts) {
    uint64_t& last = last_[key];
    // A counter never shrinks in the kernel; if it did (map recreated), count it from zero.
    const uint64_t increase = count >= last ? count - last : count;
    last = count;
    if (increase == 0 || (options.only_netns != 0 && key.netns != options.only_netns)) {
      continue;
    }
    increases.emplace_back(&key, increase);
  }
  std::stable_sort(increases.begin(), increases.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [key, increase] : increases) {
    std::string port = std::to_string(key->port);
    if (kept_ports.count(key->port) == 0 && labelled_ports_.count(key->port) == 0) {
      if (labelled_ports_.size() < options.max_port_series) {
        labelled_ports_.insert(key->port);
      } else {
        folded_ports_.insert(key->port);
        port = "other";
      }
    }
    series_[SeriesKey{std::string(SyscallLabel(key->syscall)), ErrnoLabel(key->err),
                      std::string(FamilyLabel(key->family)), port, key->comm,
                      std::to_string(key->netns)}] += increase;
  }
}

void BindFailureCounters::AppendMetrics(std::vector<prometheus::MetricFamily>& out) const {
  FamilyBuilder failures(
      "portwatch_bind_failures_total",
      "Failed bind() (EADDRINUSE, EADDRNOTAVAIL, EACCES), listen() (EADDRINUSE) and connect() "
      "(EADDRNOTAVAIL) calls seen by eBPF, by the port the caller asked for (connect: the "
      "destination port), process name and network namespace inode.",
      prometheus::MetricType::Counter);
  for (const auto& [labels, value] : series_) {
    const auto& [syscall, err, family, port, process, netns] = labels;
    failures.Add({{"errno", err},
                  {"family", family},
                  {"netns", netns},
                  {"port", port},
                  {"process", process},
                  {"syscall", syscall}},
                 static_cast<double>(value));
  }
  failures.MoveTo(out);
  FamilyBuilder folded("portwatch_bind_failures_port_series_folded",
                       "Distinct ports counted under port=\"other\" in "
                       "portwatch_bind_failures_total because max_port_series was reached.",
                       prometheus::MetricType::Gauge);
  folded.Add(static_cast<double>(folded_ports_.size()));
  folded.MoveTo(out);
}

}  // namespace portwatch
