#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "collectors/common/result.h"
#include "collectors/socket_source/socket_source.h"

struct portwatch_socket_iter;

namespace portwatch {

/// The socket iterator programs (collectors/bpf/socket_iter.bpf.c), loaded and attached once per
/// process: each walk is a new iterator fd made from them.
class SocketIterators {
 public:
  /// Loads them, or says why not (a build without BPF, no CAP_BPF/CAP_PERFMON, no BTF, a
  /// seccomp filter or lockdown refusing bpf()).
  static Result<std::shared_ptr<const SocketIterators>> Load();

  SocketIterators(const SocketIterators&) = delete;
  SocketIterators& operator=(const SocketIterators&) = delete;
  ~SocketIterators();

  /// A new walk of `protocol`'s table in the network namespace of the calling thread.
  Result<netlink::UniqueFd> Create(netlink::Protocol protocol) const;
  /// The local ports whose sockets' inodes later walks report, besides those of listeners and
  /// unbound UDP sockets (which always carry theirs): the configured services' ports. The other
  /// sockets' records carry inode 0, sparing the walk a cache miss per socket. Sets the loaded
  /// programs' global data, shared by every walk of this process.
  void SetInodePorts(const std::bitset<65536>& ports) const;
  /// Whether this kernel walks `protocol`'s table exactly once under churn (its BTF has the
  /// 2025 batching fixes); probed at load.
  bool Exact(netlink::Protocol protocol) const { return exact_[Index(protocol)]; }

  static size_t Index(netlink::Protocol protocol) {
    return protocol == netlink::Protocol::kTcp ? 0 : 1;
  }

 private:
  SocketIterators(portwatch_socket_iter* programs, std::array<bool, 2> exact)
      : programs_(programs), exact_(exact) {}

  portwatch_socket_iter* programs_;
  std::array<bool, 2> exact_;
};

/// Loads the iterators (SocketIterators::Load in production).
using LoadSocketIterators = std::function<Result<std::shared_ptr<const SocketIterators>>()>;
/// Makes one BPF walk's fd: the bytes of the walk in the calling thread's namespace.
using CreateWalk = std::function<Result<netlink::UniqueFd>(netlink::Protocol protocol)>;
/// Runs `make` inside another network namespace and returns what it made; fails without running
/// it when that namespace cannot be entered (PodNamespaces::CreateInside in production).
using CreateInside = std::function<Result<netlink::UniqueFd>(
    const std::function<Result<netlink::UniqueFd>()>& make)>;

/// BPF iterators for the protocols in `use_bpf`, `fallback` (sock_diag) for the others and for
/// what an iterator cannot see (bound-inactive TCP sockets). One walk per request, both families
/// in it, filtered in user space.
class BpfSocketSource : public SocketSource {
 public:
  /// `on_fallback` is told the reason when a walk could not even start and sock_diag answered.
  BpfSocketSource(CreateWalk create, std::array<bool, 2> use_bpf,
                  std::unique_ptr<SocketSource> fallback,
                  std::function<void(const std::string&)> on_fallback);

  SocketBackend Backend(netlink::Protocol protocol) const override;
  bool FiltersInKernel(netlink::Protocol protocol) const override;
  bool WalksBothFamilies(netlink::Protocol protocol) const override;
  netlink::DumpResult Walk(const netlink::DumpRequest& request,
                           const netlink::SocketVisitor& visit) override;

 private:
  bool UsesBpf(netlink::Protocol protocol) const {
    return use_bpf_[SocketIterators::Index(protocol)];
  }
  /// `request` through the fallback, one family at a time when it asks for both and the kernel
  /// refuses that.
  netlink::DumpResult WalkFallback(const netlink::DumpRequest& request,
                                   const netlink::SocketVisitor& visit);

