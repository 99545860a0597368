#include "exporter/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace portwatch {

namespace {

struct Routes {
  std::string telemetry_path;
  std::string version;
  WebServer::ReloadHandler reload;
};

// CivetWeb's begin_request callback has no user pointer of ours; one server per process.
std::atomic<Routes*> g_routes{nullptr};

void Respond(mg_connection* connection, int status, const char* content_type,
             const std::string& body) {
  mg_response_header_start(connection, status);
  mg_response_header_add(connection, "Content-Type", content_type, -1);
  mg_response_header_add(connection, "Content-Length", std::to_string(body.size()).c_str(), -1);
  mg_response_header_send(connection);
  mg_write(connection, body.data(), body.size());
}

std::string LandingPage(const Routes& routes) {
  return "<!DOCTYPE html>\n<html><head><title>portwatch exporter</title></head><body>\n"
         "<h1>portwatch exporter</h1>\n<p>Port ownership, TIME_WAIT and bind conflict metrics. "
         "Version " +
         routes.version + ".</p>\n<ul>\n<li><a href=\"" + routes.telemetry_path + "\">" +
         routes.telemetry_path +
         "</a></li>\n<li><a href=\"/-/healthy\">/-/healthy</a></li>\n"
         "<li><a href=\"/-/ready\">/-/ready</a></li>\n</ul>\n</body></html>\n";
}

/// Serves everything but the telemetry path; returns 0 to hand a request on to the Exposer.
int BeginRequest(mg_connection* connection) {
  Routes* routes = g_routes.load();
  const mg_request_info* request = mg_get_request_info(connection);
  if (routes == nullptr || request == nullptr || request->local_uri == nullptr) {
    return 0;
  }
  const std::string path = request->local_uri;
  const std::string method = request->request_method != nullptr ? request->request_method : "";
  if (path == routes->telemetry_path) {
    return 0;
  }
  if (path == "/-/healthy") {
    Respond(connection, 200, "text/plain; charset=utf-8", "Healthy\n");
  } else if (path == "/-/ready") {
    Respond(connection, 200, "text/plain; charset=utf-8", "Ready\n");
  } else if (path == "/-/reload") {
    if (method != "POST" && method != "PUT") {
      Respond(connection, 405, "text/plain; charset=utf-8", "Use POST to reload.\n");
    } else if (std::string error = routes->reload(); error.empty()) {
      Respond(connection, 200, "text/plain; charset=utf-8", "Config reloaded\n");
    } else {
      Respond(connection, 500, "text/plain; charset=utf-8",
              "Reload failed, previous config kept: " + error + "\n");
    }
  } else if (path == "/") {
    Respond(connection, 200, "text/html; charset=utf-8", LandingPage(*routes));
  } else {
    Respond(connection, 404, "text/plain; charset=utf-8", "Not found\n");
  }
  return 1;
}

/// Quiet CivetWeb: our own logs say what matters (a bind failure is reported by the caller).
int SilenceCivetLog(const mg_connection* /*connection*/, const char* /*message*/) { return 1; }

bool Ipv6Available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  ::close(fd);
  return true;
}

/// CivetWeb's listening_ports syntax; "+port" is one dual-stack IPv6 socket.
std::string CivetListeningPort(const ListenAddress& address) {
  const std::string port = std::to_string(address.port);
  if (address.host.empty()) {
    return Ipv6Available() ? "+" + port : port;
  }
  if (address.host.find(':') != std::string::npos) {
    return "[" + address.host + "]:" + port;
  }
  return address.host + ":" + port;
}

}  // namespace

bool ParseListenAddress(const std::string& text, ListenAddress& address, std::string& error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    error = "listen address \"" + text + "\" must be HOST:PORT, :PORT or [IPV6]:PORT";
    return false;
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    error = "listen address \"" + text + "\": put an IPv6 address in brackets, [::1]:PORT";
    return false;
  }
  const std::string port_text = text.substr(colon + 1);
  uint32_t port = 0;
  auto [next, parse_error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || parse_error != std::errc() ||
      next != port_text.data() + port_text.size() || port > 65535) {
    error = "listen address \"" + text + "\": port must be 0-65535";
    return false;
  }
  address.host = host;
  address.port = static_cast<uint16_t>(port);
  return true;
}

WebServer::WebServer(const WebOptions& options, const ListenAddress& address,
                     const std::weak_ptr<prometheus::Collectable>& metrics, ReloadHandler reload) {
  static Routes routes;
  routes = Routes{options.telemetry_path, options.version, std::move(reload)};
  g_routes.store(&routes);

  static CivetCallbacks callbacks;  // its constructor zeroes every callback
  callbacks.begin_request = BeginRequest;
  callbacks.log_message = SilenceCivetLog;
  // CivetWeb sets SO_REUSEADDR on its listening sockets, so a restart never waits for the
  // TIME_WAIT that the previous incarnation's scrapes left behind (tested end to end).
  std::vector<std::string> civet_options = {"listening_ports",    CivetListeningPort(address),
                                            "num_threads",        "4",
                                            "request_timeout_ms", "10000"};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(civet_options, &callbacks);
  } catch (const std::exception& error) {
    g_routes.store(nullptr);
    throw std::runtime_error(error.what());
  }
  exposer_->RegisterCollectable(metrics, options.telemetry_path);
}

WebServer::~WebServer() {
  exposer_.reset();
  g_routes.store(nullptr);
}

}  // namespace portwatch
