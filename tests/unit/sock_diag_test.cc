#include "collectors/netlink/sock_diag.h"

#include <gtest/gtest.h>

namespace portwatch::netlink {
namespace {

TEST(StateNameTest, UsesSsNames) {
  EXPECT_EQ(StateName(Protocol::kTcp, kTimeWait), "time_wait");
  EXPECT_EQ(StateName(Protocol::kUdp, kClose), "unconn");
  EXPECT_EQ(StateName(Protocol::kTcp, kNewSynRecv), "syn_recv");
}

}  // namespace
}  // namespace portwatch::netlink
