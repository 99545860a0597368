// End to end: the HTTP side against hostile and odd clients, with the real binary in a private
// network namespace. Every method on every path, a corpus of malformed requests, clients that
// connect and stall, and the cap on concurrent scrapes.
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kPort = 9792;
const std::string kListen = "--web.listen-address=127.0.0.1:" + std::to_string(kPort);

struct Reply {
  std::string status;  ///< "200", ..., or "close" when the server closed without a byte
  std::string head;
  std::string body;
};

/// Sends `request`, half-closes (a truncated request then ends instead of waiting for the
/// server's timeout) and reads the whole answer.
Reply Exchange(const std::string& request) {
  Reply reply;
  std::string error;
  UniqueFd fd = ConnectLoopback(kPort, error);
  EXPECT_TRUE(fd.Valid()) << error;
  // The server may answer and close before it has read everything (a 20 KB header): a failed
  // send is then no error, the answer is what counts.
  SendAll(fd, request, error);
  ::shutdown(fd.Get(), SHUT_WR);
  std::string raw;
  ReadUntilEof(fd, raw, error);
  if (raw.empty()) {
    reply.status = "close";
    return reply;
  }
  const size_t head_end = raw.find("\r\n\r\n");
  reply.head = raw.substr(0, head_end);
  reply.body = head_end == std::string::npos ? "" : raw.substr(head_end + 4);
  reply.status = raw.rfind("HTTP/1.1 ", 0) == 0 ? raw.substr(9, 3) : "malformed: " + raw;
  return reply;
}

std::string Header(const Reply& reply, const std::string& name) {
  const std::string key = "\r\n" + name + ": ";
  const size_t start = reply.head.find(key);
  if (start == std::string::npos) {
    return "";
  }
  const size_t value = start + key.size();
  return reply.head.substr(value, reply.head.find("\r\n", value) - value);
}

/// A socket that is still connected: nothing to read and no FIN or reset from the server.
bool StillOpen(const UniqueFd& fd) {
  char byte = 0;
  const ssize_t received = ::recv(fd.Get(), &byte, 1, MSG_DONTWAIT);
  return received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

class WebE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(EnterPrivateNetworkNamespace(), ""); }

  void Start(std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), kListen);
    exporter_ = std::make_unique<ExporterProcess>(PORTWATCH_EXPORTER_BINARY, flags);
    ASSERT_TRUE(exporter_->WaitReady(kPort)) << exporter_->Log();
  }

  void ExpectAlive() {
    EXPECT_EQ(HttpRequest(kPort, "GET", "/-/healthy").status, 200) << exporter_->Log();
    EXPECT_TRUE(exporter_->Signal(0)) << exporter_->Log();
  }

  std::unique_ptr<ExporterProcess> exporter_;
};

