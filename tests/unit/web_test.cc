#include "exporter/web.h"

#include <string>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

struct Parsed {
  bool ok = false;
  ListenAddress address;
  std::string error;
};

Parsed Parse(const std::string& text) {
  Parsed parsed;
  Result<ListenAddress> result = ParseListenAddress(text);
  parsed.ok = result.Ok();
  parsed.error = result.Error();
  parsed.address = result.Ok() ? *result : ListenAddress{"untouched", 1};
  return parsed;
}

void ExpectAddress(const std::string& text, const std::string& host, uint16_t port) {
  Parsed parsed = Parse(text);
  EXPECT_TRUE(parsed.ok) << text << ": " << parsed.error;
  EXPECT_EQ(parsed.error, "") << text;
  EXPECT_EQ(parsed.address.host, host) << text;
  EXPECT_EQ(parsed.address.port, port) << text;
}

void ExpectError(const std::string& text, const std::string& error) {
  Parsed parsed = Parse(text);
  EXPECT_FALSE(parsed.ok) << text;
  EXPECT_EQ(parsed.error, error) << text;
  // A rejected address leaves the output alone.
  EXPECT_EQ(parsed.address.host, "untouched") << text;
  EXPECT_EQ(parsed.address.port, 1) << text;
}

TEST(ParseListenAddressTest, PortOnlyMeansEveryAddress) { ExpectAddress(":9792", "", 9792); }

TEST(ParseListenAddressTest, Ipv4HostAndPort) { ExpectAddress("127.0.0.1:80", "127.0.0.1", 80); }

TEST(ParseListenAddressTest, BracketedIpv6) {
  ExpectAddress("[::1]:9792", "::1", 9792);
  ExpectAddress("[::]:9792", "::", 9792);
  ExpectAddress("[fe80::1%eth0]:443", "fe80::1%eth0", 443);
}

TEST(ParseListenAddressTest, PortBounds) {
  ExpectAddress(":0", "", 0);
  ExpectAddress("localhost:65535", "localhost", 65535);
}

TEST(ParseListenAddressTest, UnbracketedIpv6IsAnError) {
  ExpectError("::1:80", "listen address \"::1:80\": put an IPv6 address in brackets, [::1]:PORT");
}

TEST(ParseListenAddressTest, PortOutOfRange) {
  ExpectError(":70000", "listen address \":70000\": port must be 0-65535");
  ExpectError(":65536", "listen address \":65536\": port must be 0-65535");
  ExpectError(":99999999999", "listen address \":99999999999\": port must be 0-65535");
}

TEST(ParseListenAddressTest, MalformedPort) {
  ExpectError("127.0.0.1:", "listen address \"127.0.0.1:\": port must be 0-65535");
  ExpectError(":-1", "listen address \":-1\": port must be 0-65535");
  ExpectError(":80a", "listen address \":80a\": port must be 0-65535");
  ExpectError(": 80", "listen address \": 80\": port must be 0-65535");
  ExpectError(":+80", "listen address \":+80\": port must be 0-65535");
}

TEST(ParseListenAddressTest, NoColonIsAnError) {
  ExpectError("nohost", "listen address \"nohost\" must be HOST:PORT, :PORT or [IPV6]:PORT");
  ExpectError("", "listen address \"\" must be HOST:PORT, :PORT or [IPV6]:PORT");
}

void ExpectRoute(std::string_view method, std::string_view path, Route route, bool head,
                 std::string_view allow = {}) {
  const RouteDecision decision = RouteRequest(method, path, "/metrics");
  EXPECT_EQ(decision.route, route) << method << " " << path;
  EXPECT_EQ(decision.head, head) << method << " " << path;
  EXPECT_EQ(decision.allow, allow) << method << " " << path;
}

TEST(RouteRequestTest, GetAndHeadServeEveryReadOnlyPath) {
  ExpectRoute("GET", "/metrics", Route::kMetrics, false);
  ExpectRoute("HEAD", "/metrics", Route::kMetrics, true);
  ExpectRoute("GET", "/", Route::kLandingPage, false);
  ExpectRoute("HEAD", "/", Route::kLandingPage, true);
  ExpectRoute("GET", "/-/healthy", Route::kHealthy, false);
  ExpectRoute("HEAD", "/-/ready", Route::kReady, true);
  ExpectRoute("GET", "/nope", Route::kNotFound, false);
  ExpectRoute("HEAD", "/metrics/", Route::kNotFound, true);
}

TEST(RouteRequestTest, TelemetryPathIsConfigurable) {
  EXPECT_EQ(RouteRequest("GET", "/custom", "/custom").route, Route::kMetrics);
  EXPECT_EQ(RouteRequest("GET", "/metrics", "/custom").route, Route::kNotFound);
}

TEST(RouteRequestTest, OtherMethodsGet405WithAllowOnEveryPath) {
  for (const char* path : {"/", "/metrics", "/-/healthy", "/-/ready", "/nope"}) {
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "get"}) {
      ExpectRoute(method, path, Route::kMethodNotAllowed, false, "GET, HEAD");
    }
  }
}

TEST(RouteRequestTest, ReloadTakesPostAndPutOnly) {
  ExpectRoute("POST", "/-/reload", Route::kReload, false);
  ExpectRoute("PUT", "/-/reload", Route::kReload, false);
  ExpectRoute("GET", "/-/reload", Route::kMethodNotAllowed, false, "POST, PUT");
  ExpectRoute("HEAD", "/-/reload", Route::kMethodNotAllowed, true, "POST, PUT");
  ExpectRoute("DELETE", "/-/reload", Route::kMethodNotAllowed, false, "POST, PUT");
}

}  // namespace
}  // namespace portwatch
