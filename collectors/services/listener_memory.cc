#include "collectors/services/listener_memory.h"

namespace portwatch {

void ListenerMemory::Remember(const std::string& service, bool reuse_address,
                              Clock::time_point now) {
  // Forget what expired, so services removed by a config reload do not stay forever.
  std::erase_if(by_service_,
                [now](const auto& entry) { return now - entry.second.seen > kLifetime; });
  by_service_[service] = Remembered{reuse_address, now};
}

std::optional<bool> ListenerMemory::Recall(const std::string& service,
                                           Clock::time_point now) const {
  auto found = by_service_.find(service);
  if (found == by_service_.end() || now - found->second.seen > kLifetime) {
    return std::nullopt;
  }
  return found->second.reuse_address;
}

}  // namespace portwatch
