#include "exporter/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "collectors/collector.h"

namespace portwatch {

namespace {

/// A request head must arrive within this time, and a response write that makes no progress for
/// this long is abandoned: a stalled client holds a worker for at most this long.
constexpr const char* kRequestTimeoutMs = "5000";
/// Connections that send nothing are kept by the kernel (TCP_DEFER_ACCEPT) instead of being
/// handed to a worker. Longer than the kernel's SYN-ACK retries (63 s by default), so such a
/// connection is dropped by the kernel without ever reaching accept().
constexpr int kDeferAcceptSeconds = 120;
/// Beyond what the workers are serving, accepted connections wait in the kernel's queue.
constexpr const char* kListenBacklog = "1024";

constexpr std::string_view kGetHead = "GET, HEAD";
constexpr std::string_view kPostPut = "POST, PUT";
constexpr const char* kTextPlain = "text/plain; charset=utf-8";

struct ServerState {
  std::string telemetry_path;
  std::string version;
  size_t max_requests = 0;
  WebServer::ReloadHandler reload;
  /// False until the telemetry path is registered: CivetWeb serves from its construction on.
  std::atomic<bool> ready{false};
  std::atomic<size_t> metrics_in_flight{0};
  std::atomic<uint64_t> rejected_max_requests{0};
};

// CivetWeb's begin_request and end_request callbacks have no user pointer of ours: one server per
// process.
std::atomic<ServerState*> g_state{nullptr};
// begin_request and end_request of one request run on the same worker thread: whether this
// thread's current request holds a slot of max_requests.
thread_local bool t_holds_metrics_slot = false;

/// A response head, written by hand rather than with mg_response_header_*: CivetWeb drops those
/// headers on a connection that asked for a WebSocket upgrade, leaving a bare body.
std::string ResponseHead(mg_connection* connection, int status, const char* content_type,
                         std::optional<size_t> content_length, std::string_view allow = {}) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                     mg_get_response_code_text(connection, status) +
                     "\r\nContent-Type: " + content_type + "\r\n";
  if (content_length) {
    head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  }
  if (!allow.empty()) {
    head += "Allow: ";
    head += allow;
    head += "\r\n";
  }
  head += "Cache-Control: no-cache, no-store, must-revalidate\r\nConnection: close\r\n\r\n";
  return head;
}

void Respond(mg_connection* connection, int status, const char* content_type,
             const std::string& body, bool head = false, std::string_view allow = {}) {
  std::string response = ResponseHead(connection, status, content_type, body.size(), allow);
  if (!head) {
    response += body;
  }
  mg_write(connection, response.data(), response.size());
}

/// CivetWeb diverts a WebSocket upgrade to its WebSocket handlers, of which there are none: it
/// would answer the telemetry path with a bare 404 body.
bool AsksForWebSocket(const mg_connection* connection) {
  const char* upgrade = mg_get_header(connection, "Upgrade");
  return upgrade != nullptr && ::strcasestr(upgrade, "websocket") != nullptr;
}

std::string LandingPage(const ServerState& state) {
  return "<!DOCTYPE html>\n<html><head><title>portwatch exporter</title></head><body>\n"
         "<h1>portwatch exporter</h1>\n<p>Port ownership, TIME_WAIT and bind conflict metrics. "
         "Version " +
         state.version + ".</p>\n<ul>\n<li><a href=\"" + state.telemetry_path + "\">" +
         state.telemetry_path +
         "</a></li>\n<li><a href=\"/-/healthy\">/-/healthy</a></li>\n"
         "<li><a href=\"/-/ready\">/-/ready</a></li>\n</ul>\n</body></html>\n";
}

/// Takes a slot of max_requests for this thread's request; false when all are taken.
bool TakeMetricsSlot(ServerState& state) {
  const size_t before = state.metrics_in_flight.fetch_add(1);
  if (state.max_requests != 0 && before >= state.max_requests) {
    state.metrics_in_flight.fetch_sub(1);
    state.rejected_max_requests.fetch_add(1);
    return false;
  }
  t_holds_metrics_slot = true;
  return true;
}

void Reload(mg_connection* connection, ServerState& state) {
  if (std::string error = state.reload(); error.empty()) {
    Respond(connection, 200, kTextPlain, "Config reloaded\n");
  } else {
    Respond(connection, 500, kTextPlain, "Reload failed, previous config kept: " + error + "\n");
  }
}

/// Answers everything but GET on the telemetry path; returns 0 to hand that to the Exposer.
int BeginRequest(mg_connection* connection) {
  ServerState* state = g_state.load();
  const mg_request_info* request = mg_get_request_info(connection);
  if (state == nullptr || request == nullptr || request->local_uri == nullptr ||
      request->request_method == nullptr) {
    return 0;
  }
  const RouteDecision decision =
      RouteRequest(request->request_method, request->local_uri, state->telemetry_path);
  if (!state->ready.load() &&
      (decision.route == Route::kMetrics || decision.route == Route::kMetricsHead ||
       decision.route == Route::kReady)) {
    Respond(connection, 503, kTextPlain, "Starting\n", decision.head);
    return 1;
  }
  switch (decision.route) {
    case Route::kMetrics:
      if (AsksForWebSocket(connection)) {
        Respond(connection, 400, kTextPlain, "WebSocket is not supported\n");
        return 1;
      }
      if (TakeMetricsSlot(*state)) {
        return 0;
      }
      Respond(connection, 503, kTextPlain,
              "Too many concurrent scrapes (--web.max-requests=" +
                  std::to_string(state->max_requests) + "), try again.\n");
      return 1;
    case Route::kMetricsHead:
      // The headers a GET gets, without collecting: a HEAD health check costs nothing.
      {
        const std::string head = ResponseHead(connection, 200, kTextPlain, std::nullopt);
        mg_write(connection, head.data(), head.size());
      }
      return 1;
    case Route::kLandingPage:
      Respond(connection, 200, "text/html; charset=utf-8", LandingPage(*state), decision.head);
      return 1;
    case Route::kHealthy:
      Respond(connection, 200, kTextPlain, "Healthy\n", decision.head);
      return 1;
    case Route::kReady:
      Respond(connection, 200, kTextPlain, "Ready\n", decision.head);
      return 1;
    case Route::kReload:
      Reload(connection, *state);
      return 1;
    case Route::kNotFound:
      Respond(connection, 404, kTextPlain, "Not found\n", decision.head);
      return 1;
    case Route::kMethodNotAllowed:
      Respond(connection, 405, kTextPlain, "Method not allowed\n", decision.head, decision.allow);
      return 1;
  }
  return 0;
}

void EndRequest(const mg_connection* /*connection*/, int /*status*/) {
  if (!t_holds_metrics_slot) {
    return;
  }
  t_holds_metrics_slot = false;
  if (ServerState* state = g_state.load(); state != nullptr) {
    state->metrics_in_flight.fetch_sub(1);
  }
}

/// CivetWeb's own error responses (400 for a malformed request line, 413, 505...) echo the
/// client's HTTP version string into the status line, CR and LF included; these are written
/// here instead, always as HTTP/1.1.
int HttpError(mg_connection* connection, int status, const char* message) {
  Respond(connection, status, kTextPlain, std::string(message != nullptr ? message : "") + "\n");
  return 0;
}

/// Quiet CivetWeb: our own logs say what matters (a bind failure is reported by the caller).
int SilenceCivetLog(const mg_connection* /*connection*/, const char* /*message*/) { return 1; }

/// The web server's own metrics, served beside the collectors'.
class WebMetrics : public prometheus::Collectable {
 public:
  explicit WebMetrics(const ServerState& state) : state_(state) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    FamilyBuilder("portwatch_http_requests_rejected_total",
                  "HTTP requests answered 503 because --web.max-requests scrapes were already "
                  "being served.",
                  prometheus::MetricType::Counter)
        .Add({{"reason", "max_requests"}}, static_cast<double>(state_.rejected_max_requests.load()))
        .MoveTo(out);
    FamilyBuilder("portwatch_http_metrics_requests_in_flight",
                  "Scrapes of the telemetry path being served now, this one included.",
                  prometheus::MetricType::Gauge)
        .Add(static_cast<double>(state_.metrics_in_flight.load()))
        .MoveTo(out);
    FamilyBuilder("portwatch_http_max_requests",
                  "The --web.max-requests cap on concurrent scrapes (0: no cap).",
                  prometheus::MetricType::Gauge)
        .Add(static_cast<double>(state_.max_requests))
        .MoveTo(out);
    return out;
  }

