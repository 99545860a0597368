#include "exporter/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "collectors/collector.h"
#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"
#include "exporter/civetweb_tls/civetweb_tls.h"
#include "exporter/web_config_store.h"

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
constexpr const char* kExpositionFormat = "text/plain; version=0.0.4; charset=utf-8";

struct ServerState {
  std::string telemetry_path;
  std::string version;
  size_t max_requests = 0;
  std::weak_ptr<prometheus::Collectable> metrics;
  WebServer::ReloadHandler reload;
  /// False until the constructor has finished: CivetWeb serves from its own construction on.
  std::atomic<bool> ready{false};
  std::atomic<size_t> metrics_in_flight{0};
  std::atomic<uint64_t> rejected_max_requests{0};
  std::atomic<uint64_t> rejected_unauthorized{0};
  std::atomic<uint64_t> rejected_auth_busy{0};
  bool enable_lifecycle = false;
  /// TLS, basic authentication, headers; owned by the WebServer.
  WebConfigStore* web_config = nullptr;
};

/// The http_server_config.headers of the web config in force for the request this worker
/// thread is answering (CivetWeb gives each request one worker thread from start to end).
thread_local std::string t_header_lines;

// CivetWeb's begin_request callback has no user pointer of ours: one server per process.
std::atomic<ServerState*> g_state{nullptr};

/// A response head, written by hand rather than with mg_response_header_*: CivetWeb drops those
/// headers on a connection that asked for a WebSocket upgrade, leaving a bare body.
std::string ResponseHead(mg_connection* connection, int status, const char* content_type,
                         std::optional<size_t> content_length, std::string_view extra_header = {}) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                     mg_get_response_code_text(connection, status) +
                     "\r\nContent-Type: " + content_type + "\r\n";
  if (content_length) {
    head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  }
  if (!extra_header.empty()) {
    head += extra_header;
    head += "\r\n";
  }
  head += t_header_lines;
  head += "Cache-Control: no-cache, no-store, must-revalidate\r\nConnection: close\r\n\r\n";
  return head;
}

