#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace portwatch {

/// What decides when a pod's sockets are read in full.
struct PodReadState {
  uint64_t inode = 0;
  /// The namespace has a TCP established hash of its own: its dump walks only its own sockets.
  bool private_hash = false;
  std::optional<std::chrono::steady_clock::time_point> last_read;  ///< nullopt: never read
};

/// The order in which to read pods this scrape. Pods with a private hash come first: their dump
/// costs only their own sockets, so they are read at every scrape. Then the others, never read
/// first, then least recently read first: each of their dumps walks every TCP socket of the node,
/// so the caller reads them only while a budget lasts, and those whose counts have grown too old
/// come first when it reads past the budget.
std::vector<uint64_t> PodReadOrder(std::vector<PodReadState> pods);

/// Which pods sharing the node's TCP hash one scrape reads, taken in PodReadOrder. Each of their
/// dumps walks every TCP socket of the node, so they are read while the time spent on pods this
/// scrape plus the next read (estimated by the caller, from the last one) fits in `budget`. A pod
/// whose counts reached `max_age`, or that was never read, is read past it: always one per
/// scrape, whatever it costs, so that every pod gets its turn; more while a second `budget`
/// lasts. Pods with a private hash cost only their own sockets and are always read.
class SharedPodReads {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Verdict { kSkip, kWithinBudget, kPastBudget };

  /// `spent`: what the scrape already spent on pods (discovery).
  SharedPodReads(Clock::duration budget, Clock::duration max_age, Clock::time_point scrape_start,
                 Clock::duration spent);

  Verdict Decide(const PodReadState& pod, Clock::duration estimate) const;
  /// A read `Decide` allowed took `took`.
  void Read(Verdict verdict, Clock::duration took);
  size_t ReadPastBudget() const { return read_past_budget_; }

 private:
  Clock::duration budget_;
  Clock::duration max_age_;
  Clock::time_point scrape_start_;
  Clock::duration spent_;
  Clock::duration past_budget_spent_{};
  size_t read_past_budget_ = 0;
};

}  // namespace portwatch
