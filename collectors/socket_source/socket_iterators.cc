#include "collectors/socket_source/socket_iterators.h"

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/libbpf_log.h"
#include "collectors/common/logfmt.h"
#include "collectors/socket_source/iterator_walk.h"

#if PORTWATCH_HAVE_BPF
#include "collectors/bpf/socket_iter_skel.h"
#endif

namespace portwatch {

namespace {

using netlink::Protocol;

#if PORTWATCH_HAVE_BPF
portwatch_socket_iter_protocol ProgramOf(Protocol protocol) {
  return protocol == Protocol::kTcp ? PORTWATCH_SOCKET_ITER_TCP : PORTWATCH_SOCKET_ITER_UDP;
}
#endif

}  // namespace

Result<std::shared_ptr<const SocketIterators>> SocketIterators::Load() {
#if PORTWATCH_HAVE_BPF
  RouteLibbpfLogs();
  int error = 0;
  const char* stage = "";
  portwatch_socket_iter* programs = portwatch_socket_iter_open(&error, &stage);
  std::array<bool, 2> exact{};
  if (programs != nullptr) {
    for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
      exact[Index(protocol)] = portwatch_socket_iter_exact(ProgramOf(protocol)) == 1;
    }
  }
  // Loading and the probe parse the kernel's BTF (about 10 MiB on 6.18), freed by libbpf right
  // after: give it back to the system rather than keep it in the heap.
  ::malloc_trim(0);
  if (programs == nullptr) {
    return Failure{ErrnoText(std::string("socket iterators: ") + stage, error) +
                   (error == EPERM ? " (needs CAP_BPF and CAP_PERFMON)" : "")};
  }
  return std::shared_ptr<const SocketIterators>(new SocketIterators(programs, exact));
#else
  return Failure{"socket iterators: built without eBPF support (cmake -DPORTWATCH_BPF=OFF)"};
#endif
}

SocketIterators::~SocketIterators() {
#if PORTWATCH_HAVE_BPF
  portwatch_socket_iter_destroy(programs_);
#endif
}

Result<netlink::UniqueFd> SocketIterators::Create(Protocol protocol) const {
#if PORTWATCH_HAVE_BPF
  const int fd = portwatch_socket_iter_create(programs_, ProgramOf(protocol));
  if (fd < 0) {
    return Failure{ErrnoText("socket iterator: create", -fd)};
  }
  return netlink::UniqueFd(fd);
#else
  (void)protocol;
  return Failure{"socket iterators: built without eBPF support"};
#endif
}

void SocketIterators::SetInodePorts(const std::bitset<65536>& ports) const {
#if PORTWATCH_HAVE_BPF
  std::array<__u64, 1024> words{};
  for (size_t port = ports._Find_first(); port < ports.size(); port = ports._Find_next(port)) {
    words[port / 64] |= __u64{1} << (port % 64);
  }
  portwatch_socket_iter_set_inode_ports(programs_, words.data());
#else
  (void)ports;
#endif
}

BpfSocketSource::BpfSocketSource(CreateWalk create, std::array<bool, 2> use_bpf,
                                 std::unique_ptr<SocketSource> fallback,
                                 std::function<void(const std::string&)> on_fallback)
    : create_(std::move(create)),
      use_bpf_(use_bpf),
      fallback_(std::move(fallback)),
      on_fallback_(std::move(on_fallback)) {}

SocketBackend BpfSocketSource::Backend(Protocol protocol) const {
  return UsesBpf(protocol) ? SocketBackend::kBpf : fallback_->Backend(protocol);
}

bool BpfSocketSource::FiltersInKernel(Protocol protocol) const {
  return !UsesBpf(protocol) && fallback_->FiltersInKernel(protocol);
}

bool BpfSocketSource::WalksBothFamilies(Protocol protocol) const {
  return UsesBpf(protocol) || fallback_->WalksBothFamilies(protocol);
}

netlink::DumpResult BpfSocketSource::Walk(const netlink::DumpRequest& request,
                                          const netlink::SocketVisitor& visit) {
  // The iterators walk the established and listening hashes: bound-inactive TCP sockets are in
  // neither.
  if (!UsesBpf(request.protocol) || (request.states & netlink::kBoundInactiveStates) != 0) {
    return WalkFallback(request, visit);
  }
  Result<netlink::UniqueFd> walk = create_(request.protocol);
  if (!walk) {
    // Nothing was read yet: sock_diag answers this request without counting anything twice.
    on_fallback_(walk.Error());
    return WalkFallback(request, visit);
  }
  const int fd = walk->Get();
  return ReadIteratorWalk(
      [fd](std::span<std::byte> buffer) -> ssize_t {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        return got >= 0 ? got : -errno;
      },
      request, visit);
}

