#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

namespace portwatch {

struct WebOptions {
  std::string listen_address = ":9792";
  std::string telemetry_path = "/metrics";
  std::string version;
};

/// "host:port", ":port" or "[v6]:port" split into parts; port 0 asks the kernel for one.
struct ListenAddress {
  std::string host;  ///< empty: every address
  uint16_t port = 0;
};

/// Parses a --web.listen-address value. Returns false with `error` set on a malformed one.
bool ParseListenAddress(const std::string& text, ListenAddress& address, std::string& error);

/// The HTTP side: /metrics (prometheus-cpp Exposer on CivetWeb), a landing page, /-/healthy,
/// /-/ready and POST /-/reload. One per process.
class WebServer {
 public:
  /// Answers POST /-/reload: empty string on success, else the error.
  using ReloadHandler = std::function<std::string()>;

  /// Starts listening. Throws std::runtime_error when the address cannot be bound.
  WebServer(const WebOptions& options, const ListenAddress& address,
            const std::weak_ptr<prometheus::Collectable>& metrics, ReloadHandler reload);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  std::vector<int> ListeningPorts() const { return exposer_->GetListeningPorts(); }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace portwatch
