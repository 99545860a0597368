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
                                 const std::set<uint16_t>& kept_ports, const Options& options,
                                 const PodLookup& pods, std::chrono::steady_clock::time_point now) {
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
  // One lookup per namespace and scrape, however many keys and series it has.
  std::map<uint32_t, std::optional<PodLabels>> looked_up;
  const PodLookup found = [&pods, &looked_up](uint32_t netns) {
    const auto [entry, inserted] = looked_up.try_emplace(netns);
    if (inserted) {
      entry->second = pods(netns);
    }
    return entry->second;
  };
  if (!pods) {
    ForgetPods();
  }
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
                      std::string(FamilyLabel(key->family)), port, key->comm, key->netns,
                      pods ? Attribute(key->netns, found) : std::nullopt}] += increase;
  }
  if (pods) {
    ForgetGonePods(found, now);
  }
}

std::optional<PodLabels> BindFailureCounters::Attribute(uint32_t netns, const PodLookup& found) {
  if (std::optional<PodLabels> pod = found(netns)) {
    pod_of_netns_[netns] = *pod;
    return pod;
  }
  // Not (or no longer) a pod's: the pod it belonged to when last seen, if any. The failure
  // happened before the scrape, maybe while the pod was still there.
  const auto remembered = pod_of_netns_.find(netns);
  return remembered != pod_of_netns_.end() ? std::optional(remembered->second) : std::nullopt;
}

void BindFailureCounters::ForgetGonePods(const PodLookup& found,
                                         std::chrono::steady_clock::time_point now) {
  std::set<std::pair<uint32_t, PodLabels>> with_series;
  for (const auto& [labels, value] : series_) {
    if (labels.pod) {
      with_series.emplace(labels.netns, *labels.pod);
    }
  }
  for (const auto& [netns, pod] : with_series) {
    if (found(netns) == pod) {
      gone_since_.erase({netns, pod});
      continue;
    }
    const auto gone = gone_since_.try_emplace({netns, pod}, now).first;
    if (now - gone->second < kForgetGonePodsAfter) {
      continue;
    }
    gone_since_.erase(gone);
    std::erase_if(series_, [netns = netns, &pod = pod](const auto& series) {
      return series.first.netns == netns && series.first.pod == pod;
    });
    const auto remembered = pod_of_netns_.find(netns);
    if (remembered != pod_of_netns_.end() && remembered->second == pod) {
      pod_of_netns_.erase(remembered);
    }
  }
}

void BindFailureCounters::ForgetPods() {
  std::erase_if(series_, [](const auto& series) { return series.first.pod.has_value(); });
  pod_of_netns_.clear();
  gone_since_.clear();
}

void BindFailureCounters::AppendMetrics(std::vector<prometheus::MetricFamily>& out) const {
  FamilyBuilder failures(
      "portwatch_bind_failures_total",
      "Failed bind() (EADDRINUSE, EADDRNOTAVAIL, EACCES), listen() (EADDRINUSE) and connect() "
      "(EADDRNOTAVAIL) calls seen by eBPF, by the port the caller asked for (connect: the "
      "destination port), process name and network namespace inode; failures in a pod's network "
      "namespace also by the pod's namespace and name.",
      prometheus::MetricType::Counter);
  for (const auto& [labels, value] : series_) {
    // In name order, as every other family's labels.
    std::vector<prometheus::ClientMetric::Label> names = {{"errno", labels.err},
                                                          {"family", labels.family}};
    if (labels.pod) {
      names.push_back({"namespace", labels.pod->namespace_name});
    }
    names.push_back({"netns", std::to_string(labels.netns)});
    if (labels.pod) {
      names.push_back({"pod", labels.pod->pod});
    }
    names.insert(names.end(),
                 {{"port", labels.port}, {"process", labels.process}, {"syscall", labels.syscall}});
    failures.Add(names, static_cast<double>(value));
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
