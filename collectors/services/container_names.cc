#include "collectors/services/container_names.h"

#include <dirent.h>

#include <algorithm>
#include <ctime>
#include <memory>

namespace portwatch {

namespace {

constexpr size_t kIdDigits = 64;
constexpr size_t kShortIdDigits = 12;

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

}  // namespace

std::optional<ContainerLogName> ParseContainerLogName(std::string_view entry) {
  constexpr std::string_view kSuffix = ".log";
  // The shortest: "p_n_c-" + id + ".log".
  if (entry.size() < 6 + kIdDigits + kSuffix.size() ||
      entry.substr(entry.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  entry.remove_suffix(kSuffix.size());
  const std::string_view id = entry.substr(entry.size() - kIdDigits);
  entry.remove_suffix(kIdDigits);
  if (!IsLowerHex(id) || entry.back() != '-') {
    return std::nullopt;
  }
  entry.remove_suffix(1);
  const size_t first = entry.find('_');
  const size_t second = first == std::string_view::npos ? first : entry.find('_', first + 1);
  if (second == std::string_view::npos || entry.find('_', second + 1) != std::string_view::npos ||
      first == 0 || second == first + 1 || second + 1 == entry.size()) {
    return std::nullopt;
  }
  return ContainerLogName{std::string(entry.substr(0, first)),
                          std::string(entry.substr(first + 1, second - first - 1)),
                          std::string(entry.substr(second + 1)), std::string(id)};
}

ContainerNames::ContainerNames(const std::vector<std::string>& entry_names) {
  for (const std::string& entry : entry_names) {
    if (std::optional<ContainerLogName> parsed = ParseContainerLogName(entry)) {
      by_id_.emplace(std::move(parsed->container_id), std::move(parsed->container));
    }
  }
}

std::string ContainerNames::NameOf(const std::string& container_id) const {
  const auto found = by_id_.find(container_id);
  return found != by_id_.end() ? found->second : container_id.substr(0, kShortIdDigits);
}

const ContainerNames& ContainerNamesCache::Read(const std::string& dir) {
  struct stat status {};
  if (::stat(dir.c_str(), &status) != 0) {
    dir_ = dir;
    read_mtime_.reset();
    names_ = ContainerNames();
    return names_;
  }
  if (dir == dir_ && read_mtime_ && read_mtime_->tv_sec == status.st_mtim.tv_sec &&
      read_mtime_->tv_nsec == status.st_mtim.tv_nsec) {
    return names_;
  }
  std::vector<std::string> entries;
  if (std::unique_ptr<DIR, DirCloser> listing(::opendir(dir.c_str())); listing) {
    while (const dirent* entry = ::readdir(listing.get())) {
      entries.emplace_back(entry->d_name);
    }
  }
  dir_ = dir;
  // The mtime ticks coarsely (a jiffy): an entry added within the tick the listing was read in
  // leaves it unchanged. A listing that recent is not trusted to be whole and is read again.
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const bool settled = now.tv_sec > status.st_mtim.tv_sec + 1;
  read_mtime_ = settled ? std::optional(status.st_mtim) : std::nullopt;
  names_ = ContainerNames(entries);
  return names_;
}

}  // namespace portwatch
