#include "collectors/common/result.h"

#include <cerrno>
#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

Result<int> Half(int number) {
  if (number % 2 != 0) {
    return Failure{std::to_string(number) + " is odd"};
  }
  return number / 2;
}

Status Check(bool good) {
  if (!good) {
    return Failure{"bad"};
  }
  return {};
}

TEST(ResultTest, CarriesAValueOrAnError) {
  const Result<int> half = Half(8);
  ASSERT_TRUE(half.Ok());
  EXPECT_EQ(*half, 4);
  EXPECT_EQ(half.Error(), "");
  const Result<int> odd = Half(3);
  EXPECT_FALSE(odd);
  EXPECT_EQ(odd.Error(), "3 is odd");
}

TEST(ResultTest, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> made = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(made).Value();
  EXPECT_EQ(*taken, 7);
}

TEST(ResultTest, StatusIsSuccessOrFailure) {
  EXPECT_TRUE(Check(true).Ok());
  EXPECT_EQ(Check(false).Error(), "bad");
}

TEST(ResultTest, ErrnoTextNamesTheOperation) {
  EXPECT_EQ(ErrnoText("sendto", EPERM), "sendto: Operation not permitted");
}

}  // namespace
}  // namespace portwatch
