#include "collectors/sockets/pod_series_budget.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/common/family_builder.h"
#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using Counts = std::map<std::string, double>;
using unit::PeerKey;
using unit::Samples;
using unit::SocketKey;

/// One pod's families as the sockets collector makes them: `ports` TCP ports with `sockets`
/// established sockets each (the first one also listening), two peer ports, one destination.
std::vector<prometheus::MetricFamily> PodFamilies(int ports, double sockets) {
  std::vector<prometheus::MetricFamily> families;
  FamilyBuilder local("portwatch_sockets", "s", prometheus::MetricType::Gauge);
  local.Add({{"family", "ipv4"}, {"port", "8080"}, {"protocol", "tcp"}, {"state", "listen"}}, 1);
  for (int port = 0; port < ports; ++port) {
    local.Add({{"family", "ipv4"},
               {"port", std::to_string(8080 + port)},
               {"protocol", "tcp"},
               {"state", "established"}},
              sockets);
  }
  local.MoveTo(families);
  FamilyBuilder("portwatch_peer_sockets", "p", prometheus::MetricType::Gauge)
      .Add({{"peer_port", "443"}, {"protocol", "tcp"}, {"state", "established"}}, 3)
      .Add({{"peer_port", "5432"}, {"protocol", "tcp"}, {"state", "established"}}, 2)
      .MoveTo(families);
  FamilyBuilder("portwatch_ephemeral_destination_sockets", "d", prometheus::MetricType::Gauge)
      .Add({{"peer_address", "10.0.0.1"}, {"peer_port", "443"}, {"protocol", "tcp"}}, 3)
      .MoveTo(families);
  FamilyBuilder("portwatch_ephemeral_destination_untracked_sockets", "u",
                prometheus::MetricType::Gauge)
      .Add(0)
      .MoveTo(families);
  return families;
}

TEST(PodSeriesBudgetTest, CountSeriesCountsEverySample) {
  EXPECT_EQ(CountSeries(PodFamilies(3, 1)), 1 + 3 + 2 + 1 + 1U);
  EXPECT_EQ(CountSeries({}), 0U);
}

TEST(PodSeriesBudgetTest, FoldingKeepsPerStateTotalsAndLosesOnlyThePorts) {
  std::vector<prometheus::MetricFamily> families = PodFamilies(3, 5);
  EXPECT_EQ(FoldPodPorts(families), 2 + 1 + 1U);  // 4 local -> 2, 2 peer -> 1, 1 destination
  EXPECT_EQ(Samples(families, "portwatch_sockets"),
            (Counts{{SocketKey("ipv4", "other", "tcp", "listen"), 1},
                    {SocketKey("ipv4", "other", "tcp", "established"), 15}}));
  EXPECT_EQ(Samples(families, "portwatch_peer_sockets"),
            (Counts{{PeerKey("other", "tcp", "established"), 5}}));
  EXPECT_TRUE(Samples(families, "portwatch_ephemeral_destination_sockets").empty());
  EXPECT_EQ(Samples(families, "portwatch_ephemeral_destination_untracked_sockets"),
            (Counts{{"", 3}}));
}

TEST(PodSeriesBudgetTest, WithinBudgetNothingIsFolded) {
  std::vector<prometheus::MetricFamily> a = PodFamilies(3, 1);
  std::vector<prometheus::MetricFamily> b = PodFamilies(1, 1);
  EXPECT_EQ(FitPodsToBudget({&a, &b}, 8 + 6), 0U);
  EXPECT_EQ(CountSeries(a), 8U);
  EXPECT_EQ(CountSeries(b), 6U);
}

TEST(PodSeriesBudgetTest, TheLargestPodsFoldFirstUntilTheBudgetHolds) {
  // Folded, any pod has 4 series: listen and established under port="other", one peer
  // series and the untracked destinations.
  std::vector<prometheus::MetricFamily> small = PodFamilies(1, 1);   // 6 series
  std::vector<prometheus::MetricFamily> large = PodFamilies(10, 1);  // 15 series
  std::vector<prometheus::MetricFamily> medium = PodFamilies(5, 1);  // 10 series
  // 31 series against 21: folding the large pod (-11) is enough.
  EXPECT_EQ(FitPodsToBudget({&small, &large, &medium}, 21), 11U);
  EXPECT_EQ(CountSeries(small), 6U);
  EXPECT_EQ(CountSeries(large), 4U);
  EXPECT_EQ(CountSeries(medium), 10U);
}

TEST(PodSeriesBudgetTest, ABudgetBelowTheFoldedTotalsFoldsEveryPodAndStops) {
  std::vector<prometheus::MetricFamily> a = PodFamilies(4, 1);
  std::vector<prometheus::MetricFamily> b = PodFamilies(4, 1);
  EXPECT_EQ(FitPodsToBudget({&a, &b}, 0), 2 * (9 - 4U));
  EXPECT_EQ(CountSeries(a), 4U);
  EXPECT_EQ(CountSeries(b), 4U);
}

}  // namespace
}  // namespace portwatch
