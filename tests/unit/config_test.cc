#include "exporter/config.h"

#include <array>
#include <cstdint>
#include <fstream>
#include <re2/re2.h>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

const std::string kConfigDir = std::string(PORTWATCH_FIXTURES) + "/config/";

std::string ReadSourceFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void ExpectDefaults(const SocketsConfig& sockets) {
  EXPECT_TRUE(sockets.tcp);
  EXPECT_TRUE(sockets.udp);
  EXPECT_TRUE(sockets.ipv4);
  EXPECT_TRUE(sockets.ipv6);
  EXPECT_EQ(sockets.max_port_series, 1000U);
  EXPECT_EQ(sockets.max_peer_port_series, 100U);
  EXPECT_EQ(sockets.top_destinations, 10U);
  EXPECT_FALSE(sockets.bound_inactive);
}

void ExpectDefaults(const Config& config) {
  ExpectDefaults(config.sockets);
  EXPECT_TRUE(config.services_options.listener_info);
  EXPECT_FALSE(config.services_options.pid_label);
  EXPECT_EQ(config.services_options.max_listener_series, 1000U);
  EXPECT_TRUE(config.services.empty());
}

/// The error LoadConfig gives for tests/fixtures/config/<name>, which must not load.
std::string LoadError(const std::string& name) {
  Result<Config> result = LoadConfig(kConfigDir + name);
  EXPECT_FALSE(result.Ok()) << name;
  return result.Error();
}

TEST(ConfigTest, EmbeddedDefaultIsTheShippedFileVerbatim) {
  const std::string shipped =
      ReadSourceFile(std::string(PORTWATCH_FIXTURES) + "/../../exporter/default_config.yaml");
  ASSERT_FALSE(shipped.empty());
  EXPECT_EQ(EmbeddedDefaultConfig(), shipped);
}

TEST(ConfigTest, EmbeddedDefaultGivesTheDocumentedDefaults) {
  Result<Config> result = LoadConfig("");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_EQ(result.Error(), "");
  EXPECT_EQ(result->source, "<embedded default>");
  ExpectDefaults(*result);
}

TEST(ConfigTest, DefaultConstructedConfigMatchesTheEmbeddedDefault) { ExpectDefaults(Config{}); }

// Defaults exist twice, in the structs and in exporter/default_config.yaml (what users read and
// copy): every section of the embedded file must give exactly the struct's defaults.
TEST(ConfigTest, EmbeddedDefaultEqualsTheStructDefaultsSectionBySection) {
  Result<Config> result = LoadConfig("");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const Config defaults;
  EXPECT_EQ(result->sockets, defaults.sockets);
  EXPECT_EQ(result->services_options, defaults.services_options);
  EXPECT_EQ(result->bind_events, defaults.bind_events);
  EXPECT_EQ(result->privacy, defaults.privacy);
  EXPECT_TRUE(result->services.empty());
}

TEST(ConfigTest, EverySectionOfTheEmbeddedDefaultIsRead) {
  // A changed value in the embedded file must show: the comparison above is not vacuous.
  std::string edited = EmbeddedDefaultConfig();
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"max_peer_port_series: 100", "max_peer_port_series: 99"},
           {"max_listener_series: 1000", "max_listener_series: 999"},
           {"namespaces: all", "namespaces: own"},
           {"command_lines: true", "command_lines: false"}}) {
    const size_t at = edited.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    edited.replace(at, from.size(), to);
  }
  Result<Config> result = ParseConfig(edited, "edited");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const Config defaults;
  EXPECT_NE(result->sockets, defaults.sockets);
  EXPECT_NE(result->services_options, defaults.services_options);
  EXPECT_NE(result->bind_events, defaults.bind_events);
  EXPECT_NE(result->privacy, defaults.privacy);
}

