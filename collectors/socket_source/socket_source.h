#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "collectors/common/result.h"
#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"

namespace portwatch {

/// Where a network namespace's sockets are read from.
enum class SocketBackend : uint8_t {
  kNetlink,  ///< sock_diag dumps: every kernel, no SO_REUSEADDR flags
  kBpf,      ///< BPF socket iterators: the flags of every socket, one walk for both families
};
std::string_view BackendName(SocketBackend backend);

/// collectors.sockets.backend: which backend reads socket tables.
enum class SocketBackendSetting : uint8_t {
  kAuto,     ///< BPF iterators where they load and iterate exactly once (TCP 6.17+, UDP 6.16+)
  kNetlink,  ///< sock_diag only
  kBpf,      ///< BPF iterators wherever they load, even on kernels that may skip or repeat a
             ///< socket of a walk under churn
};

/// The sockets of one network namespace, for one scrape (or one question): the one interface the
/// collectors read socket tables through, whichever backend answers.
class SocketSource {
 public:
  virtual ~SocketSource() = default;

  /// Opens what every walk needs (a sock_diag socket); a failure means no table can be read.
  virtual Status Open() { return {}; }

  /// The backend that answers ordinary requests of `protocol` (those it cannot answer, such as
  /// bound-inactive sockets for BPF, go to sock_diag).
  virtual SocketBackend Backend(netlink::Protocol protocol) const = 0;
  /// Whether the kernel applies a request's state and port filters before anything reaches user
  /// space (sock_diag's bytecode), so that narrow requests are cheaper than whole walks. A source
  /// that filters in user space is better asked once for everything.
  virtual bool FiltersInKernel(netlink::Protocol protocol) const = 0;
  /// Whether DumpRequest::both_families is taken for `protocol`: one walk returns both families.
  virtual bool WalksBothFamilies(netlink::Protocol protocol) const = 0;
  /// Every socket `request` asks for, handed to `visit`; the netlink::Dump contract (kComplete
  /// only when the walk reached the table's end; a failure names the table).
  virtual netlink::DumpResult Walk(const netlink::DumpRequest& request,
                                   const netlink::SocketVisitor& visit) = 0;
};

/// Makes the source of one namespace for one scrape, or says why it cannot.
using SocketSourceFactory = std::function<Result<std::unique_ptr<SocketSource>>()>;

/// sock_diag dumps over a transport opened at the first request (a scrape answered entirely
/// from recordings opens none).
class NetlinkSocketSource : public SocketSource {
 public:
  explicit NetlinkSocketSource(netlink::TransportFactory open);

  Status Open() override;

  SocketBackend Backend(netlink::Protocol /*protocol*/) const override {
    return SocketBackend::kNetlink;
  }
  bool FiltersInKernel(netlink::Protocol /*protocol*/) const override { return true; }
  /// The older TCP request that walks both families is not taken by every kernel: whoever wants
  /// it asks for it and handles the refusal (see SocketsCollector).
  bool WalksBothFamilies(netlink::Protocol /*protocol*/) const override { return false; }
  netlink::DumpResult Walk(const netlink::DumpRequest& request,
                           const netlink::SocketVisitor& visit) override;

 private:
  netlink::TransportFactory open_;
  std::unique_ptr<netlink::Transport> transport_;
};

/// A factory of NetlinkSocketSource over `open`.
SocketSourceFactory NetlinkSources(netlink::TransportFactory open);

}  // namespace portwatch
