// deploy/prometheus/portwatch.rules.yml policy: every alert has severity, summary, description, a
// `for:` and a runbook_url whose section exists in docs/runbooks.md; thresholds live in the
// portwatch:threshold:* recording rules (no other number in an alert's PromQL); every alert has a
// firing and a not-firing case in the promtool tests; the generated PrometheusRule and
// Grafana-managed rules are up to date, and the sync check does notice a changed threshold. With
// pods, the per-pod families (sync.mjs kPerPodFamilies: sockets, kernel limits, bind failures,
// services and listeners) also exist per pod: every rule selects the node's own (pod=""), or
// keeps each pod apart (matching and aggregating on namespace and pod) and names it.
//   node rules_test.mjs    (PORTWATCH_SOURCE_DIR, PORTWATCH_ALERTS_NODE_DIR)
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";

import { allRules, generated, grafanaRules, inlineRecordingRules, kGrafanaAlerts, perPodSelectors,
  readRules, thresholds } from "./sync.mjs";

const sourceDir = process.env.PORTWATCH_SOURCE_DIR;
const rules = readRules();
const alerts = allRules(rules).filter((rule) => rule.alert);
const runbooks = fs.readFileSync(path.join(sourceDir, "docs/runbooks.md"), "utf8");
const kRunbookBase = "https://github.com/portwatch/portwatch/blob/main/docs/runbooks.md#";

test("the rules file has the alerts of issues 6 and 12", () => {
  assert.deepEqual(alerts.map((a) => a.alert).sort(), [
    "PortwatchBindEventsUnavailable", "PortwatchBindFailures", "PortwatchCollectorFailing", "PortwatchConfigReloadFailed",
    "PortwatchEphemeralPortsExhaustionApproaching", "PortwatchExporterAbsent",
    "PortwatchExporterDown", "PortwatchListenQueueOverflow",
    "PortwatchPodEphemeralPortsExhaustionApproaching", "PortwatchPodSeriesFolded",
    "PortwatchPodTimeWaitNearBucketLimit", "PortwatchPodsUnreadable",
    "PortwatchScrapeLabelsClash", "PortwatchServiceDown",
    "PortwatchServiceDuplicateInstances", "PortwatchServicePortHeldByOtherProcess",
    "PortwatchServicePortInEphemeralRange", "PortwatchServiceRestartBlocked",
    "PortwatchTimeWaitBucketOverflow", "PortwatchTimeWaitGrowthOnPort",
    "PortwatchTimeWaitGrowthToPeerPort", "PortwatchTimeWaitNearBucketLimit"]);
});

