#include "collectors/sockets/pod_read_order.h"

#include <algorithm>

namespace portwatch {

std::vector<uint64_t> PodReadOrder(std::vector<PodReadState> pods) {
  std::stable_sort(pods.begin(), pods.end(), [](const PodReadState& a, const PodReadState& b) {
    if (a.private_hash != b.private_hash) {
      return a.private_hash;
    }
    if (a.last_read.has_value() != b.last_read.has_value()) {
      return !a.last_read.has_value();  // never read first
    }
    if (a.last_read && *a.last_read != *b.last_read) {
      return *a.last_read < *b.last_read;
    }
    return a.inode < b.inode;
  });
  std::vector<uint64_t> order;
  order.reserve(pods.size());
  for (const PodReadState& pod : pods) {
    order.push_back(pod.inode);
  }
  return order;
}

}  // namespace portwatch
