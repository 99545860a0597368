#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace portwatch::testing {

struct HttpResponse {
  int status = 0;  ///< 0 when the request failed
  std::string body;
  std::string error;
};

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