TEST(ConfigTest, PrivacyKeepsCommandLinesOutOfLogsOnRequest) {
  Result<Config> result = ParseConfig("privacy:\n  command_lines: false\n", "privacy.yaml");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_FALSE(result->privacy.command_lines);
  EXPECT_EQ(ParseConfig("privacy:\n  command_line: false\n", "typo.yaml").Error(),
            "typo.yaml:2:3: unknown key \"command_line\" in privacy (known: command_lines)");
  EXPECT_EQ(ParseConfig("privacy:\n  command_lines: maybe\n", "bad.yaml").Error(),
            "bad.yaml:2:18: privacy.command_lines must be true or false, got \"maybe\"");
}

TEST(ConfigTest, FullConfig) {
  const std::string path = kConfigDir + "good_full.yaml";
  Result<Config> result = LoadConfig(path);
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_EQ(result->source, path);
  const SocketsConfig& sockets = result->sockets;
  EXPECT_TRUE(sockets.tcp);
  EXPECT_FALSE(sockets.udp);
  EXPECT_FALSE(sockets.ipv4);
  EXPECT_TRUE(sockets.ipv6);
  EXPECT_EQ(sockets.max_port_series, 50U);
  EXPECT_EQ(sockets.max_peer_port_series, 7U);
  EXPECT_EQ(sockets.top_destinations, 3U);
  EXPECT_TRUE(sockets.bound_inactive);
}

TEST(ConfigTest, BoundInactiveMustBeABoolean) {
  EXPECT_EQ(
      ParseConfig("collectors:\n  sockets:\n    bound_inactive: sometimes\n", "inline").Error(),
      "inline:3:21: collectors.sockets.bound_inactive must be true or false, got "
      "\"sometimes\"");
  Result<Config> result =
      ParseConfig("collectors:\n  sockets:\n    bound_inactive: false\n", "inline");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_FALSE(result->sockets.bound_inactive);
}

TEST(ConfigTest, PartialConfigKeepsOtherDefaults) {
  Result<Config> result = LoadConfig(kConfigDir + "good_partial.yaml");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const SocketsConfig& sockets = result->sockets;
  EXPECT_TRUE(sockets.tcp);
  EXPECT_TRUE(sockets.udp);
  EXPECT_TRUE(sockets.ipv4);
  EXPECT_TRUE(sockets.ipv6);
  EXPECT_EQ(sockets.max_port_series, 3U);
  EXPECT_EQ(sockets.max_peer_port_series, 100U);
}

TEST(ConfigTest, EmptyAndNullSectionsGiveDefaults) {
  for (const char* name : {"good_empty.yaml", "good_null_sections.yaml"}) {
    Result<Config> result = LoadConfig(kConfigDir + name);
    ASSERT_TRUE(result.Ok()) << name << ": " << result.Error();
    ExpectDefaults(*result);
  }
  for (const char* text :
       {"", "collectors:\n", "collectors: {}\n", "collectors:\n  sockets: {}\n"}) {
    Result<Config> result = ParseConfig(text, "inline");
    ASSERT_TRUE(result.Ok()) << text << ": " << result.Error();
    EXPECT_EQ(result->source, "inline");
    ExpectDefaults(*result);
  }
}

TEST(ConfigTest, EmptyProtocolListAndLimitValues) {
  Result<Config> result = LoadConfig(kConfigDir + "good_no_protocols.yaml");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const SocketsConfig& sockets = result->sockets;
  EXPECT_FALSE(sockets.tcp);
  EXPECT_FALSE(sockets.udp);
  EXPECT_TRUE(sockets.ipv4);
  EXPECT_TRUE(sockets.ipv6);
  EXPECT_EQ(sockets.max_port_series, 2147483647U);
  EXPECT_EQ(sockets.max_peer_port_series, 1U);
}

TEST(ConfigTest, MissingFile) {
  const std::string path = kConfigDir + "no_such_file.yaml";
  Result<Config> result = LoadConfig(path);
  EXPECT_FALSE(result.Ok());
  EXPECT_EQ(result.Error(), path + ": cannot open config file");
}