 private:
  const ServerState& state_;
};

bool Ipv6Available() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

/// Sets TCP_DEFER_ACCEPT on this process's listening TCP sockets on `ports`. CivetWeb keeps its
/// listening sockets to itself, so they are found among our own fds. Returns how many were set.
size_t DeferAcceptOnListeners(const std::vector<int>& ports) {
  size_t set = 0;
  std::unique_ptr<DIR, int (*)(DIR*)> fds(::opendir("/proc/self/fd"), ::closedir);
  if (!fds) {
    return 0;
  }
  const int own = ::dirfd(fds.get());
  while (const dirent* entry = ::readdir(fds.get())) {
    int fd = -1;
    const char* name = entry->d_name;
    if (std::from_chars(name, name + std::strlen(name), fd).ec != std::errc() || fd == own) {
      continue;
    }
    int listening = 0;
    socklen_t length = sizeof(listening);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening) {
      continue;
    }
    sockaddr_storage local{};
    socklen_t local_length = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) {
      continue;
    }
    int port = -1;
    if (local.ss_family == AF_INET) {
      port = ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port);
    } else if (local.ss_family == AF_INET6) {
      port = ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    }
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
      continue;
    }
    if (::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &kDeferAcceptSeconds,
                     sizeof(kDeferAcceptSeconds)) == 0) {
      set++;
    }
  }
  return set;
}

}  // namespace

