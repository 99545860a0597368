#include "collectors/bind_events/bind_events_config.h"

#include <set>

#include "collectors/common/config_yaml.h"

namespace portwatch {

const char* BindEventsAttachName(BindEventsAttach attach) {
  switch (attach) {
    case BindEventsAttach::kFexit:
      return "fexit";
    case BindEventsAttach::kTracepoint:
      return "tracepoint";
    case BindEventsAttach::kRawTracepoint:
      return "raw_tracepoint";
  }
  return "unknown";
}

BindEventsConfig ParseBindEventsConfig(const YAML::Node& node, const std::string& path) {
  BindEventsConfig options;
  if (node.IsNull()) {
    return options;
  }
  RequireMap(node, path);
  RejectUnknownKeys(node, path, {"attach", "namespaces", "max_port_series"});
  if (const YAML::Node attach = node["attach"]) {
    std::set<std::string> names;
    for (BindEventsAttach kind : kBindEventsAttachPaths) {
      names.insert(BindEventsAttachName(kind));
    }
    const std::set<std::string> allowed = ParseChoiceList(attach, path + ".attach", names);
    if (allowed.empty()) {
      throw ConfigProblem(attach.Mark(),
                          path +
                              ".attach must list at least one of fexit, raw_tracepoint, "
                              "tracepoint (--no-collector.bind_events turns the collector off)");
    }
    // Cheapest first, whatever the order written.
    options.attach.clear();
    for (BindEventsAttach kind : kBindEventsAttachPaths) {
      if (allowed.count(BindEventsAttachName(kind)) != 0) {
        options.attach.push_back(kind);
      }
    }
  }
  if (const YAML::Node namespaces = node["namespaces"]) {
    const std::string text = namespaces.IsScalar() ? namespaces.Scalar() : "";
    if (text != "all" && text != "own") {
      throw ConfigProblem(namespaces.Mark(),
                          path + ".namespaces must be all or own, got " + DescribeNode(namespaces));
    }
    options.all_namespaces = text == "all";
  }
  if (const YAML::Node cap = node["max_port_series"]) {
    options.max_port_series = ParseCount(cap, path + ".max_port_series", 1);
  }
  return options;
}

}  // namespace portwatch
