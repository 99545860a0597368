// One source of truth for the alert rules: deploy/prometheus/portwatch.rules.yml. Two files are
// generated from it, and this script checks that they are up to date (or rewrites them):
//   deploy/kubernetes/prometheus-operator/prometheusrule.yaml  its groups, verbatim
//   dashboards/alerting/portwatch-alerts.yaml                  Grafana-managed alert rules for the
//     alerts in kGrafanaAlerts: the PromQL left of the alert's comparison, with every recording
//     rule inlined, as query A, and the threshold (the portwatch:threshold:* recording rule's
//     value) as a Grafana threshold expression B.
//   node sync.mjs [--write]     (PORTWATCH_SOURCE_DIR, PORTWATCH_ALERTS_NODE_DIR: see CMakeLists)
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import test from "node:test";

const sourceDir = process.env.PORTWATCH_SOURCE_DIR;
const nodeDir = process.env.PORTWATCH_ALERTS_NODE_DIR;
if (!sourceDir || !nodeDir) {
  throw new Error("PORTWATCH_SOURCE_DIR and PORTWATCH_ALERTS_NODE_DIR must be set");
}
const YAML = createRequire(path.join(nodeDir, "package.json"))("yaml");

export const rulesFile = path.join(sourceDir, "deploy/prometheus/portwatch.rules.yml");
const prometheusRuleFile = path.join(sourceDir,
  "deploy/kubernetes/prometheus-operator/prometheusrule.yaml");
const grafanaFile = path.join(sourceDir, "dashboards/alerting/portwatch-alerts.yaml");

// The alerts Grafana users get as Grafana-managed rules (issue 6: TIME_WAIT buildup, conflict,
// ephemeral exhaustion, bind failures), by Grafana rule group.
// Each pod's against its own limits too (issue 12).
export const kGrafanaAlerts = {
  "portwatch-time-wait": ["PortwatchTimeWaitNearBucketLimit", "PortwatchPodTimeWaitNearBucketLimit",
    "PortwatchTimeWaitGrowthOnPort", "PortwatchTimeWaitGrowthToPeerPort",
    "PortwatchTimeWaitBucketOverflow"],
  "portwatch-conflicts": ["PortwatchServicePortHeldByOtherProcess"],
  "portwatch-ephemeral-ports": ["PortwatchEphemeralPortsExhaustionApproaching",
    "PortwatchPodEphemeralPortsExhaustionApproaching"],
  "portwatch-bind-failures": ["PortwatchBindFailures"],
};

// The families written for the node's network namespace and once more per pod with the labels
// `namespace` and `pod`; the node's own series have neither. The sockets and kernel_limits
// collectors' (with collectors.sockets.pods: collectors/sockets/sockets_collector.cc,
// BuildKernelLimitFamilies), the bind_events collector's failures inside a pod's namespace, and
// the services collector's for services evaluated inside pods (a pods selector) and pods'
// listeners. A query about the node selects pod=""; one about pods keeps namespace and pod
// apart (portwatch_sock_diag_table_available and portwatch_scrape_sockets_read are the node's
// alone, so not listed).
export const kPerPodFamilies = ["portwatch_sockets", "portwatch_peer_sockets",
  "portwatch_ephemeral_destination_sockets", "portwatch_ephemeral_destination_untracked_sockets",
  "portwatch_port_series_folded", "portwatch_tcp_max_tw_buckets",
  "portwatch_ephemeral_port_range_first", "portwatch_ephemeral_port_range_last",
  "portwatch_ephemeral_ports_available", "portwatch_bind_failures_total",
  "portwatch_listener_info", "portwatch_service_info", "portwatch_service_up",
  "portwatch_service_owner_processes", "portwatch_service_expected_instances",
  "portwatch_service_matching_processes", "portwatch_service_conflict",
  "portwatch_service_sockets", "portwatch_service_bind_prediction",
  "portwatch_service_bind_blockers", "portwatch_service_time_wait_remaining_seconds",
  "portwatch_service_port_in_ephemeral_range"];

/// Every selector of a per-pod family in `expr`: {name, matchers} (matchers "" without braces).
export function perPodSelectors(expr) {
  const names = kPerPodFamilies.join("|");
  return [...expr.matchAll(new RegExp(`(?<![\\w:])(${names})(?![\\w:])\\s*(\\{[^}]*\\})?`, "g"))]
    .map((m) => ({ name: m[1], matchers: m[2] ?? "" }));
}

const kHeader = (what) => `# GENERATED from deploy/prometheus/portwatch.rules.yml by tests/alerts/sync.mjs --write\n` +
  `# (cmake --build BUILD --target alerts_regenerate). Do not edit: ${what}\n`;

export function readRules() {
  return YAML.parse(fs.readFileSync(rulesFile, "utf8"), { uniqueKeys: true });
}

export function allRules(rules) {
  return rules.groups.flatMap((group) => group.rules);
}

/// Numbers of the portwatch:threshold:* recording rules, which are `vector(N)`.
export function thresholds(rules) {
  const out = {};
  for (const rule of allRules(rules)) {
    if (rule.record?.startsWith("portwatch:threshold:")) {
      const match = /^\s*vector\(\s*([-+0-9.eE]+)\s*\)\s*$/.exec(rule.expr);
      assert.ok(match, `${rule.record}: a threshold must be vector(NUMBER), got ${rule.expr}`);
      out[rule.record] = Number(match[1]);
    }
  }
  return out;
}