for (const alert of alerts) {
  test(`${alert.alert}: severity, summary, description, for, runbook section`, () => {
    assert.match(alert.labels?.severity ?? "", /^(critical|warning|info)$/);
    for (const key of ["summary", "description", "runbook_url"]) {
      assert.ok(alert.annotations?.[key], `no ${key}`);
    }
    assert.match(alert.for ?? "", /^\d+[smh]$/, "a `for:` against flapping");
    assert.equal(alert.annotations.runbook_url, kRunbookBase + alert.alert.toLowerCase());
    assert.match(runbooks, new RegExp(`^## ${alert.alert}$`, "m"),
      `docs/runbooks.md has no "## ${alert.alert}" section`);
    const section = runbooks.split(/^## /m).find((s) => s.startsWith(`${alert.alert}\n`));
    assert.match(section, /portwatch_exporter diagnose|--config\.check|curl/,
      "the runbook gives a diagnosis command");
    assert.match(section, /^### Fix/m, "the runbook gives the fixes");
  });

  test(`${alert.alert}: no number buried in the PromQL`, () => {
    const stripped = alert.expr
      .replace(/"[^"]*"/g, '""')        // label values
      .replace(/\[[^\]]*\]/g, "[]");    // range selectors
    const numbers = [...stripped.matchAll(/(?<![\w:.])(\d+(?:\.\d+)?)(?![\w:.])/g)].map((m) => m[1]);
    assert.deepEqual(numbers.filter((n) => n !== "0" && n !== "1"), [],
      "compare against a portwatch:threshold:* recording rule (scalar(...)) instead");
  });
}

// The rules that keep each pod apart (namespace and pod): "both" the node's series and every
// pod's (no pod matcher), or the "pods" alone (pod!=""). Every other rule using a per-pod family
// is about the node (pod=""). An alert built on a per-pod rule is per pod too.
const kPerPodRules = {
  "portwatch:port_time_wait_sockets:delta30m": "both",
  "portwatch:peer_port_time_wait_sockets:delta30m": "both",
  "portwatch:bind_failures:increase5m": "both",
  "portwatch:pod_time_wait_sockets:sum": "pods",
  "portwatch:pod_time_wait_sockets:ratio_max_tw_buckets": "pods",
  "portwatch:pod_ephemeral_destination_sockets:ratio_available": "pods",
  PortwatchServiceRestartBlocked: "both",
  PortwatchServicePortHeldByOtherProcess: "both",
  PortwatchServiceDuplicateInstances: "both",
  PortwatchServiceDown: "both",
  PortwatchServicePortInEphemeralRange: "both",
};
// An alert's pod, when it has one, in its summary and description.
const kNamesPodIfAny = /\{\{ with \$labels\.pod \}\}[\s\S]*\{\{ end \}\}/;
const kNamesPod = /\$labels\.pod\b/;

/// Problems of one rule with the per-pod families: [] when it keeps to its kind.
function perPodProblems(name, expr, kind) {
  const problems = [];
  for (const { name: family, matchers } of perPodSelectors(expr)) {
    if (kind === "both" && /\bpod\s*!?=~?/.test(matchers)) {
      problems.push(`${family}${matchers} must keep the node and every pod`);
    } else if (kind === "pods" && !/\bpod\s*!=\s*""/.test(matchers)) {
      problems.push(`${family}${matchers} must select the pods alone (pod!="")`);
    } else if (kind === "node" && !/\bpod\s*=\s*""/.test(matchers)) {
      problems.push(`${family}${matchers} adds pods' sockets to the node's: select pod=""`);
    }
  }
  if (kind !== "node") {
    // `sum without (...)` and `ignoring (...)` keep namespace and pod unless they list them;
    // `by (...)` and `on (...)` need both, or two pods meet in one group (or one match group: an
    // error for the whole rule once a second pod has the series).
    for (const [, how, labels] of expr.matchAll(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
      const list = labels.split(",").map((l) => l.trim());
      const keeps = ["without", "ignoring"].includes(how)
        ? !list.includes("namespace") && !list.includes("pod")
        : list.includes("namespace") && list.includes("pod");
      if (!keeps) problems.push(`${how} (${labels}) merges pods`);
    }
  }
  return problems;
}

test("pods: node rules select pod=\"\", per-pod rules keep namespace and pod apart", () => {
  const kinds = {};
  for (const rule of allRules(rules)) {
    const name = rule.record ?? rule.alert;
    const builtOn = Object.keys(kPerPodRules).filter((r) => r.includes(":") &&
      new RegExp(`(?<![\\w:])${r}(?![\\w:])`).test(rule.expr));
    kinds[name] = kPerPodRules[name] ?? (builtOn.length ? kPerPodRules[builtOn[0]] : "node");
    assert.deepEqual(perPodProblems(name, rule.expr, kinds[name]), [], name);
  }
  for (const alert of alerts.filter((a) => kinds[a.alert] !== "node")) {
    for (const key of ["summary", "description"]) {
      assert.match(alert.annotations[key], kinds[alert.alert] === "both" ? kNamesPodIfAny : kNamesPod,
        `${alert.alert}: the ${key} names the pod${kinds[alert.alert] === "both" ? " when there is one" : ""}`);
    }
  }
  // Each kind is in use, and every listed rule exists.
  assert.deepEqual(new Set(Object.values(kinds)), new Set(["node", "both", "pods"]));
  for (const name of Object.keys(kPerPodRules)) assert.ok(name in kinds, `${name} is not a rule`);
});

test("the pods check notices a merged pod, a node rule with pods, a per-pod rule without", () => {
  assert.deepEqual(perPodProblems("x", 'sum by (job, instance) (portwatch_sockets{pod!=""})', "pods"),
    ["by (job, instance) merges pods"]);
  assert.deepEqual(perPodProblems("x", "portwatch_service_up * on (job, instance, service) portwatch_service_info", "both"),
    ["on (job, instance, service) merges pods"]);
  assert.deepEqual(perPodProblems("x", 'portwatch_sockets{pod=""}', "both"),
    ['portwatch_sockets{pod=""} must keep the node and every pod']);
  assert.deepEqual(perPodProblems("x", "portwatch_tcp_max_tw_buckets", "pods"),
    ['portwatch_tcp_max_tw_buckets must select the pods alone (pod!="")']);
  assert.deepEqual(perPodProblems("x", "portwatch_tcp_max_tw_buckets", "node"),
    ["portwatch_tcp_max_tw_buckets adds pods' sockets to the node's: select pod=\"\""]);
  assert.deepEqual(perPodProblems("x", 'sum without (pod) (portwatch_bind_failures_total)', "both"),
    ["without (pod) merges pods"]);
  assert.deepEqual(perPodProblems("x",
    'portwatch_service_up * on (job, instance, namespace, pod, service) group_left (port) portwatch_service_info', "both"), []);
});

test("the pods check notices a node rule that adds pods' sockets", () => {
  assert.deepEqual(perPodSelectors('sum(portwatch_sockets{state="time_wait"}) / portwatch_tcp_max_tw_buckets'),
    [{ name: "portwatch_sockets", matchers: '{state="time_wait"}' },
      { name: "portwatch_tcp_max_tw_buckets", matchers: "" }]);
  assert.deepEqual(perPodSelectors("portwatch_peer_sockets + portwatch:sockets:x + portwatch_sockets_other"),
    [{ name: "portwatch_peer_sockets", matchers: "" }]);
});

test("every threshold is used by an alert", () => {
  for (const name of Object.keys(thresholds(rules))) {
    assert.ok(alerts.some((a) => a.expr.includes(`scalar(${name})`)), `${name} is unused`);
  }
});

test("every alert has a firing and a not-firing promtool case", async () => {
  const text = fs.readFileSync(path.join(sourceDir, "deploy/prometheus/tests/portwatch.rules.test.yml"), "utf8");
  const { createRequire } = await import("node:module");
  const parse = createRequire(path.join(process.env.PORTWATCH_ALERTS_NODE_DIR, "package.json"))("yaml").parse;
  const cases = parse(text).tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const { alert } of alerts) {
    const mine = cases.filter((c) => c.alertname === alert);
    const firing = mine.filter((c) => (c.exp_alerts ?? []).length > 0);
    assert.ok(firing.length > 0, `${alert}: no case where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert}: no case where it must not fire`);
    for (const c of firing) {
      for (const expected of c.exp_alerts) {
        assert.ok(expected.exp_labels?.severity, `${alert}: firing case without expected labels`);
        assert.deepEqual(Object.keys(expected.exp_annotations ?? {}).sort(),
          ["description", "runbook_url", "summary"], `${alert}: firing case must expect every annotation`);
      }
    }
  }
});

for (const [file, text] of generated()) {
  test(`${path.relative(sourceDir, file)} is generated from the rules file`, () => {
    assert.ok(fs.existsSync(file), `${file} is missing: build the alerts_regenerate target`);
    assert.equal(fs.readFileSync(file, "utf8"), text,
      "out of date: build the alerts_regenerate target (cmake --build BUILD --target alerts_regenerate)");
  });
}

test("Grafana rules carry the Prometheus thresholds, fully inlined queries, same for/labels", () => {
  const grafana = grafanaRules(rules);
  assert.deepEqual(grafana.groups.map((g) => g.name), Object.keys(kGrafanaAlerts));
  const uids = grafana.groups.flatMap((g) => g.rules.map((r) => r.uid));
  assert.equal(new Set(uids).size, uids.length, `Grafana rule uids must be unique: ${uids}`);
  const byName = Object.fromEntries(alerts.map((a) => [a.alert, a]));
  const values = thresholds(rules);
  for (const rule of grafana.groups.flatMap((g) => g.rules)) {
    const alert = byName[rule.title];
    const name = /scalar\((portwatch:threshold:[a-z0-9_]+)\)/.exec(alert.expr)?.[1];
    const threshold = name ? values[name] : Number(/>\s*([01])\s*$/.exec(alert.expr)[1]);
    assert.deepEqual(rule.data[1].model.conditions[0].evaluator, { type: "gt", params: [threshold] });
    assert.doesNotMatch(rule.data[0].model.expr, /portwatch:/, "recording rules inlined");
    assert.equal(rule.for, alert.for);
    assert.deepEqual(rule.labels, alert.labels);
    assert.equal(rule.annotations.runbook_url, alert.annotations.runbook_url);
    assert.doesNotMatch(JSON.stringify(rule.annotations), /\$value\b/, "Grafana has $values.A.Value");
    assert.doesNotMatch(JSON.stringify(rule.annotations), /\|\s*query\b/,
      "Grafana's annotation templates have no query function");
  }
});

test("the sync check notices a changed threshold and an unknown recording rule", () => {
  const copy = structuredClone(rules);
  const rule = allRules(copy).find((r) => r.record === "portwatch:threshold:time_wait_bucket_ratio");
  rule.expr = "vector(0.9)";
  const before = JSON.stringify(grafanaRules(rules));
  const after = JSON.stringify(grafanaRules(copy));
  assert.notEqual(before, after);
  assert.match(after, /"params":\[0\.9\]/);
  assert.throws(() => inlineRecordingRules("portwatch:no_such:rule > 0", rules), /not a recording rule/);
  assert.throws(() => inlineRecordingRules("delta(portwatch:time_wait_sockets:sum[5m])", rules),
    /range selector/);
});
