#include "tests/support/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "collectors/netlink/transport.h"

namespace portwatch::testing {

netlink::UniqueFd ConnectLoopback(uint16_t port, std::string& error) {
  netlink::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    error = std::strerror(errno);
    return fd;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.Get(), reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0) {
    error = std::string("connect: ") + std::strerror(errno);
    return netlink::UniqueFd();
  }
  return fd;
}

bool SendAll(const netlink::UniqueFd& fd, const std::string& bytes, std::string& error) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd.Get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      error = std::string("send: ") + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool ReadUntilEof(const netlink::UniqueFd& fd, std::string& raw, std::string& error) {
  char buffer[65536];
  while (true) {
    const ssize_t received = ::recv(fd.Get(), buffer, sizeof(buffer), 0);
    if (received < 0) {
      error = std::string("recv: ") + std::strerror(errno);
      return false;
    }
    if (received == 0) {
      return true;
    }
    raw.append(buffer, static_cast<size_t>(received));
  }
}

RawExchangeResult RawExchange(uint16_t port, const std::string& request) {
  RawExchangeResult result;
  netlink::UniqueFd fd = ConnectLoopback(port, result.error);
  if (!fd.Valid() || !SendAll(fd, request, result.error)) {
    return result;
  }
  ReadUntilEof(fd, result.response, result.error);
  return result;
}

HttpResponse HttpRequest(uint16_t port, const std::string& method, const std::string& path) {
  HttpResponse response;
  const RawExchangeResult exchange = RawExchange(
      port, method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
  if (!exchange.error.empty()) {
    response.error = exchange.error;
    return response;
  }
  const std::string& raw = exchange.response;
  const size_t header_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos) {
    response.error = "malformed response";
    return response;
  }
  response.status = std::stoi(raw.substr(9, 3));
  response.body = raw.substr(header_end + 4);
  return response;
}

std::string SeriesKey(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string key = name;
  if (!labels.empty()) {
    key += "{";
    bool first = true;
    for (const auto& [label, value] : labels) {
      key += (first ? "" : ",") + label + "=\"" + value + "\"";
      first = false;
    }
    key += "}";
  }
  return key;
}

Exposition::Exposition(const std::string& text) : text_(text) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::string name;
    std::map<std::string, std::string> labels;
    size_t position = line.find_first_of("{ ");
    if (position == std::string::npos) {
      continue;
    }
    name = line.substr(0, position);
    if (line[position] == '{') {
      size_t end = line.find('}', position);
      if (end == std::string::npos) {
        continue;
      }
      std::string body = line.substr(position + 1, end - position - 1);
      size_t cursor = 0;
      while (cursor < body.size()) {
        size_t equals = body.find("=\"", cursor);
        size_t close = body.find('"', equals + 2);
        if (equals == std::string::npos || close == std::string::npos) {
          break;
        }
        labels[body.substr(cursor, equals - cursor)] = body.substr(equals + 2, close - equals - 2);
        cursor = close + 1;
        if (cursor < body.size() && body[cursor] == ',') {
          cursor++;
        }
      }
      position = end + 1;
    }
    const std::string key = SeriesKey(name, labels);
    samples_[key] = std::stod(line.substr(position + 1));
    labels_[key] = labels;
    names_[key] = name;
  }
}

std::optional<double> Exposition::Value(const std::string& name,
                                        const std::map<std::string, std::string>& labels) const {
  auto found = samples_.find(SeriesKey(name, labels));
  if (found == samples_.end()) {
    return std::nullopt;
  }
  return found->second;
}

double Exposition::Sum(const std::string& name,
                       const std::map<std::string, std::string>& labels) const {
  double total = 0;
  for (const auto& [key, value] : samples_) {
    if (names_.at(key) != name) {
      continue;
    }
    const auto& sample_labels = labels_.at(key);
    bool matches = true;
    for (const auto& [label, wanted] : labels) {
      auto found = sample_labels.find(label);
      matches = matches && found != sample_labels.end() && found->second == wanted;
    }
    if (matches) {
      total += value;
    }
  }
  return total;
}

}  // namespace portwatch::testing
