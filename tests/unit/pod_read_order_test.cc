// Which pods are read in full first: private hashes always, then never-read, then oldest.
#include "collectors/sockets/pod_read_order.h"

#include <gtest/gtest.h>

namespace portwatch {
namespace {

using Clock = std::chrono::steady_clock;

TEST(PodReadOrderTest, PrivateHashesThenNeverReadThenOldestFirst) {
  const Clock::time_point t0{};
  const auto at = [t0](int seconds) { return std::optional(t0 + std::chrono::seconds(seconds)); };
  const std::vector<uint64_t> order = PodReadOrder({{10, false, at(30)},
                                                    {11, true, at(30)},
                                                    {12, false, std::nullopt},
                                                    {13, false, at(5)},
                                                    {14, true, std::nullopt},
                                                    {15, false, at(5)},
                                                    {16, false, std::nullopt}});
  EXPECT_EQ(order, (std::vector<uint64_t>{14, 11, 12, 16, 13, 15, 10}));
}

TEST(PodReadOrderTest, EveryPodSharingTheHashIsReadInTurn) {
  // One read per scrape: each of N pods is read again within N scrapes.
  std::vector<PodReadState> pods = {
      {1, false, std::nullopt}, {2, false, std::nullopt}, {3, false, std::nullopt}};
  Clock::time_point now{};
  std::vector<uint64_t> read;
  for (int scrape = 0; scrape < 6; ++scrape) {
    now += std::chrono::seconds(15);
    const uint64_t first = PodReadOrder(pods).front();
    read.push_back(first);
    for (PodReadState& pod : pods) {
      if (pod.inode == first) {
        pod.last_read = now;
      }
    }
  }
  EXPECT_EQ(read, (std::vector<uint64_t>{1, 2, 3, 1, 2, 3}));
}

using std::chrono::milliseconds;
using std::chrono::seconds;
using Verdict = SharedPodReads::Verdict;

/// The verdicts for `pods` in turn, each read taking `each` (the estimate of the next).
std::vector<Verdict> Scrape(SharedPodReads& reads, const std::vector<PodReadState>& pods,
                            Clock::duration each) {
  std::vector<Verdict> verdicts;
  for (const PodReadState& pod : pods) {
    verdicts.push_back(reads.Decide(pod, each));
    if (verdicts.back() != Verdict::kSkip) {
      reads.Read(verdicts.back(), each);
    }
  }
  return verdicts;
}

TEST(SharedPodReadsTest, ReadsWithinHalfTheHostDumpThenOnlyDuePods) {
  // Host dump 100 ms: a 50 ms budget, 10 ms already spent on discovery; each pod read 15 ms.
  const Clock::time_point start = Clock::time_point{} + std::chrono::hours(1);
  SharedPodReads reads(milliseconds(50), seconds(600), start, milliseconds(10));
  const auto read_ago = [start](int s) { return std::optional(start - seconds(s)); };
  const std::vector<PodReadState> pods = {
      {1, false, read_ago(900)},  // within the budget, whatever their age
      {2, false, read_ago(800)},
      {3, false, read_ago(700)},  // 10 + 15 + 15 + 15 > 50: past the budget, but due
      {4, false, read_ago(650)},  // due, and the second budget (50 ms) has room
      {5, false, read_ago(599)},  // not due: waits
      {6, true, read_ago(1)},     // a private hash: always read
  };
  EXPECT_EQ(
      Scrape(reads, pods, milliseconds(15)),
      (std::vector<Verdict>{Verdict::kWithinBudget, Verdict::kWithinBudget, Verdict::kPastBudget,
                            Verdict::kPastBudget, Verdict::kSkip, Verdict::kWithinBudget}));
  EXPECT_EQ(reads.ReadPastBudget(), 2U);
}

TEST(SharedPodReadsTest, TheSecondBudgetBoundsTheDueReads) {
  const Clock::time_point start = Clock::time_point{} + std::chrono::hours(1);
  SharedPodReads reads(milliseconds(50), seconds(600), start, milliseconds(50));
  // Never read (a new pod) is due. 20 ms each: 20, 40, then 60 > 50.
  const std::vector<PodReadState> pods(4, PodReadState{1, false, std::nullopt});
  EXPECT_EQ(Scrape(reads, pods, milliseconds(20)),
            (std::vector<Verdict>{Verdict::kPastBudget, Verdict::kPastBudget, Verdict::kSkip,
                                  Verdict::kSkip}));
}

TEST(SharedPodReadsTest, OneDuePodPerScrapeEvenWhenOneReadCostsMoreThanTheBudget) {
  // A pod's dump costs more than half the host's (a small host namespace on a big shared hash):
  // still one due pod per scrape, so that no pod waits forever; none that is not due.
  const Clock::time_point start = Clock::time_point{} + std::chrono::hours(1);
  SharedPodReads reads(milliseconds(50), seconds(600), start, milliseconds(0));
  const std::vector<PodReadState> pods = {{1, false, std::nullopt},
                                          {2, false, std::optional(start - seconds(601))},
                                          {3, false, std::optional(start - seconds(10))}};
  EXPECT_EQ(Scrape(reads, pods, milliseconds(80)),
            (std::vector<Verdict>{Verdict::kPastBudget, Verdict::kSkip, Verdict::kSkip}));
  SharedPodReads fresh_only(milliseconds(50), seconds(600), start, milliseconds(0));
  EXPECT_EQ(fresh_only.Decide({3, false, std::optional(start - seconds(10))}, milliseconds(80)),
            Verdict::kSkip);
}

}  // namespace
}  // namespace portwatch