TEST(ConfigTest, UnknownTopLevelKey) {
  EXPECT_EQ(LoadError("bad_unknown_top_level_key.yaml"),
            kConfigDir +
                "bad_unknown_top_level_key.yaml:3:1: unknown key \"listen_address\" in the "
                "config (known: collectors, privacy, services)");
}

TEST(ConfigTest, UnknownNestedKey) {
  EXPECT_EQ(
      LoadError("bad_unknown_nested_key.yaml"),
      kConfigDir +
          "bad_unknown_nested_key.yaml:4:5: unknown key \"max_ports\" in "
          "collectors.sockets (known: backend, bound_inactive, families, max_peer_port_series, "
          "max_pod_series, max_port_series, pod_counts_max_age_seconds, pod_logs_dir, "
          "pod_max_peer_port_series, "
          "pod_max_port_series, pod_top_destinations, pods, protocols, top_destinations)");
}

TEST(ConfigTest, UnknownCollector) {
  EXPECT_EQ(LoadError("bad_unknown_collector.yaml"),
            kConfigDir +
                "bad_unknown_collector.yaml:2:3: unknown key \"netstat\" in collectors (known: "
                "bind_events, services, sockets)");
}

TEST(ConfigTest, ScalarWhereAListBelongs) {
  EXPECT_EQ(LoadError("bad_wrong_type_list.yaml"),
            kConfigDir +
                "bad_wrong_type_list.yaml:3:16: collectors.sockets.protocols must be a list, got "
                "\"tcp\"");
}

TEST(ConfigTest, TextWhereAnIntegerBelongs) {
  EXPECT_EQ(LoadError("bad_wrong_type_integer.yaml"),
            kConfigDir +
                "bad_wrong_type_integer.yaml:3:22: collectors.sockets.max_port_series must be an "
                "integer, got \"lots\"");
}

TEST(ConfigTest, ListWhereAMapBelongs) {
  EXPECT_EQ(
      LoadError("bad_wrong_type_map.yaml"),
      kConfigDir + "bad_wrong_type_map.yaml:2:12: collectors.sockets must be a map, got a list");
}

TEST(ConfigTest, RootMustBeAMap) {
  EXPECT_EQ(LoadError("bad_root_is_a_list.yaml"),
            kConfigDir + "bad_root_is_a_list.yaml:1:1: the config must be a map, got a list");
  EXPECT_EQ(ParseConfig("hello\n", "inline").Error(),
            "inline:1:1: the config must be a map, got \"hello\"");
}

TEST(ConfigTest, NegativeCap) {
  EXPECT_EQ(LoadError("bad_negative_cap.yaml"),
            kConfigDir +
                "bad_negative_cap.yaml:3:22: collectors.sockets.max_port_series must be at least "
                "1, got -5");
}

TEST(ConfigTest, ZeroCap) {
  EXPECT_EQ(LoadError("bad_zero_cap.yaml"),
            kConfigDir +
                "bad_zero_cap.yaml:4:27: collectors.sockets.max_peer_port_series must be at "
                "least 1, got 0");
}

TEST(ConfigTest, CapTooLargeNamesTheUpperBound) {
  EXPECT_EQ(LoadError("bad_huge_cap.yaml"),
            kConfigDir +
                "bad_huge_cap.yaml:3:22: collectors.sockets.max_port_series must be between 1 and "
                "2147483647, got 3000000000");
}

TEST(ConfigTest, NonIntegerCaps) {
  EXPECT_EQ(ParseConfig("collectors:\n  sockets:\n    max_port_series: 1.5\n", "inline").Error(),
            "inline:3:22: collectors.sockets.max_port_series must be an integer, got \"1.5\"");
  EXPECT_EQ(ParseConfig("collectors:\n  sockets:\n    max_port_series: [1]\n", "inline").Error(),
            "inline:3:22: collectors.sockets.max_port_series must be an integer, got a list");
  EXPECT_EQ(ParseConfig("collectors:\n  sockets:\n    max_port_series: ~\n", "inline").Error(),
            "inline:3:22: collectors.sockets.max_port_series must be an integer, got null");
}

