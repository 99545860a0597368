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

SharedPodReads::SharedPodReads(Clock::duration budget, Clock::duration max_age,
                               Clock::time_point scrape_start, Clock::duration spent)
    : budget_(budget), max_age_(max_age), scrape_start_(scrape_start), spent_(spent) {}

SharedPodReads::Verdict SharedPodReads::Decide(const PodReadState& pod,
                                               Clock::duration estimate) const {
  if (pod.private_hash || spent_ + estimate <= budget_) {
    return Verdict::kWithinBudget;
  }
  const bool due = !pod.last_read || scrape_start_ - *pod.last_read >= max_age_;
  if (!due || (read_past_budget_ > 0 && past_budget_spent_ + estimate > budget_)) {
    return Verdict::kSkip;
  }
  return Verdict::kPastBudget;
}

void SharedPodReads::Read(Verdict verdict, Clock::duration took) {
  if (verdict == Verdict::kPastBudget) {
    past_budget_spent_ += took;
    ++read_past_budget_;
  } else {
    spent_ += took;
  }
}

}  // namespace portwatch
