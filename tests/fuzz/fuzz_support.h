// Helpers shared by the fuzz targets: splitting an input into fields, a scratch directory for
// parsers that only read files, and invariant checks that libFuzzer reports as crashes.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace portwatch::fuzz {

/// Separates the fields of a multi-field input: a byte that UTF-8 text never holds, so a text
/// fixture is one whole field.
constexpr char kSeparator = '\xff';

/// The fields of `data` between separators (one field when there is none).
inline std::vector<std::string> Split(std::string_view data, char separator = kSeparator) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t end = data.find(separator, start);
    if (end == std::string_view::npos) {
      fields.emplace_back(data.substr(start));
      return fields;
    }
    fields.emplace_back(data.substr(start, end - start));
    start = end + 1;
  }
}

/// Aborts (a crash for libFuzzer) when an invariant of the code under test does not hold.
inline void Check(bool holds, const char* invariant) {
  if (!holds) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", invariant);
    std::abort();
  }
}

/// A directory of this process's own, removed when the process exits normally. One per process,
/// so libFuzzer's -jobs/-fork workers never share files. Below /dev/shm when there is one: on a
/// disk file system, rewriting a file thousands of times a second waits for the disk (ext4
/// flushes a file truncated and written again), which made targets 100 times slower. Else below
/// $TMPDIR or /tmp.
inline const std::string& ScratchDir() {
  struct Directory {
    std::string path;
    Directory() {
      const char* base = std::getenv("TMPDIR");
      if (::access("/dev/shm", W_OK) == 0) {
        base = "/dev/shm";
      }
      path =
          std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/portwatch-fuzz-XXXXXX";
      if (::mkdtemp(path.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
      }
    }
    ~Directory() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
    Directory(const Directory&) = delete;
    Directory& operator=(const Directory&) = delete;
  };
  static const Directory directory;
  return directory.path;
}

/// Writes `contents` to `path` (creating its parent directories), verbatim.
inline void WriteFile(const std::string& path, std::string_view contents) {
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  Check(out.good(), "the scratch file can be written");
}

/// The exposition text of `families`, as a scrape would serve it.
inline std::string Render(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace portwatch::fuzz
