#include "collectors/socket_source/socket_source.h"

#include <utility>

namespace portwatch {

std::string_view BackendName(SocketBackend backend) {
  return backend == SocketBackend::kBpf ? "bpf" : "netlink";
}

NetlinkSocketSource::NetlinkSocketSource(netlink::TransportFactory open) : open_(std::move(open)) {}

Status NetlinkSocketSource::Open() {
  if (transport_ == nullptr) {
    Result<std::unique_ptr<netlink::Transport>> opened = open_();
    if (!opened) {
      return Failure{opened.Error()};
    }
    transport_ = std::move(opened).Value();
  }
  return {};
}

netlink::DumpResult NetlinkSocketSource::Walk(const netlink::DumpRequest& request,
                                              const netlink::SocketVisitor& visit) {
  if (Status opened = Open(); !opened) {
    netlink::DumpResult failed;
    failed.error = opened.Error();
    return failed;
  }
  return netlink::Dump(*transport_, request, visit);
}

SocketSourceFactory NetlinkSources(netlink::TransportFactory open) {
  return [open = std::move(open)]() -> Result<std::unique_ptr<SocketSource>> {
    return std::unique_ptr<SocketSource>(std::make_unique<NetlinkSocketSource>(open));
  };
}

}  // namespace portwatch
