#include "collectors/netns/kept_dumps.h"

#include <utility>

namespace portwatch {

KeptDumps::KeptDumps(size_t record_budget) : record_budget_(record_budget) {}

void KeptDumps::DropStale(std::chrono::steady_clock::time_point now) {
  std::erase_if(kept_, [this, now](const auto& entry) {
    if (now - entry.second.at < kFreshFor) {
      return false;
    }
    records_ -= entry.second.dump->Records();
    return true;
  });
}

void KeptDumps::Drop(uint64_t namespace_key) {
  if (const auto found = kept_.find(namespace_key); found != kept_.end()) {
    records_ -= found->second.dump->Records();
    kept_.erase(found);
  }
}

size_t KeptDumps::Room(uint64_t namespace_key) {
  const std::lock_guard lock(mutex_);
  DropStale(now_());
  Drop(namespace_key);
  return records_ < record_budget_ ? record_budget_ - records_ : 0;
}

void KeptDumps::Keep(uint64_t namespace_key, std::shared_ptr<const netlink::RecordedDump> dump) {
  const std::lock_guard lock(mutex_);
  Drop(namespace_key);
  if (dump == nullptr || dump->GaveUp()) {
    return;
  }
  records_ += dump->Records();
  kept_[namespace_key] = Kept{std::move(dump), now_()};
}

std::shared_ptr<const netlink::RecordedDump> KeptDumps::Find(uint64_t namespace_key) const {
  const std::lock_guard lock(mutex_);
  const auto found = kept_.find(namespace_key);
  if (found == kept_.end() || now_() - found->second.at >= kFreshFor) {
    return nullptr;
  }
  return found->second.dump;
}

void KeptDumps::Clear() {
  const std::lock_guard lock(mutex_);
  kept_.clear();
  records_ = 0;
}

}  // namespace portwatch