TEST_F(WebE2eTest, EveryMethodOnEveryPathIsAnswered) {
  Start();
  const std::vector<std::string> paths = {"/",         "/metrics", "/-/healthy",    "/-/ready",
                                          "/-/reload", "/nope",    "/metrics/extra"};
  const std::vector<std::string> methods = {"GET",   "HEAD",   "POST",      "PUT",
                                            "PATCH", "DELETE", "OPTIONS",   "PROPFIND",
                                            "LOCK",  "UNLOCK", "PROPPATCH", "MKCOL"};
  for (const std::string& path : paths) {
    for (const std::string& method : methods) {
      SCOPED_TRACE(method + " " + path);
      const Reply reply =
          Exchange(method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
      std::string expected_status;
      std::string expected_allow;
      if (path == "/-/reload") {
        // Without --web.enable-lifecycle, as Prometheus: 403 (SIGHUP still reloads).
        const bool reload = method == "POST" || method == "PUT";
        expected_status = reload ? "403" : "405";
        expected_allow = reload ? "" : "POST, PUT";
      } else if (method != "GET" && method != "HEAD") {
        expected_status = "405";
        expected_allow = "GET, HEAD";
      } else {
        expected_status = path == "/nope" || path == "/metrics/extra" ? "404" : "200";
      }
      EXPECT_EQ(reply.status, expected_status) << reply.head;
      EXPECT_EQ(Header(reply, "Allow"), expected_allow) << reply.head;
      if (method == "HEAD") {
        EXPECT_EQ(reply.body, "");
        if (path == "/metrics" && reply.status == "200") {
          // A whole scrape without its body: the exposition's type and length.
          EXPECT_EQ(Header(reply, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
          EXPECT_GT(std::stoul("0" + Header(reply, "Content-Length")), 1000U) << reply.head;
        }
      }
    }
  }
  // HEAD is GET without the body: the same status and Content-Length.
  const Reply get = Exchange("GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
  const Reply head = Exchange("HEAD /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(Header(head, "Content-Length"), Header(get, "Content-Length"));
  EXPECT_EQ(Header(head, "Content-Length"), std::to_string(get.body.size()));
  ExpectAlive();
}

TEST_F(WebE2eTest, MalformedRequestsAreAnsweredOrRefusedCleanly) {
  Start({"--web.enable-lifecycle"});  // several requests are odd reloads
  const std::string corpus = std::string(PORTWATCH_FIXTURES) + "/http/";
  std::ifstream manifest(corpus + "expected.txt");
  ASSERT_TRUE(manifest.good());
  std::set<std::string> listed;
  std::string line;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    std::string name;
    std::string expected;
    fields >> name >> expected;
    listed.insert(name + ".http");
    std::ifstream file(corpus + name + ".http", std::ios::binary);
    ASSERT_TRUE(file.good()) << name;
    const std::string request((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
    const Reply reply = Exchange(request);
    EXPECT_EQ(reply.status, expected) << name << "\n" << reply.head;
    if (reply.status != "close") {
      // Our own head, never the client's bytes echoed into it.
      EXPECT_EQ(reply.head.find("\r\n\r"), std::string::npos) << name;
    }
    ExpectAlive();
  }
  // Every request file has an expectation.
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(corpus.c_str()), ::closedir);
  ASSERT_TRUE(dir);
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".http") {
      EXPECT_EQ(listed.count(name), 1U) << name << " has no line in expected.txt";
    }
  }
}

TEST_F(WebE2eTest, SilentConnectionsNeverTakeAWorker) {
  // Two workers, a hundred clients that connect and never speak: with TCP_DEFER_ACCEPT the
  // kernel keeps them, so the scrape is answered while every one of them is still open (the
  // server's 5 s request timeout has closed none).
  Start({"--web.max-connections=2"});
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 100; ++i) {
    silent.push_back(Connect(SOCK_STREAM, "127.0.0.1", kPort));
    ASSERT_TRUE(silent.back().Valid());
  }
  const HttpResponse scrape = HttpRequest(kPort, "GET", "/metrics");
  EXPECT_EQ(scrape.status, 200) << scrape.error;
  for (const UniqueFd& fd : silent) {
    EXPECT_TRUE(StillOpen(fd));
  }
  ExpectAlive();
}

TEST_F(WebE2eTest, StalledClientsLeaveTheScrapeAWorker) {
  // The case on the default settings: 64 clients that send nothing and 64 that send half
  // a request head. The scrape is answered before the server has given up on any of them, so it
  // waited for no timeout.
  Start();
  std::vector<UniqueFd> stalled;
  std::string error;
  for (int i = 0; i < 64; ++i) {
    stalled.push_back(Connect(SOCK_STREAM, "127.0.0.1", kPort));
    stalled.push_back(ConnectLoopback(kPort, error));
    ASSERT_TRUE(stalled.back().Valid()) << error;
    ASSERT_TRUE(SendAll(stalled.back(), "GET /metrics HTTP/1.1\r\nHost: x\r\n", error)) << error;
  }
  for (int i = 0; i < 3; ++i) {
    const HttpResponse scrape = HttpRequest(kPort, "GET", "/metrics");
    EXPECT_EQ(scrape.status, 200) << scrape.error;
  }
  for (const UniqueFd& fd : stalled) {
    EXPECT_TRUE(StillOpen(fd));
  }
  ExpectAlive();
}

TEST_F(WebE2eTest, ScrapesBeyondMaxRequestsGet503AndAreCounted) {
  // A scrape held in flight: a client with a tiny receive buffer reads the first bytes of a
  // large exposition (3000 listening ports) and then stops reading. With this namespace's send
  // buffers capped too, the server's write blocks with the one slot of --web.max-requests=1 taken.
  ASSERT_EQ(WriteSysctl("net/ipv4/tcp_wmem", "4096 4096 4096"), "");
  std::vector<UniqueFd> listeners;
  for (uint16_t port = 20000; port < 23000; ++port) {
    listeners.push_back(Listen("127.0.0.1", port));
    ASSERT_TRUE(listeners.back().Valid()) << port;
  }
  Start({"--web.max-requests=1"});

  UniqueFd slow(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int tiny = 4096;
  ASSERT_EQ(::setsockopt(slow.Get(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)), 0);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(kPort);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(slow.Get(), reinterpret_cast<sockaddr*>(&server), sizeof(server)), 0);
  std::string error;
  ASSERT_TRUE(SendAll(slow, "GET /metrics HTTP/1.0\r\n\r\n", error)) << error;
  char first[16] = {};
  ASSERT_EQ(::recv(slow.Get(), first, sizeof(first) - 1, MSG_WAITALL), 15);
  EXPECT_EQ(std::string(first), "HTTP/1.1 200 OK");

  const HttpResponse rejected = HttpRequest(kPort, "GET", "/metrics");
  EXPECT_EQ(rejected.status, 503) << rejected.error;
  EXPECT_NE(rejected.body.find("--web.max-requests=1"), std::string::npos) << rejected.body;
  // Other paths are not scrapes: they are still served.
  EXPECT_EQ(HttpRequest(kPort, "GET", "/-/healthy").status, 200);

  // The held scrape completes once its client reads again, and frees its slot.
  std::string rest;
  ASSERT_TRUE(ReadUntilEof(slow, rest, error)) << error;
  EXPECT_NE(rest.find("portwatch_sockets{family=\"ipv4\",port=\"22999\",protocol=\"tcp\","
                      "state=\"listen\"} 1"),
            std::string::npos);
  const HttpResponse after = HttpRequest(kPort, "GET", "/metrics");
  ASSERT_EQ(after.status, 200) << after.error;
  const Exposition metrics(after.body);
  EXPECT_EQ(metrics.Value("portwatch_http_requests_rejected_total", {{"reason", "max_requests"}}),
            1);
  EXPECT_EQ(metrics.Value("portwatch_http_metrics_requests_in_flight"), 1);
  EXPECT_EQ(metrics.Value("portwatch_http_max_requests"), 1);
  ExpectAlive();
}

}  // namespace
}  // namespace portwatch::testing