/// `expr` with every recording rule replaced by its (parenthesised, itself expanded) expression.
export function inlineRecordingRules(expr, rules) {
  const records = Object.fromEntries(allRules(rules).filter((r) => r.record)
    .map((r) => [r.record, r.expr.trim()]));
  const expand = (text, depth) => {
    assert.ok(depth < 10, `recording rules nest too deep in ${expr}`);
    return text.replace(/\b(portwatch:[a-z0-9_:]+)(\s*\[)?/g, (whole, name, range) => {
      assert.ok(records[name], `${name} is not a recording rule of the rules file`);
      assert.ok(!range, `${name} under a range selector cannot be inlined; use the raw metric`);
      return `(${expand(records[name], depth + 1)})`;
    });
  };
  return expand(expr, 0).replace(/\s+/g, " ").trim();
}

/// An alert `LEFT > scalar(portwatch:threshold:X)` as {query: LEFT inlined, threshold: value}.
export function grafanaCondition(alert, rules) {
  const match = /^([\s\S]*?)>\s*(?:scalar\((portwatch:threshold:[a-z0-9_]+)\)|([01]))\s*$/.exec(alert.expr);
  assert.ok(match, `${alert.alert}: Grafana rules need "EXPR > scalar(portwatch:threshold:X)"` +
    ` or "EXPR > 0", got ${alert.expr}`);
  const threshold = match[2] ? thresholds(rules)[match[2]] : Number(match[3]);
  assert.ok(threshold !== undefined, `${alert.alert}: no threshold ${match[2]}`);
  return { query: inlineRecordingRules(match[1], rules), threshold };
}

const grafanaTemplate = (text) => text.replaceAll("$value", "$values.A.Value");
const grafanaUid = (name) => `portwatch-${name.replace(/^Portwatch/, "")
  .replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase()}`.slice(0, 40);
const durationSeconds = (text) => {
  const units = { s: 1, m: 60, h: 3600, d: 86400 };
  let seconds = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) seconds += Number(n) * units[unit];
  return seconds;
};

export function grafanaRules(rules) {
  const byName = Object.fromEntries(allRules(rules).filter((r) => r.alert).map((r) => [r.alert, r]));
  const groups = Object.entries(kGrafanaAlerts).map(([group, names]) => ({
    orgId: 1,
    name: group,
    folder: "portwatch",
    interval: "1m",
    rules: names.map((name) => {
      const alert = byName[name];
      assert.ok(alert, `${name} is not an alert of the rules file`);
      const { query, threshold } = grafanaCondition(alert, rules);
      // Ranges in the query (delta over 30m, increase over 5m) and `for:` decide how much history
      // the query needs; the instant query looks back the longest range plus a margin.
      const ranges = [...query.matchAll(/\[(\d+[smhd])\]/g)].map((m) => durationSeconds(m[1]));
      return {
        uid: grafanaUid(name),
        title: name,
        condition: "B",
        data: [
          {
            refId: "A",
            relativeTimeRange: { from: Math.max(600, ...ranges.map((s) => s + 300)), to: 0 },
            datasourceUid: "${PORTWATCH_PROMETHEUS_DATASOURCE_UID}",
            model: { refId: "A", expr: query, instant: true, range: false, legendFormat: "__auto" },
          },
          {
            refId: "B",
            relativeTimeRange: { from: 0, to: 0 },
            datasourceUid: "__expr__",
            model: {
              refId: "B", type: "threshold", expression: "A",
              datasource: { type: "__expr__", uid: "__expr__" },
              conditions: [{ evaluator: { type: "gt", params: [threshold] } }],
            },
          },
        ],
        noDataState: "OK",
        execErrState: "Error",
        for: alert.for ?? "0s",
        labels: { ...alert.labels },
        annotations: Object.fromEntries(Object.entries(alert.annotations)
          .map(([key, value]) => [key, grafanaTemplate(value)])),
        isPaused: false,
      };
    }),
  }));
  return { apiVersion: 1, groups };
}

export function prometheusRule(rules) {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "portwatch-rules",
      namespace: "portwatch",
      labels: { "app.kubernetes.io/name": "portwatch-exporter", "app.kubernetes.io/part-of": "portwatch" },
    },
    spec: { groups: rules.groups },
  };
}

const render = (value, header) => header + YAML.stringify(value, { lineWidth: 0 });

export function generated() {
  const rules = readRules();
  return [
    [prometheusRuleFile, render(prometheusRule(rules), kHeader(
      "edit the rules file.\n# A Prometheus object selects PrometheusRules by label (kube-prometheus-stack: its `release`\n" +
      "# label): add it to metadata.labels in prometheusRule() of tests/alerts/sync.mjs."))],
    [grafanaFile, render(grafanaRules(rules), kHeader(
      "edit the rules file.\n# Grafana alerting provisioning file: copy to /etc/grafana/provisioning/alerting/ and set\n" +
      "# PORTWATCH_PROMETHEUS_DATASOURCE_UID in Grafana's environment to the UID of your Prometheus data source."))],
  ];
}

if (process.argv.includes("--write")) {
  for (const [file, text] of generated()) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(sourceDir, file)}`);
  }
} else if (process.argv.includes("--check")) {
  for (const [file, text] of generated()) {
    test(`${path.relative(sourceDir, file)} is generated from the rules file`, () => {
      assert.ok(fs.existsSync(file), `${file} is missing: run the alerts_regenerate target`);
      assert.equal(fs.readFileSync(file, "utf8"), text,
        "out of date: run `cmake --build BUILD --target alerts_regenerate`");
    });
  }
}