netlink::DumpResult BpfSocketSource::WalkFallback(const netlink::DumpRequest& request,
                                                  const netlink::SocketVisitor& visit) {
  if (!request.both_families || fallback_->WalksBothFamilies(request.protocol)) {
    return fallback_->Walk(request, visit);
  }
  // This source said it walks both families at once, so callers ask for both in one request;
  // sock_diag takes that only as the older inet_diag request, which not every kernel answers.
  // A refusal reads nothing, so asking again per family counts nothing twice.
  if (!both_families_refused_) {
    netlink::DumpResult both = fallback_->Walk(request, visit);
    const bool refused = both.outcome == netlink::DumpOutcome::kUnsupported ||
                         (both.outcome == netlink::DumpOutcome::kFailed && both.sockets == 0);
    if (!refused) {
      return both;
    }
    both_families_refused_ = true;
  }
  netlink::DumpResult merged;
  merged.outcome = netlink::DumpOutcome::kUnsupported;
  for (const netlink::Family family : {netlink::Family::kIpv4, netlink::Family::kIpv6}) {
    netlink::DumpRequest one = request;
    one.family = family;
    one.both_families = false;
    netlink::DumpResult result = fallback_->Walk(one, visit);
    merged.sockets += result.sockets;
    merged.stray_messages += result.stray_messages;
    if (result.outcome == netlink::DumpOutcome::kFailed ||
        result.outcome == netlink::DumpOutcome::kInterrupted) {
      merged.outcome = result.outcome;
      merged.error = result.error;
      break;
    }
    if (result.outcome == netlink::DumpOutcome::kComplete) {
      merged.outcome = netlink::DumpOutcome::kComplete;
    }
  }
  return merged;
}

std::array<bool, 2> ChooseBpfProtocols(SocketBackendSetting setting, bool loaded,
                                       std::array<bool, 2> exact) {
  switch (setting) {
    case SocketBackendSetting::kNetlink:
      return {false, false};
    case SocketBackendSetting::kBpf:
      return {loaded, loaded};
    default:
      return {loaded && exact[0], loaded && exact[1]};
  }
}

SocketSources::SocketSources(netlink::TransportFactory open_netlink, LoadSocketIterators load)
    : open_netlink_(std::move(open_netlink)), load_(std::move(load)) {}

std::shared_ptr<SocketSources> SocketSources::NetlinkOnly(netlink::TransportFactory open_netlink) {
  return std::make_shared<SocketSources>(
      std::move(open_netlink), []() -> Result<std::shared_ptr<const SocketIterators>> {
        return Failure{"socket iterators: not offered to this collector"};
      });
}

std::shared_ptr<const SocketIterators> SocketSources::Iterators() {
  std::lock_guard lock(mutex_);
  if (!load_tried_) {
    load_tried_ = true;
    Result<std::shared_ptr<const SocketIterators>> loaded = load_();
    if (loaded) {
      iterators_ = std::move(loaded).Value();
      spdlog::debug("{}", LogLine("socket iterators loaded")
                              .Add("tcp_exact", iterators_->Exact(Protocol::kTcp))
                              .Add("udp_exact", iterators_->Exact(Protocol::kUdp))
                              .Text());
    } else {
      load_error_ = loaded.Error();
      spdlog::info("{}", LogLine("socket iterators unavailable, reading sockets through sock_diag")
                             .Add("err", load_error_)
                             .Text());
    }
  }
  return iterators_;
}

std::pair<std::shared_ptr<const SocketIterators>, std::array<bool, 2>> SocketSources::Choose(
    SocketBackendSetting setting, const std::bitset<65536>& inode_ports) {
  if (setting == SocketBackendSetting::kNetlink) {
    return {nullptr, {false, false}};
  }
  std::shared_ptr<const SocketIterators> iterators = Iterators();
  const std::array<bool, 2> exact =
      iterators
          ? std::array<bool, 2>{iterators->Exact(Protocol::kTcp), iterators->Exact(Protocol::kUdp)}
          : std::array<bool, 2>{};
  const std::array<bool, 2> use_bpf = ChooseBpfProtocols(setting, iterators != nullptr, exact);
  if (!use_bpf[0] && !use_bpf[1]) {
    return {nullptr, use_bpf};
  }
  iterators->SetInodePorts(inode_ports);
  return {std::move(iterators), use_bpf};
}

