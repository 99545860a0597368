#include "collectors/common/logfmt.h"

#include <string>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

using namespace std::string_literals;

TEST(LogfmtTest, PlainTokensStayBare) {
  EXPECT_EQ(LogfmtValue("tcp"), "tcp");
  EXPECT_EQ(LogfmtValue("/etc/portwatch.yaml:3:5"), "/etc/portwatch.yaml:3:5");
  EXPECT_EQ(LogfmtValue("-42"), "-42");
}

TEST(LogfmtTest, SpacesEqualsSignsAndEmptyValuesAreQuoted) {
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("config reloaded"), "\"config reloaded\"");
  EXPECT_EQ(LogfmtValue("a=b"), "\"a=b\"");
}

TEST(LogfmtTest, QuotesAndBackslashesAreEscaped) {
  // The case the old format strings broke: a config error quoting the value it rejects.
  EXPECT_EQ(LogfmtValue("x.yaml:3:5: must be an integer, got \"lots\""),
            R"("x.yaml:3:5: must be an integer, got \"lots\"")");
  EXPECT_EQ(LogfmtValue("C:\\dir"), R"("C:\\dir")");
}

TEST(LogfmtTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(LogfmtValue("a\nb\tc\rd"), R"("a\nb\tc\rd")");
  EXPECT_EQ(LogfmtValue("nul\0bell\a del\x7f"s), R"("nul\u0000bell\u0007 del\u007f")");
}

TEST(LogfmtTest, Utf8IsKeptAndInvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(LogfmtValue("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(LogfmtValue("\xf0\x9f\x94\x8c"), "\"\xf0\x9f\x94\x8c\"");  // U+1F50C
  EXPECT_EQ(LogfmtValue("a\xff"
                        "b"),
            R"("a\ufffdb")");                                         // never UTF-8
  EXPECT_EQ(LogfmtValue("\xc3"), R"("\ufffd")");                      // truncated
  EXPECT_EQ(LogfmtValue("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong '/'
  EXPECT_EQ(LogfmtValue("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a surrogate
}

TEST(LogfmtTest, KeysAreMadeSafe) {
  EXPECT_EQ(LogfmtKey("telemetry_path"), "telemetry_path");
  EXPECT_EQ(LogfmtKey("a b=\"c\""), "a_b__c_");
  EXPECT_EQ(LogfmtKey(""), "_");
}

TEST(LogfmtTest, LineStartsWithMsgThenPairsInOrder) {
  EXPECT_EQ(
      LogLine("collector failed")
          .Add("collector", "services")
          .Add("err", "tcp/ipv4: \"boom\"")
          .Add("port", 8080)
          .Add("ratio", uint64_t{3})
          .Text(),
      R"(msg="collector failed" collector=services err="tcp/ipv4: \"boom\"" port=8080 ratio=3)");
  EXPECT_EQ(LogLine("listening").Text(), "msg=listening");
}

}  // namespace
}  // namespace portwatch
