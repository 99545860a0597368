#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "collectors/netlink/transport.h"

namespace portwatch::testing {

struct HttpResponse {
  int status = 0;  ///< 0 when the request failed
  std::string body;
  std::string error;
};

/// A TCP connection to 127.0.0.1:port with 10 s send and receive timeouts; invalid on failure,
/// with `error` set.
netlink::UniqueFd ConnectLoopback(uint16_t port, std::string& error);
/// Sends every byte; false with `error` set on failure.
bool SendAll(const netlink::UniqueFd& fd, const std::string& bytes, std::string& error);
/// Appends what arrives to `raw` until the peer closes; false with `error` set on an error or
/// the 10 s timeout.
bool ReadUntilEof(const netlink::UniqueFd& fd, std::string& raw, std::string& error);

struct RawExchangeResult {
  std::string response;  ///< every byte the server sent before closing
  std::string error;     ///< empty unless connecting, sending or receiving failed
};

/// Sends `request` verbatim to 127.0.0.1:port and reads until the server closes.
RawExchangeResult RawExchange(uint16_t port, const std::string& request);

/// One HTTP/1.0 request to 127.0.0.1:port (the server closes the connection), bounded by a
/// 10 s timeout.
HttpResponse HttpRequest(uint16_t port, const std::string& method, const std::string& path);

/// Samples of a text exposition keyed by "name{label="value",...}" with labels sorted by name.
class Exposition {
 public:
  explicit Exposition(const std::string& text);

  /// The sample's value, or nullopt when the exposition lacks it.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  /// Sum over every sample of `name` whose labels include `labels`.
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  const std::map<std::string, double>& Samples() const { return samples_; }
  const std::string& Text() const { return text_; }

 private:
  std::string text_;
  std::map<std::string, double> samples_;
  std::map<std::string, std::map<std::string, std::string>> labels_;
  std::map<std::string, std::string> names_;
};

std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels);

}  // namespace portwatch::testing
