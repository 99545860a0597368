#include "collectors/services/listener_memory.h"

#include <chrono>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;

// An injected clock: an arbitrary fixed time point, moved by hand. Nothing sleeps.
constexpr ListenerMemory::Clock::time_point kStart{seconds(1'000'000)};

TEST(ListenerMemoryTest, NothingIsRememberedAtFirst) {
  const ListenerMemory memory;
  EXPECT_EQ(memory.Recall("web", kStart), std::nullopt);
}

TEST(ListenerMemoryTest, RecallsTheFlagUntilTheLifetimeEnds) {
  ListenerMemory memory;
  memory.Remember("web", false, kStart);
  EXPECT_EQ(memory.Recall("web", kStart), false);
  EXPECT_EQ(memory.Recall("web", kStart + seconds(60)), false);
  EXPECT_EQ(memory.Recall("web", kStart + seconds(120)), false);  // the last instant included
  EXPECT_EQ(memory.Recall("web", kStart + seconds(120) + nanoseconds(1)), std::nullopt);
  EXPECT_EQ(ListenerMemory::kLifetime, seconds(120));
}

TEST(ListenerMemoryTest, TheLastListenerSeenWins) {
  ListenerMemory memory;
  memory.Remember("web", false, kStart);
  memory.Remember("web", true, kStart + seconds(100));
  EXPECT_EQ(memory.Recall("web", kStart + seconds(200)), true);
  EXPECT_EQ(memory.Recall("web", kStart + seconds(221)), std::nullopt);
}

TEST(ListenerMemoryTest, EachServiceHasItsOwn) {
  ListenerMemory memory;
  memory.Remember("web", true, kStart);
  memory.Remember("dns", false, kStart + seconds(60));
  EXPECT_EQ(memory.Recall("web", kStart + seconds(60)), true);
  EXPECT_EQ(memory.Recall("dns", kStart + seconds(60)), false);
  EXPECT_EQ(memory.Recall("db", kStart + seconds(60)), std::nullopt);
  // Remembering one service at a later time forgets the expired others, and only them.
  memory.Remember("db", true, kStart + seconds(150));
  EXPECT_EQ(memory.Recall("web", kStart + seconds(150)), std::nullopt);
  EXPECT_EQ(memory.Recall("dns", kStart + seconds(150)), false);
  EXPECT_EQ(memory.Recall("db", kStart + seconds(150)), true);
}

}  // namespace
}  // namespace portwatch
