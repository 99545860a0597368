#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace portwatch {

/// The part of a log line after "ts=... level=...": msg="..." then key=value pairs, in logfmt
/// (the format Prometheus' own components log in). Every value goes through LogfmtValue, so a
/// config error, a command line or a kernel message can never break the line for a parser.
///
///   spdlog::warn("{}", LogLine("collector failed").Add("collector", name).Add("err", why).Text());
class LogLine {
 public:
  explicit LogLine(std::string_view msg);

  LogLine& Add(std::string_view key, std::string_view value);
  LogLine& Add(std::string_view key, const char* value) {
    return Add(key, std::string_view(value));
  }
  LogLine& Add(std::string_view key, const std::string& value) {
    return Add(key, std::string_view(value));
  }
  template <typename Number, typename = std::enable_if_t<std::is_arithmetic_v<Number>>>
  LogLine& Add(std::string_view key, Number value) {
    return Add(key, std::string_view(std::to_string(value)));
  }

  const std::string& Text() const { return text_; }

 private:
  std::string text_;
};

/// A value as logfmt writes it: bare when it is a plain token, else in double quotes with `"`,
/// `\`, control characters and invalid UTF-8 escaped (\n, \t, \u00XX, \ufffd) as go-logfmt does.
std::string LogfmtValue(std::string_view value);

/// A key made safe: anything outside [A-Za-z0-9_.-] becomes '_' (empty: "_").
std::string LogfmtKey(std::string_view key);

}  // namespace portwatch