  CreateWalk create_;
  std::array<bool, 2> use_bpf_;
  std::unique_ptr<SocketSource> fallback_;
  std::function<void(const std::string&)> on_fallback_;
  bool both_families_refused_ = false;  ///< the fallback refused a request for both families
};

/// Chooses the backend of the exporter's own network namespace, and of each pod's, from the config
/// and what the kernel and the process's privileges allow, loads the iterators at the first
/// scrape that may use them (once: a failure is not retried), and says what it chose for the
/// metrics.
class SocketSources {
 public:
  SocketSources(netlink::TransportFactory open_netlink, LoadSocketIterators load);
  /// Sources that always read through sock_diag over `open_netlink`: for a collector given no
  /// shared SocketSources (tests, the recording mode).
  static std::shared_ptr<SocketSources> NetlinkOnly(netlink::TransportFactory open_netlink);

  /// The source of one scrape. `inode_ports`: see SocketIterators::SetInodePorts (a netlink
  /// dump reports every socket's inode).
  std::unique_ptr<SocketSource> Open(SocketBackendSetting setting,
                                     const std::bitset<65536>& inode_ports = {});
  /// The source of one scrape of a pod: the same choice per protocol as Open(), each walk's
  /// iterator made inside the pod through `create_inside`, sock_diag over `netlink_fallback` (the
  /// pod's kept socket) for the rest and for walks that cannot start (reason "setns" when the pod's
  /// namespace could not be entered, "create" when the iterator could not be made there).
  /// `allow` (by SocketIterators::Index) leaves a protocol to sock_diag whatever the choice.
  std::unique_ptr<SocketSource> OpenPod(SocketBackendSetting setting,
                                        const std::bitset<65536>& inode_ports,
                                        CreateInside create_inside,
                                        netlink::TransportFactory netlink_fallback,
                                        std::array<bool, 2> allow = {true, true});

  /// Loads the iterators now when `setting` may use them, rather than at the first scrape: the
  /// load parses the kernel's BTF (several MiB, freed at once), which at start stacks on an empty
  /// heap instead of on a scrape's working set (measured: VmHWM 30.9 MiB against 25 MiB at 100k
  /// sockets when loaded by the first scrape).
  void Preload(SocketBackendSetting setting);

  struct Snapshot {
    /// Per protocol (SocketIterators::Index): whether the iterators can be used by `auto`.
    std::array<bool, 2> available{};
    /// Why they cannot (load failure, or a kernel without exact iteration), when not available.
    std::array<std::string, 2> unavailable_because;
    /// Walks that started on sock_diag instead, by reason ("create", "setns").
    std::map<std::string, uint64_t> fallbacks;
  };
  Snapshot Current() const;

 private:
  /// Loads the iterators once; null when they cannot be loaded.
  std::shared_ptr<const SocketIterators> Iterators();
  /// The iterators when `setting` uses them for a protocol (their inode ports set), and which.
  std::pair<std::shared_ptr<const SocketIterators>, std::array<bool, 2>> Choose(
      SocketBackendSetting setting, const std::bitset<65536>& inode_ports);
  /// Counts a walk that sock_diag answered instead; the first of each reason is logged.
  void CountFallback(const std::string& reason, const std::string& error);

  netlink::TransportFactory open_netlink_;
  LoadSocketIterators load_;
  mutable std::mutex mutex_;
  bool load_tried_ = false;
  std::shared_ptr<const SocketIterators> iterators_;
  std::string load_error_;
  std::map<std::string, uint64_t> fallbacks_;
};

/// A pod's source (SocketSources::OpenPod without the choice): a BpfSocketSource whose walks are
/// `create_walk` run inside the pod through `create_inside`, over `fallback`. `on_fallback` gets
/// the reason of a walk that could not start ("setns": `create_inside` did not run it; "create":
/// it ran and failed) and the error.
std::unique_ptr<SocketSource> MakePodSource(
    CreateWalk create_walk, CreateInside create_inside, std::array<bool, 2> use_bpf,
    std::unique_ptr<SocketSource> fallback,
    std::function<void(const std::string& reason, const std::string& error)> on_fallback);

/// Which protocols (SocketIterators::Index) a source uses BPF for, given `setting`, whether the
/// iterators loaded, and per protocol whether the kernel iterates exactly once.
std::array<bool, 2> ChooseBpfProtocols(SocketBackendSetting setting, bool loaded,
                                       std::array<bool, 2> exact);

}  // namespace portwatch
