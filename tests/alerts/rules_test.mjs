// deploy/prometheus/portwatch.rules.yml policy: every alert has severity, summary, description, a
// `for:` and a runbook_url whose section exists in docs/runbooks.md; thresholds live in the
// portwatch:threshold:* recording rules (no other number in an alert's PromQL); every alert has a
// firing and a not-firing case in the promtool tests; the generated PrometheusRule and
// Grafana-managed rules are up to date, and the sync check does notice a changed threshold. With
// pods, the sockets collector's series also exist per pod: every rule selects the node's own
// (pod="") or keeps each pod apart and names it.
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

test("the rules file has the alerts of issue 6", () => {
  assert.deepEqual(alerts.map((a) => a.alert).sort(), [
    "PortwatchBindEventsUnavailable", "PortwatchBindFailures", "PortwatchCollectorFailing", "PortwatchConfigReloadFailed",
    "PortwatchEphemeralPortsExhaustionApproaching", "PortwatchExporterAbsent",
    "PortwatchExporterDown", "PortwatchListenQueueOverflow", "PortwatchPodsUnreadable",
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

// The rules that keep each pod apart (namespace and pod), and the alerts built on them.
const kPerPodRules = ["portwatch:port_time_wait_sockets:delta30m",
  "portwatch:peer_port_time_wait_sockets:delta30m"];
const kPerPodAlerts = ["PortwatchTimeWaitGrowthOnPort", "PortwatchTimeWaitGrowthToPeerPort"];

test("pods: node rules select pod=\"\", per-pod rules keep namespace and pod", () => {
  for (const rule of allRules(rules)) {
    const name = rule.record ?? rule.alert;
    const perPod = kPerPodRules.includes(name);
    for (const { name: family, matchers } of perPodSelectors(rule.expr)) {
      if (perPod) {
        assert.doesNotMatch(matchers, /\bpod\s*=/, `${name}: ${family} must keep every pod`);
      } else {
        assert.match(matchers, /\bpod\s*=\s*""/,
          `${name}: ${family}${matchers} adds pods' sockets to the node's: select pod=""`);
      }
    }
    if (perPod) {
      // `sum without (...)` keeps namespace and pod unless it lists them; `by (...)` needs both.
      for (const [, how, labels] of rule.expr.matchAll(/\b(by|without)\s*\(([^)]*)\)/g)) {
        const list = labels.split(",").map((l) => l.trim());
        if (how === "without") {
          assert.ok(!list.includes("namespace") && !list.includes("pod"), `${name}: drops the pod`);
        } else {
          assert.ok(list.includes("namespace") && list.includes("pod"), `${name}: by (${labels}) merges pods`);
        }
      }
    }
  }
  const byName = Object.fromEntries(alerts.map((a) => [a.alert, a]));
  for (const name of kPerPodAlerts) {
    assert.ok(kPerPodRules.some((r) => byName[name].expr.includes(r)), `${name} is not per pod`);
    for (const key of ["summary", "description"]) {
      assert.match(byName[name].annotations[key], /\{\{ with \$labels\.pod \}\}[\s\S]*\{\{ end \}\}/,
        `${name}: the ${key} names the pod when there is one`);
    }
  }
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