TEST(ConfigTest, UnknownProtocol) {
  EXPECT_EQ(LoadError("bad_unknown_protocol.yaml"),
            kConfigDir +
                "bad_unknown_protocol.yaml:3:22: collectors.sockets.protocols entries must be one "
                "of tcp, udp, got \"sctp\"");
}

TEST(ConfigTest, UnknownFamilyEntryThatIsNotAScalar) {
  EXPECT_EQ(
      ParseConfig("collectors:\n  sockets:\n    families: [[ipv4]]\n", "inline").Error(),
      "inline:3:16: collectors.sockets.families entries must be one of ipv4, ipv6, got a list");
}

TEST(ConfigTest, DuplicateListEntry) {
  EXPECT_EQ(LoadError("bad_duplicate_family.yaml"),
            kConfigDir +
                "bad_duplicate_family.yaml:6:9: collectors.sockets.families lists \"ipv4\" twice");
}

TEST(ConfigTest, YamlSyntaxError) {
  // yaml-cpp reads "udp max_port_series" as one plain scalar and stops at the ':' after it.
  EXPECT_EQ(LoadError("bad_yaml_syntax.yaml"),
            kConfigDir + "bad_yaml_syntax.yaml:4:20: end of sequence flow not found");
}

using Address = std::array<uint8_t, 16>;

std::string InlineError(const std::string& text) {
  Result<Config> result = ParseConfig(text, "inline");
  EXPECT_FALSE(result.Ok()) << text;
  return result.Error();
}

TEST(ConfigTest, ServicesWithEveryField) {
  Result<Config> result = LoadConfig(kConfigDir + "good_services.yaml");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const Config& config = *result;
  EXPECT_EQ(config.sockets.top_destinations, 0U);
  EXPECT_FALSE(config.services_options.listener_info);
  EXPECT_TRUE(config.services_options.pid_label);
  EXPECT_EQ(config.services_options.max_listener_series, 20U);
  ASSERT_EQ(config.services.size(), 4U);

  const ServiceConfig& web = config.services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.port, 443);
  EXPECT_EQ(web.protocol, ServiceProtocol::kTcp);
  EXPECT_EQ(web.address, "0.0.0.0");
  EXPECT_FALSE(web.ipv6);
  EXPECT_EQ(web.address_bytes, Address{});
  EXPECT_FALSE(web.ipv6_only);
  EXPECT_EQ(web.owner.process, "nginx");
  EXPECT_EQ(web.owner.cmdline, "^nginx: master");
  ASSERT_NE(web.owner.cmdline_regex, nullptr);
  EXPECT_TRUE(RE2::PartialMatch("nginx: master process /usr/sbin/nginx", *web.owner.cmdline_regex));
  EXPECT_FALSE(RE2::PartialMatch("nginx: worker process", *web.owner.cmdline_regex));
  EXPECT_EQ(web.owner.exe, "/usr/sbin/nginx");
  EXPECT_TRUE(web.owner.Any());
  EXPECT_EQ(web.instances, 2U);

  const ServiceConfig& dns = config.services[1];
  EXPECT_EQ(dns.name, "dns");
  EXPECT_EQ(dns.port, 53);
  EXPECT_EQ(dns.protocol, ServiceProtocol::kUdp);
  EXPECT_EQ(dns.address, "::1");
  EXPECT_TRUE(dns.ipv6);
  EXPECT_EQ(dns.address_bytes, (Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_TRUE(dns.ipv6_only);
  EXPECT_FALSE(dns.owner.Any());
  EXPECT_EQ(dns.instances, 1U);

  const ServiceConfig& api = config.services[2];
  EXPECT_EQ(api.address, "[2001:db8::5]");  // as written
  EXPECT_TRUE(api.ipv6);
  EXPECT_EQ(api.address_bytes,
            (Address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}));
  EXPECT_FALSE(api.ipv6_only);
  EXPECT_EQ(api.owner.process, "");
  EXPECT_EQ(api.owner.cmdline_regex, nullptr);
  EXPECT_EQ(api.owner.exe, "/opt/api/bin/api");

  const ServiceConfig& metrics = config.services[3];
  EXPECT_EQ(metrics.address, "127.0.0.1");
  EXPECT_FALSE(metrics.ipv6);
  EXPECT_EQ(metrics.address_bytes, (Address{127, 0, 0, 1}));
}

