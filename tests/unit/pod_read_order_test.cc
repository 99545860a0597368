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

}  // namespace
}  // namespace portwatch
