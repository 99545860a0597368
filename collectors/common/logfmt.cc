#include "collectors/common/logfmt.h"

#include <cstddef>

namespace portwatch {

namespace {

/// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one (stray
/// continuation byte, truncated or overlong sequence, surrogate, beyond U+10FFFF).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&text](size_t at) { return static_cast<unsigned char>(text[at]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  uint32_t minimum = 0;
  uint32_t code = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, minimum = 0x80, code = lead & 0x1FU;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, minimum = 0x800, code = lead & 0x0FU;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, minimum = 0x10000, code = lead & 0x07U;
  } else {
    return 0;
  }
  if (i + length > text.size()) {
    return 0;
  }
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0U) != 0x80U) {
      return 0;
    }
    code = (code << 6U) | (byte(i + k) & 0x3FU);
  }
  if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
    return 0;
  }
  return length;
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) {
    return true;
  }
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || c == '=' || c == '"' || c == '\\' || byte == 0x7F || byte >= 0x80) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string LogfmtValue(std::string_view value) {
  if (!NeedsQuotes(value)) {
    return std::string(value);
  }
  constexpr char kHex[] = "0123456789abcdef";
  std::string quoted = "\"";
  for (size_t i = 0; i < value.size();) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (byte >= 0x80) {
      const size_t length = Utf8SequenceLength(value, i);
      if (length == 0) {
        quoted += "\\ufffd";
        ++i;
      } else {
        quoted.append(value, i, length);
        i += length;
      }
      continue;
    }
    switch (value[i]) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (byte < 0x20 || byte == 0x7F) {
          quoted += "\\u00";
          quoted += kHex[byte >> 4U];
          quoted += kHex[byte & 0x0FU];
        } else {
          quoted += value[i];
        }
    }
    ++i;
  }
  return quoted + "\"";
}

std::string LogfmtKey(std::string_view key) {
  std::string safe;
  for (char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '.' || c == '-';
    safe += plain ? c : '_';
  }
  return safe.empty() ? "_" : safe;
}

LogLine::LogLine(std::string_view msg) : text_("msg=" + LogfmtValue(msg)) {}

LogLine& LogLine::Add(std::string_view key, std::string_view value) {
  text_ += ' ';
  text_ += LogfmtKey(key);
  text_ += '=';
  text_ += LogfmtValue(value);
  return *this;
}

}  // namespace portwatch