TEST(ConfigTest, EmptyServicesList) {
  for (const char* text : {"services:\n", "services: []\n", "collectors:\n  services:\n"}) {
    Result<Config> result = ParseConfig(text, "inline");
    ASSERT_TRUE(result.Ok()) << text << ": " << result.Error();
    ExpectDefaults(*result);
  }
}

TEST(ConfigTest, ServiceWithoutPort) {
  EXPECT_EQ(LoadError("bad_service_without_port.yaml"),
            kConfigDir + "bad_service_without_port.yaml:4:5: services[1] (dns) needs a port");
}

TEST(ConfigTest, DuplicateServiceName) {
  EXPECT_EQ(LoadError("bad_service_duplicate_name.yaml"),
            kConfigDir +
                "bad_service_duplicate_name.yaml:4:11: services[1].name \"web\" is used by an "
                "earlier service");
}

TEST(ConfigTest, InvalidOwnerRegex) {
  // The part in parentheses is RE2's error().
  EXPECT_EQ(LoadError("bad_service_owner_regex.yaml"),
            kConfigDir +
                "bad_service_owner_regex.yaml:5:16: services[0].owner.cmdline is not a valid "
                "regular expression (missing ): nginx (): nginx (");
}

/// A config whose first service's owner has `cmdline: "<pattern>"` on line 12, column 16.
std::string OwnerCmdlineConfig(const std::string& pattern) {
  return "collectors:\n"
         "  sockets:\n"
         "    protocols: [tcp]\n"
         "  services:\n"
         "    listener_info: true\n"
         "\n"
         "services:\n"
         "  - name: openhab\n"
         "    port: 8080\n"
         "    owner:\n"
         "      process: java\n"
         "      cmdline: \"" +
         pattern + "\"\n";
}

TEST(ConfigTest, InvalidRe2PatternNamesFileLineAndColumn) {
  Result<Config> result = ParseConfig(OwnerCmdlineConfig("openhab(.*"), "portwatch.yaml");
  EXPECT_FALSE(result.Ok());
  EXPECT_EQ(result.Error(),
            "portwatch.yaml:12:16: services[0].owner.cmdline is not a valid regular expression "
            "(missing ): openhab(.*): openhab(.*");
  result = ParseConfig(OwnerCmdlineConfig("[z-a]"), "portwatch.yaml");
  EXPECT_EQ(result.Error(),
            "portwatch.yaml:12:16: services[0].owner.cmdline is not a valid regular expression "
            "(invalid character class range: z-a): [z-a]");
}

TEST(ConfigTest, BackreferencesAndLookaroundsAreRefused) {
  // Not RE2: they would need the backtracking that made std::regex hang or overflow its stack.
  // In a YAML double-quoted scalar "\\1" is the two characters \1.
  EXPECT_EQ(ParseConfig(OwnerCmdlineConfig("(a)\\\\1"), "portwatch.yaml").Error(),
            "portwatch.yaml:12:16: services[0].owner.cmdline is not a valid regular expression "
            "(invalid escape sequence: \\1; RE2 has no backreferences or lookarounds): (a)\\1");
  EXPECT_EQ(ParseConfig(OwnerCmdlineConfig("openhab(?=.*karaf)"), "portwatch.yaml").Error(),
            "portwatch.yaml:12:16: services[0].owner.cmdline is not a valid regular expression "
            "(invalid perl operator: (?=; RE2 has no backreferences or lookarounds): "
            "openhab(?=.*karaf)");
  EXPECT_EQ(ParseConfig(OwnerCmdlineConfig("(?<!x)openhab"), "portwatch.yaml").Error(),
            "portwatch.yaml:12:16: services[0].owner.cmdline is not a valid regular expression "
            "(invalid perl operator: (?<; RE2 has no backreferences or lookarounds): "
            "(?<!x)openhab");
}