void SocketSources::CountFallback(const std::string& reason, const std::string& error) {
  std::lock_guard lock(mutex_);
  if (fallbacks_[reason]++ == 0) {
    spdlog::warn("{}", LogLine("cannot start a socket iterator walk, using sock_diag")
                           .Add("reason", reason)
                           .Add("err", error)
                           .Text());
  }
}

std::unique_ptr<SocketSource> SocketSources::Open(SocketBackendSetting setting,
                                                  const std::bitset<65536>& inode_ports) {
  auto netlink_source = std::make_unique<NetlinkSocketSource>(open_netlink_);
  auto [iterators, use_bpf] = Choose(setting, inode_ports);
  if (!iterators) {
    return netlink_source;
  }
  return std::make_unique<BpfSocketSource>(
      [iterators = iterators](Protocol protocol) { return iterators->Create(protocol); }, use_bpf,
      std::move(netlink_source),
      [this](const std::string& error) { CountFallback("create", error); });
}

std::unique_ptr<SocketSource> SocketSources::OpenPod(SocketBackendSetting setting,
                                                     const std::bitset<65536>& inode_ports,
                                                     CreateInside create_inside,
                                                     netlink::TransportFactory netlink_fallback,
                                                     std::array<bool, 2> allow) {
  auto netlink_source = std::make_unique<NetlinkSocketSource>(std::move(netlink_fallback));
  auto [iterators, use_bpf] = Choose(setting, inode_ports);
  use_bpf = {use_bpf[0] && allow[0], use_bpf[1] && allow[1]};
  if (!iterators || (!use_bpf[0] && !use_bpf[1])) {
    return netlink_source;
  }
  return MakePodSource(
      [iterators = iterators](Protocol protocol) { return iterators->Create(protocol); },
      std::move(create_inside), use_bpf, std::move(netlink_source),
      [this](const std::string& reason, const std::string& error) {
        CountFallback(reason, error);
      });
}

std::unique_ptr<SocketSource> MakePodSource(
    CreateWalk create_walk, CreateInside create_inside, std::array<bool, 2> use_bpf,
    std::unique_ptr<SocketSource> fallback,
    std::function<void(const std::string& reason, const std::string& error)> on_fallback) {
  // The source's walks run one after the other on the scrape's thread: the reason of the walk
  // that just failed to start is read right after by the fallback callback.
  auto reason = std::make_shared<std::string>();
  return std::make_unique<BpfSocketSource>(
      [create_walk = std::move(create_walk), create_inside = std::move(create_inside),
       reason](Protocol protocol) -> Result<netlink::UniqueFd> {
        bool made = false;
        Result<netlink::UniqueFd> walk = create_inside([&create_walk, &made, protocol] {
          made = true;
          return create_walk(protocol);
        });
        *reason = made ? "create" : "setns";
        return walk;
      },
      use_bpf, std::move(fallback),
      [on_fallback = std::move(on_fallback), reason](const std::string& error) {
        on_fallback(*reason, error);
      });
}

void SocketSources::Preload(SocketBackendSetting setting) {
  if (setting != SocketBackendSetting::kNetlink) {
    Iterators();
  }
}

SocketSources::Snapshot SocketSources::Current() const {
  std::lock_guard lock(mutex_);
  Snapshot snapshot;
  snapshot.fallbacks = fallbacks_;
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    const size_t index = SocketIterators::Index(protocol);
    if (!load_tried_) {
      snapshot.unavailable_because[index] = "not loaded (collectors.sockets.backend: netlink)";
    } else if (!iterators_) {
      snapshot.unavailable_because[index] = load_error_;
    } else if (!iterators_->Exact(protocol)) {
      snapshot.unavailable_because[index] =
          "this kernel may skip or repeat sockets of a walk under churn (exact iteration: TCP "
          "Linux 6.17+, UDP 6.16+)";
    } else {
      snapshot.available[index] = true;
    }
  }
  return snapshot;
}

}  // namespace portwatch
