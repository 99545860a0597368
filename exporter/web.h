#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>

#include "collectors/common/result.h"

class CivetServer;

namespace portwatch {
class WebConfigStore;
}  // namespace portwatch

namespace portwatch {

struct WebOptions {
  std::string listen_address = ":9792";
  std::string telemetry_path = "/metrics";
  std::string version;
  /// Concurrent scrapes (GET or HEAD on the telemetry path); beyond it: 503 and
  /// portwatch_http_requests_rejected_total{reason="max_requests"}. 0: no cap of its own (the
  /// connection cap still holds).
  size_t max_requests = 64;
  /// Connections served at once (CivetWeb worker threads); more wait in the kernel's accept queue.
  size_t max_connections = 128;
  /// POST /-/reload answers 403 unless set (--web.enable-lifecycle, as in Prometheus); SIGHUP
  /// always reloads.
  bool enable_lifecycle = false;
  /// --web.config.file: TLS, basic authentication and response headers (exporter-toolkit
  /// format); empty: plain HTTP, no authentication.
  std::string web_config_file;
};

/// What the server does with one request, decided from its method and path alone.
enum class Route : uint8_t {
  kMetrics,           ///< GET or HEAD on the telemetry path
  kLandingPage,       ///< GET or HEAD /
  kHealthy,           ///< GET or HEAD /-/healthy
  kReady,             ///< GET or HEAD /-/ready
  kReload,            ///< POST or PUT /-/reload
  kNotFound,          ///< GET or HEAD on any other path
  kMethodNotAllowed,  ///< any other method: 405 with `allow`
};

struct RouteDecision {
  Route route = Route::kNotFound;
  bool head = false;       ///< answer without a body
  std::string_view allow;  ///< the Allow header of a 405
};

/// Routes a request. Methods are case-sensitive (RFC 9110): "get" is not GET.
RouteDecision RouteRequest(std::string_view method, std::string_view path,
                           std::string_view telemetry_path);

/// "host:port", ":port" or "[v6]:port" split into parts; port 0 asks the kernel for one.
struct ListenAddress {
  std::string host;  ///< empty: every address
  uint16_t port = 0;
};

/// Parses a --web.listen-address value.
Result<ListenAddress> ParseListenAddress(const std::string& text);

/// The HTTP side on CivetWeb: the telemetry path, a landing page, /-/healthy, /-/ready and
/// POST /-/reload. One per process.
///
/// Hostile clients are expected: every method gets an answer (RouteRequest), connections that
/// never send a byte are held back by the kernel (TCP_DEFER_ACCEPT) instead of a worker, a
/// request head must arrive within kRequestTimeoutMs, and concurrent scrapes are capped.
class WebServer {
 public:
  /// Answers POST /-/reload.
  using ReloadHandler = std::function<Status()>;

  /// Starts listening. Throws std::runtime_error when the address cannot be bound. Without a
  /// `web_config` (Open("") of one), plain HTTP without authentication.
  WebServer(const WebOptions& options, const ListenAddress& address,
            const std::weak_ptr<prometheus::Collectable>& metrics, ReloadHandler reload,
            std::unique_ptr<WebConfigStore> web_config = nullptr);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  std::vector<int> ListeningPorts() const;

 private:
  std::unique_ptr<WebConfigStore> web_config_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace portwatch