TEST(ConfigTest, NestedQuantifierIsAcceptedAndMatchesInLinearTime) {
  Result<Config> result = ParseConfig(OwnerCmdlineConfig("(a+)+$"), "portwatch.yaml");
  ASSERT_TRUE(result.Ok()) << result.Error();
  const OwnerMatch& owner = result->services.at(0).owner;
  EXPECT_EQ(owner.cmdline, "(a+)+$");
  ASSERT_NE(owner.cmdline_regex, nullptr);
  // Backtracking takes 2^n steps here (std::regex: 1.2 s at n = 24); RE2 is linear. No timed
  // assertion: it must simply return, within the suite's timeout.
  const std::string attack = std::string(100 * 1024, 'a') + "b";
  EXPECT_FALSE(RE2::PartialMatch(attack, *owner.cmdline_regex));
  EXPECT_TRUE(RE2::PartialMatch(std::string(100 * 1024, 'a'), *owner.cmdline_regex));
}

TEST(ConfigTest, CmdlineRegexHasByteSemanticsAndDotMatchesNewline) {
  auto regex = CompileCmdlineRegex("openhab.*karaf");
  ASSERT_TRUE(regex.Ok()) << regex.Error();
  // Command lines are bytes, not necessarily UTF-8; an argument may hold a newline.
  EXPECT_TRUE(RE2::PartialMatch("java -Dopenhab.home=/srv/\xff\xfe -jar karaf.jar", **regex));
  EXPECT_TRUE(RE2::PartialMatch("sh -c openhab\nexec karaf", **regex));
  EXPECT_FALSE(RE2::PartialMatch("karaf openhab", **regex));
  // A UTF-8 literal matches the same bytes.
  auto utf8 = CompileCmdlineRegex("caf\u00e9 ");
  ASSERT_TRUE(utf8.Ok()) << utf8.Error();
  EXPECT_TRUE(RE2::PartialMatch("/usr/bin/caf\u00e9 --port 80", **utf8));
  EXPECT_EQ(CompileCmdlineRegex("(").Error(), "missing ): (");
}

TEST(ConfigTest, ServiceErrors) {
  EXPECT_EQ(InlineError("services: {}\n"), "inline:1:11: services must be a list, got a map");
  EXPECT_EQ(InlineError("services:\n  - port: 80\n"), "inline:2:5: services[0] needs a name");
  EXPECT_EQ(InlineError("services:\n  - web\n"),
            "inline:2:5: services[0] must be a map, got \"web\"");
  EXPECT_EQ(InlineError("services:\n  - name: ''\n    port: 80\n"),
            "inline:2:11: services[0].name must be a non-empty string, got \"\"");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    ports: 80\n"),
            "inline:3:5: unknown key \"ports\" in services[0] (known: address, instances, "
            "ipv6_only, name, owner, pods, port, protocol)");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 0\n"),
            "inline:3:11: services[0].port must be at least 1, got 0");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 70000\n"),
            "inline:3:11: services[0].port must be 1-65535, got 70000");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: http\n"),
            "inline:3:11: services[0].port must be an integer, got \"http\"");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    protocol: sctp\n"),
            "inline:4:15: services[0].protocol must be tcp or udp, got \"sctp\"");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    protocol: [tcp]\n"),
            "inline:4:15: services[0].protocol must be tcp or udp, got a list");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    address: localhost\n"),
            "inline:4:14: services[0].address must be an IPv4 or IPv6 address, got "
            "\"localhost\"");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    ipv6_only: true\n"),
            "inline:4:16: services[0].ipv6_only applies to IPv6 addresses only");
  EXPECT_EQ(
      InlineError("services:\n  - name: web\n    port: 80\n    address: '::'\n    ipv6_only: 2\n"),
      "inline:5:16: services[0].ipv6_only must be true or false, got \"2\"");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    owner: {}\n"),
            "inline:4:12: services[0].owner needs at least one of process, cmdline, exe");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    owner:\n      pid: 1\n"),
            "inline:5:7: unknown key \"pid\" in services[0].owner (known: cmdline, exe, process)");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    owner:\n"
                        "      process: a-sixteen-chars!\n"),
            "inline:5:16: services[0].owner.process \"a-sixteen-chars!\" is longer than the 15 "
            "characters the kernel keeps in comm; use cmdline or exe");
  EXPECT_EQ(InlineError("services:\n  - name: web\n    port: 80\n    instances: 0\n"),
            "inline:4:16: services[0].instances must be at least 1, got 0");
}