void Respond(mg_connection* connection, int status, const char* content_type,
             const std::string& body, bool head = false, std::string_view extra_header = {}) {
  std::string response = ResponseHead(connection, status, content_type, body.size(), extra_header);
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

/// One of the --web.max-requests slots, held for the life of a scrape.
class MetricsSlot {
 public:
  explicit MetricsSlot(ServerState& state) : state_(state) {
    const size_t before = state_.metrics_in_flight.fetch_add(1);
    if (state_.max_requests != 0 && before >= state_.max_requests) {
      state_.metrics_in_flight.fetch_sub(1);
      state_.rejected_max_requests.fetch_add(1);
      return;
    }
    held_ = true;
  }
  ~MetricsSlot() {
    if (held_) {
      state_.metrics_in_flight.fetch_sub(1);
    }
  }
  MetricsSlot(const MetricsSlot&) = delete;
  MetricsSlot& operator=(const MetricsSlot&) = delete;

  bool Held() const { return held_; }

 private:
  ServerState& state_;
  bool held_ = false;
};

void AppendWebMetrics(const ServerState& state, std::vector<prometheus::MetricFamily>& out) {
  FamilyBuilder("portwatch_http_requests_rejected_total",
                "HTTP requests refused: 503 because --web.max-requests scrapes were already being "
                "served (max_requests), 401 for missing or wrong basic auth credentials "
                "(unauthorized), 429 because every bcrypt check slot was busy with other "
                "requests' passwords (auth_busy).",
                prometheus::MetricType::Counter)
      .Add({{"reason", "max_requests"}}, static_cast<double>(state.rejected_max_requests.load()))
      .Add({{"reason", "unauthorized"}}, static_cast<double>(state.rejected_unauthorized.load()))
      .Add({{"reason", "auth_busy"}}, static_cast<double>(state.rejected_auth_busy.load()))
      .MoveTo(out);
  if (state.web_config != nullptr) {
    state.web_config->AppendMetrics(out);
  }
  FamilyBuilder("portwatch_http_metrics_requests_in_flight",
                "Scrapes of the telemetry path being served now, this one included.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(state.metrics_in_flight.load()))
      .MoveTo(out);
  FamilyBuilder("portwatch_http_max_requests",
                "The --web.max-requests cap on concurrent scrapes (0: no cap).",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(state.max_requests))
      .MoveTo(out);
}

/// Whether an Accept-Encoding header value accepts gzip (a "gzip" coding whose q is not 0).
bool AcceptsGzip(const char* accept_encoding) {
  if (accept_encoding == nullptr) {
    return false;
  }
  std::string_view rest(accept_encoding);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view coding = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t semicolon = coding.find(';');
    std::string_view name = coding.substr(0, semicolon);
    std::string_view parameters =
        semicolon == std::string_view::npos ? std::string_view() : coding.substr(semicolon + 1);
    auto trim = [](std::string_view text) {
      const size_t first = text.find_first_not_of(" \t");
      return first == std::string_view::npos
                 ? std::string_view()
                 : text.substr(first, text.find_last_not_of(" \t") - first + 1);
    };
    name = trim(name);
    parameters = trim(parameters);
    if (name.size() == 4 && ::strncasecmp(name.data(), "gzip", 4) == 0) {
      const bool refused = parameters.size() >= 3 &&
                           ::strncasecmp(parameters.data(), "q=0", 3) == 0 &&
                           parameters.find_first_not_of("0.", 2) == std::string_view::npos;
      return !refused;
    }
  }
  return false;
}

/// gzip of `text` at the fastest level (a scrape's CPU on every node matters more than bytes on
/// the wire). nullopt if zlib fails.
std::optional<std::string> Gzip(const std::string& text) {
  z_stream stream{};
  // 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::nullopt;
  }
  std::string out(deflateBound(&stream, text.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) {
    return std::nullopt;
  }
  return out;
}

/// GET or HEAD on the telemetry path. Served here rather than by prometheus-cpp's handler, which
/// collects under one mutex: concurrent scrapes would queue for each other's kernel reads instead
/// of sharing one (CollectorRunner::Collect), and HEAD would not be served.
void ServeMetrics(mg_connection* connection, ServerState& state, bool head) {
  const MetricsSlot slot(state);
  if (!slot.Held()) {
    Respond(connection, 503, kTextPlain,
            "Too many concurrent scrapes (--web.max-requests=" +
                std::to_string(state.max_requests) + "), try again.\n",
            head);
    return;
  }
  std::vector<prometheus::MetricFamily> families;
  if (const std::shared_ptr<prometheus::Collectable> metrics = state.metrics.lock()) {
    families = metrics->Collect();
  }
  AppendWebMetrics(state, families);
  std::string body = prometheus::TextSerializer().Serialize(families);
  std::string_view encoding;
  if (AcceptsGzip(mg_get_header(connection, "Accept-Encoding"))) {
    if (std::optional<std::string> compressed = Gzip(body)) {
      body = std::move(*compressed);
      encoding = "Content-Encoding: gzip";
    }
  }
  Respond(connection, 200, kExpositionFormat, body, head, encoding);
}

void Reload(mg_connection* connection, ServerState& state) {
  if (!state.enable_lifecycle) {
    Respond(connection, 403, kTextPlain,
            "Lifecycle API is not enabled: start with --web.enable-lifecycle, or send SIGHUP\n");
    return;
  }
  if (Status reloaded = state.reload(); reloaded) {
    Respond(connection, 200, kTextPlain, "Config reloaded\n");
  } else {
    Respond(connection, 500, kTextPlain,
            "Reload failed, previous config kept: " + reloaded.Error() + "\n");
  }
}

/// Routes and answers one request. 0 hands it back to CivetWeb (before the server is set up).
int Serve(mg_connection* connection) {
  ServerState* state = g_state.load();
  const mg_request_info* request = mg_get_request_info(connection);
  if (state == nullptr || request == nullptr || request->local_uri == nullptr ||
      request->request_method == nullptr) {
    return 0;
  }
  const RouteDecision decision =
      RouteRequest(request->request_method, request->local_uri, state->telemetry_path);
  // Every path, as with the exporter-toolkit: a prober sends the credentials too (or uses a
  // TCP check).
  const WebConfigStore::Snapshot web = state->web_config->Current();
  t_header_lines = web.header_lines;
  switch (web.auth->Check(mg_get_header(connection, "Authorization"))) {
    case BasicAuthenticator::Decision::kAllowed:
      break;
    case BasicAuthenticator::Decision::kDenied:
      state->rejected_unauthorized++;
      Respond(connection, 401, kTextPlain, "Unauthorized\n", decision.head,
              "WWW-Authenticate: Basic realm=\"portwatch\", charset=\"UTF-8\"");
      return 1;
    case BasicAuthenticator::Decision::kBusy:
      state->rejected_auth_busy++;
      Respond(connection, 429, kTextPlain, "Too many password checks at once, retry\n",
              decision.head, "Retry-After: 1");
      return 1;
  }
  if (!state->ready.load() &&
      (decision.route == Route::kMetrics || decision.route == Route::kReady)) {
    Respond(connection, 503, kTextPlain, "Starting\n", decision.head);
    return 1;
  }
  switch (decision.route) {
    case Route::kMetrics:
      if (AsksForWebSocket(connection)) {
        Respond(connection, 400, kTextPlain, "WebSocket is not supported\n", decision.head);
      } else {
        ServeMetrics(connection, *state, decision.head);
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
      Respond(connection, 405, kTextPlain, "Method not allowed\n", decision.head,
              "Allow: " + std::string(decision.allow));
      return 1;
  }
  return 0;
}

/// Answers every request; a C++ exception must not unwind through CivetWeb's C frames.
int BeginRequest(mg_connection* connection) {
  try {
    return Serve(connection);
  } catch (const std::exception& error) {
    spdlog::error("{}", LogLine("request failed").Add("err", error.what()).Text());
  } catch (...) {
    spdlog::error("{}", LogLine("request failed").Add("err", "unknown exception").Text());
  }
  Respond(connection, 500, kTextPlain, "Internal error\n");
  return 1;
}

/// CivetWeb's own error responses (400 for a malformed request line, 413, 505...) echo the
/// client's HTTP version string into the status line, CR and LF included; these are written
/// here instead, always as HTTP/1.1.
int HttpError(mg_connection* connection, int status, const char* message) {
  if (ServerState* state = g_state.load(); state != nullptr && state->web_config != nullptr) {
    t_header_lines = state->web_config->Current().header_lines;
  }
  Respond(connection, status, kTextPlain, std::string(message != nullptr ? message : "") + "\n");
  return 0;
}

/// Quiet CivetWeb: our own logs say what matters (a bind failure is reported by the caller).
int SilenceCivetLog(const mg_connection* /*connection*/, const char* /*message*/) { return 1; }

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
    return {Route::kMetrics, head, {}};
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

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return Failure{"listen address \"" + text + "\" must be HOST:PORT, :PORT or [IPV6]:PORT"};
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return Failure{"listen address \"" + text + "\": put an IPv6 address in brackets, [::1]:PORT"};
  }
  const std::string port_text = text.substr(colon + 1);
  uint32_t port = 0;
  auto [next, parse_error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || parse_error != std::errc() ||
      next != port_text.data() + port_text.size() || port > 65535) {
    return Failure{"listen address \"" + text + "\": port must be 0-65535"};
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

WebServer::WebServer(const WebOptions& options, const ListenAddress& address,
                     const std::weak_ptr<prometheus::Collectable>& metrics, ReloadHandler reload,
                     std::unique_ptr<WebConfigStore> web_config)
    : web_config_(std::move(web_config)) {
  if (!web_config_) {
    // No file: plain HTTP without authentication (Open("") cannot fail).
    web_config_ = WebConfigStore::Open("").Value();
  }
  static ServerState state;
  state.telemetry_path = options.telemetry_path;
  state.version = options.version;
  state.max_requests = options.max_requests;
  state.metrics = metrics;
  state.reload = std::move(reload);
  state.ready = false;
  state.metrics_in_flight = 0;
  state.rejected_max_requests = 0;
  state.rejected_unauthorized = 0;
  state.rejected_auth_busy = 0;
  state.enable_lifecycle = options.enable_lifecycle;
  state.web_config = web_config_.get();
  g_state.store(&state);

  static CivetCallbacks callbacks;  // its constructor zeroes every callback
  callbacks.begin_request = BeginRequest;
  callbacks.log_message = SilenceCivetLog;
  callbacks.http_error = HttpError;
  if (web_config_->ServesTls()) {
    if (Status prepared = PrepareCivetWebTls(); !prepared) {
      throw std::runtime_error("TLS: " + prepared.Error());
    }
    // CivetWeb made the SSL_CTX; every handshake takes the TLS settings in force then.
    callbacks.init_ssl = [](void* context, void* /*user_data*/) {
      TlsSettings::InstallOn(static_cast<SSL_CTX*>(context), []() {
        const ServerState* current = g_state.load();
        return current != nullptr ? current->web_config->Current().tls
                                  : std::shared_ptr<const TlsSettings>();
      });
      return 1;  // the certificate is ours to set: CivetWeb loads none
    };
  }
  // CivetWeb sets SO_REUSEADDR on its listening sockets, so a restart never waits for the
  // TIME_WAIT that the previous incarnation's scrapes left behind (tested end to end).
  const std::vector<std::string> civet_options = {
      "listening_ports",    CivetListeningPort(address) + (web_config_->ServesTls() ? "s" : ""),
      "num_threads",        std::to_string(std::max<size_t>(options.max_connections, 1)),
      "request_timeout_ms", kRequestTimeoutMs,
      "listen_backlog",     kListenBacklog};
  try {
    server_ = std::make_unique<CivetServer>(civet_options, &callbacks);
  } catch (const std::exception& error) {
    g_state.store(nullptr);
    throw std::runtime_error(error.what());
  }
  if (DeferAcceptOnListeners(ListeningPorts()) == 0) {
    spdlog::warn("{}", LogLine("TCP_DEFER_ACCEPT not set on the listening socket: clients that "
                               "connect and send nothing hold a worker for the request timeout")
                           .Text());
  }
  state.ready = true;
}

WebServer::~WebServer() {
  server_.reset();
  g_state.store(nullptr);
}

std::vector<int> WebServer::ListeningPorts() const { return server_->getListeningPorts(); }

}  // namespace portwatch