RouteDecision RouteRequest(std::string_view method, std::string_view path,
                           std::string_view telemetry_path) {
  const bool get = method == "GET";
  const bool head = method == "HEAD";
  if (path == "/-/reload") {
    if (method == "POST" || method == "PUT") {
      return {Route::kReload, false, {}};
    }
    return {Route::kMethodNotAllowed, head, kPostPut};
  }
  if (!get && !head) {
    return {Route::kMethodNotAllowed, false, kGetHead};
  }
  if (path == telemetry_path) {
    return {head ? Route::kMetricsHead : Route::kMetrics, head, {}};
  }
  if (path == "/") {
    return {Route::kLandingPage, head, {}};
  }
  if (path == "/-/healthy") {
    return {Route::kHealthy, head, {}};
  }
  if (path == "/-/ready") {
    return {Route::kReady, head, {}};
  }
  return {Route::kNotFound, head, {}};
}

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
  static ServerState state;
  state.telemetry_path = options.telemetry_path;
  state.version = options.version;
  state.max_requests = options.max_requests;
  state.reload = std::move(reload);
  state.ready = false;
  state.metrics_in_flight = 0;
  state.rejected_max_requests = 0;
  g_state.store(&state);

  static CivetCallbacks callbacks;  // its constructor zeroes every callback
  callbacks.begin_request = BeginRequest;
  callbacks.end_request = EndRequest;
  callbacks.log_message = SilenceCivetLog;
  callbacks.http_error = HttpError;
  // CivetWeb sets SO_REUSEADDR on its listening sockets, so a restart never waits for the
  // TIME_WAIT that the previous incarnation's scrapes left behind (tested end to end).
  const std::vector<std::string> civet_options = {
      "listening_ports",    CivetListeningPort(address),
      "num_threads",        std::to_string(std::max<size_t>(options.max_connections, 1)),
      "request_timeout_ms", kRequestTimeoutMs,
      "listen_backlog",     kListenBacklog};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(civet_options, &callbacks);
  } catch (const std::exception& error) {
    g_state.store(nullptr);
    throw std::runtime_error(error.what());
  }
  exposer_->RegisterCollectable(metrics, options.telemetry_path);
  web_metrics_ = std::make_shared<WebMetrics>(state);
  exposer_->RegisterCollectable(web_metrics_, options.telemetry_path);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (DeferAcceptOnListeners(ports) == 0) {
    spdlog::warn(
        "msg=\"TCP_DEFER_ACCEPT not set on the listening socket: clients that connect and send "
        "nothing hold a worker for the request timeout\"");
  }
  state.ready = true;
}

WebServer::~WebServer() {
  exposer_.reset();
  g_state.store(nullptr);
}

}  // namespace portwatch