TEST(ConfigTest, FifteenCharacterProcessNameFits) {
  Result<Config> result = ParseConfig(
      "services:\n  - name: web\n    port: 80\n    owner:\n      process: fifteen-chars-x\n",
      "inline");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_EQ(result->services[0].owner.process, "fifteen-chars-x");
}

TEST(ConfigTest, ServicesCollectorOptionErrors) {
  EXPECT_EQ(InlineError("collectors:\n  services:\n    listener_info: yes please\n"),
            "inline:3:20: collectors.services.listener_info must be true or false, got \"yes "
            "please\"");
  EXPECT_EQ(InlineError("collectors:\n  services:\n    max_listener_series: 0\n"),
            "inline:3:26: collectors.services.max_listener_series must be at least 1, got 0");
  EXPECT_EQ(InlineError("collectors:\n  services:\n    pids: true\n"),
            "inline:3:5: unknown key \"pids\" in collectors.services (known: "
            "container_logs_dir, listener_info, max_listener_series, pid_label)");
  EXPECT_EQ(InlineError("collectors:\n  services:\n    container_logs_dir: ''\n"),
            "inline:3:25: collectors.services.container_logs_dir must be a non-empty string, got "
            "\"\"");
  EXPECT_EQ(InlineError("collectors:\n  sockets:\n    top_destinations: -1\n"),
            "inline:3:23: collectors.sockets.top_destinations must be at least 0, got -1");
}

TEST(ConfigTest, ContainerLogsDirDefaultsToTheKubelets) {
  EXPECT_EQ(ServicesOptions{}.container_logs_dir, "/var/log/containers");
  Result<Config> result =
      ParseConfig("collectors:\n  services:\n    container_logs_dir: /host/containers\n", "inline");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_EQ(result->services_options.container_logs_dir, "/host/containers");
}

TEST(ConfigTest, ServicesMayNamePods) {
  Result<Config> result = ParseConfig(
      "services:\n"
      "  - name: shop-web\n"
      "    port: 8080\n"
      "    pods: {namespace: shop, name: \"web-.*\"}\n"
      "  - name: any-web\n"
      "    port: 8081\n"
      "    pods:\n"
      "      name: web-[0-9]+\n"
      "  - name: shop-any\n"
      "    port: 8082\n"
      "    pods: {namespace: shop}\n"
      "  - name: node\n"
      "    port: 8083\n",
      "inline");
  ASSERT_TRUE(result.Ok()) << result.Error();
  ASSERT_EQ(result->services.size(), 4U);
  const std::optional<PodSelector>& shop_web = result->services[0].pods;
  ASSERT_TRUE(shop_web.has_value());
  EXPECT_EQ(shop_web->namespace_name, "shop");
  EXPECT_EQ(shop_web->name, "web-.*");
  const std::optional<PodSelector>& any_web = result->services[1].pods;
  ASSERT_TRUE(any_web.has_value());
  EXPECT_EQ(any_web->namespace_name, "");
  EXPECT_EQ(any_web->name, "web-[0-9]+");
  const std::optional<PodSelector>& shop_any = result->services[2].pods;
  ASSERT_TRUE(shop_any.has_value());
  EXPECT_EQ(shop_any->name_regex, nullptr);
  EXPECT_FALSE(result->services[3].pods.has_value());

  // namespace is exact; name is anchored at both ends.
  EXPECT_TRUE(shop_web->Matches("shop", "web-0"));
  EXPECT_TRUE(shop_web->Matches("shop", "web-"));
  EXPECT_FALSE(shop_web->Matches("shop", "old-web-0"));
  EXPECT_FALSE(shop_web->Matches("shopping", "web-0"));
  EXPECT_FALSE(shop_web->Matches("", "web-0"));
  EXPECT_TRUE(any_web->Matches("shop", "web-12"));
  EXPECT_TRUE(any_web->Matches("", "web-12"));  // a pod the log directory does not name
  EXPECT_FALSE(any_web->Matches("shop", "web-12a"));
  EXPECT_FALSE(any_web->Matches("shop", "web-"));
  EXPECT_TRUE(shop_any->Matches("shop", "anything"));
  EXPECT_FALSE(shop_any->Matches("shop-2", "anything"));
}

