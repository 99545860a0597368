#include "collectors/procfs/procfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>
#include <utility>
#include <vector>

#include "collectors/netlink/transport.h"

namespace portwatch {

uint64_t ProcFs::NetworkNamespace(const std::string& pid_dir) const {
  struct stat status {};
  return ::stat((root_ + "/" + pid_dir + "/ns/net").c_str(), &status) == 0 ? status.st_ino : 0;
}

bool ParsePid(const char* name, pid_t& pid) {
  const char* end = name + std::strlen(name);
  auto [next, error] = std::from_chars(name, end, pid);
  return error == std::errc() && next == end && pid > 0;
}

namespace {

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream stream(line);
  std::string word;
  while (stream >> word) {
    words.push_back(word);
  }
  return words;
}

/// What ReadFile asks read() for at a time, on the stack: four pages. Of a long file, larger
/// reads would save system calls but take more stack; 16 KiB reads a 200 KB file in 14 read()
/// calls (the last finds the end), with fewer page faults than std::ifstream's 26 into its
/// 8 KiB buffer, copied into a growing string.
constexpr size_t kReadChunk = size_t{16} * 1024;

/// read(), again when a signal interrupted it before it read anything.
ssize_t ReadRetryingInterrupts(int fd, char* into, size_t room) {
  while (true) {
    const ssize_t got = ::read(fd, into, room);
    if (got >= 0 || errno != EINTR) {
      return got;
    }
  }
}

template <typename Integer>
bool ParseInteger(const std::string& text, Integer& value) {
  const char* end = text.data() + text.size();
  auto [next, error] = std::from_chars(text.data(), end, value);
  return error == std::errc() && next == end;
}

}  // namespace

std::optional<std::string> ProcFs::ReadFile(const std::string& relative_path) const {
  const std::string path = root_ + "/" + relative_path;
  const netlink::UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.Valid()) {
    return std::nullopt;
  }
  // Files below /proc report a size of 0 whatever they hold: read until read() says the end.
  // Through a buffer on the stack, so that a small file (comm, cgroup, a sysctl) costs one
  // allocation of its own size, and a long one (a Java command line of 100 KB and more) grows
  // its string by doubling, in reads of a few pages.
  std::array<char, kReadChunk> chunk;
  std::string text;
  while (true) {
    const ssize_t got = ReadRetryingInterrupts(file.Get(), chunk.data(), chunk.size());
    if (got == 0) {
      return text;
    }
    if (got < 0) {
      // A directory opens but reads as EISDIR: empty, as std::ifstream (used before) read it.
      return errno == EISDIR && text.empty() ? std::optional<std::string>("") : std::nullopt;
    }
    text.append(chunk.data(), static_cast<size_t>(got));
  }
}

std::optional<int64_t> ProcFs::ReadInteger(const std::string& relative_path) const {
  std::optional<std::string> text = ReadFile(relative_path);
  if (!text) {
    return std::nullopt;
  }
  return ParseSingleInteger(*text);
}

std::optional<int64_t> ParseSingleInteger(const std::string& text) {
  std::vector<std::string> words = SplitWords(text);
  int64_t value = 0;
  if (words.size() != 1 || !ParseInteger(words[0], value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<EphemeralRange> ParseEphemeralRange(const std::string& text) {
  std::vector<std::string> words = SplitWords(text);
  uint16_t first = 0;
  uint16_t last = 0;
  if (words.size() != 2 || !ParseInteger(words[0], first) || !ParseInteger(words[1], last) ||
      first > last) {
    return std::nullopt;
  }
  return EphemeralRange{first, last};
}

std::optional<std::vector<uint16_t>> ParsePortList(const std::string& text) {
  std::vector<uint16_t> ports;
  std::vector<std::string> words = SplitWords(text);
  if (words.empty()) {
    return ports;
  }
  if (words.size() != 1) {
    return std::nullopt;
  }
  // The sysctl is a bitmap: overlapping items ("80,80-81") name a port once, and the result is
  // bounded by the port space however long the text.
  std::vector<std::pair<uint16_t, uint16_t>> ranges;
  std::istringstream items(words[0]);
  std::string item;
  while (std::getline(items, item, ',')) {
    const size_t dash = item.find('-');
    uint16_t first = 0;
    uint16_t last = 0;
    if (!ParseInteger(item.substr(0, dash), first) ||
        !ParseInteger(dash == std::string::npos ? item : item.substr(dash + 1), last) ||
        first > last) {
      return std::nullopt;
    }
    ranges.emplace_back(first, last);
  }
  std::sort(ranges.begin(), ranges.end());
  uint32_t unlisted = 0;  // the ranges listed so far end below this port
  for (const auto& [first, last] : ranges) {
    for (uint32_t port = std::max<uint32_t>(first, unlisted); port <= last; ++port) {
      ports.push_back(static_cast<uint16_t>(port));
    }
    unlisted = std::max<uint32_t>(unlisted, last + 1U);
  }
  return ports;
}

std::optional<EphemeralRange> ReadEphemeralRange(const ProcFs& procfs) {
  std::optional<std::string> text = procfs.ReadFile("sys/net/ipv4/ip_local_port_range");
  return text ? ParseEphemeralRange(*text) : std::nullopt;
}

std::optional<std::vector<uint16_t>> ReadReservedPorts(const ProcFs& procfs) {
  std::optional<std::string> text = procfs.ReadFile("sys/net/ipv4/ip_local_reserved_ports");
  return text ? ParsePortList(*text) : std::nullopt;
}

bool KernelAtLeast(const std::string& release, int major, int minor) {
  int found_major = 0;
  int found_minor = 0;
  char dot = 0;
  std::istringstream stream(release);
  if (!(stream >> found_major >> dot >> found_minor) || dot != '.') {
    return false;
  }
  return found_major > major || (found_major == major && found_minor >= minor);
}

std::map<std::string, std::map<std::string, uint64_t>> ParseNetstat(const std::string& text) {
  std::map<std::string, std::map<std::string, uint64_t>> result;
  std::istringstream stream(text);
  std::string header_line;
  std::string value_line;
  while (std::getline(stream, header_line) && std::getline(stream, value_line)) {
    std::vector<std::string> names = SplitWords(header_line);
    std::vector<std::string> values = SplitWords(value_line);
    if (names.empty() || names.size() != values.size() || names[0] != values[0] ||
        names[0].back() != ':') {
      continue;
    }
    std::string prefix = names[0].substr(0, names[0].size() - 1);
    for (size_t i = 1; i < names.size(); ++i) {
      uint64_t value = 0;
      if (ParseInteger(values[i], value)) {
        result[prefix][names[i]] = value;
      }
    }
  }
  return result;
}

}  // namespace portwatch