TEST(ConfigTest, SocketBackend) {
  EXPECT_EQ(Config().sockets.backend, SocketBackendSetting::kAuto);
  for (const auto& [text, backend] : std::vector<std::pair<std::string, SocketBackendSetting>>{
           {"auto", SocketBackendSetting::kAuto},
           {"netlink", SocketBackendSetting::kNetlink},
           {"bpf", SocketBackendSetting::kBpf}}) {
    Result<Config> result =
        ParseConfig("collectors:\n  sockets:\n    backend: " + text + "\n", "inline");
    ASSERT_TRUE(result.Ok()) << result.Error();
    EXPECT_EQ(result->sockets.backend, backend) << text;
  }
  EXPECT_EQ(
      InlineError("collectors:\n  sockets:\n    backend: ebpf\n"),
      "inline:3:14: collectors.sockets.backend must be one of auto, netlink, bpf, got \"ebpf\"");
}

TEST(ConfigTest, PodCountsMaxAge) {
  EXPECT_EQ(Config().sockets.pod_counts_max_age_seconds, 600U);
  Result<Config> result =
      ParseConfig("collectors:\n  sockets:\n    pod_counts_max_age_seconds: 120\n", "inline");
  ASSERT_TRUE(result.Ok()) << result.Error();
  EXPECT_EQ(result->sockets.pod_counts_max_age_seconds, 120U);
  EXPECT_EQ(InlineError("collectors:\n  sockets:\n    pod_counts_max_age_seconds: 0\n"),
            "inline:3:33: collectors.sockets.pod_counts_max_age_seconds must be at least 1, got 0");
}

TEST(ConfigTest, PodSelectorErrorsNameTheLine) {
  const std::string service = "services:\n  - name: web\n    port: 80\n";
  EXPECT_EQ(InlineError(service + "    pods: {}\n"),
            "inline:4:11: services[0].pods needs at least one of namespace, name");
  EXPECT_EQ(InlineError(service + "    pods: shop\n"),
            "inline:4:11: services[0].pods must be a map, got \"shop\"");
  EXPECT_EQ(InlineError(service + "    pods:\n      namespace: shop\n      labels: {app: web}\n"),
            "inline:6:7: unknown key \"labels\" in services[0].pods (known: name, namespace)");
  EXPECT_EQ(InlineError(service + "    pods:\n      name: \"web-(\"\n"),
            "inline:5:13: services[0].pods.name is not a valid regular expression (missing ): "
            "web-(): web-(");
  EXPECT_EQ(InlineError(service + "    pods:\n      namespace: ''\n"),
            "inline:5:18: services[0].pods.namespace must be a non-empty string, got \"\"");
  EXPECT_EQ(InlineError(service + "    pods:\n      namespace: [shop]\n"),
            "inline:5:18: services[0].pods.namespace must be a non-empty string, got a list");
}

}  // namespace
}  // namespace portwatch
