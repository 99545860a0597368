// dashboards/*.json are importable Grafana dashboards: typed against Grafana's published schema
// (@grafana/schema's Dashboard, and each panel's options and field config with its panel plugin's
// types) by the TypeScript compiler in strict mode, with excess-property checks that reject unknown
// fields; Prometheus targets against the fields Grafana's Prometheus query editor saves. Then
// structure: unique ids, grid inside 24 columns without overlaps, the datasource/job/instance/
// namespace/pod (services: and service) variables used by every query, units and legends, alert
// annotations, the panels each dashboard must have. With pods, the per-pod families (sync.mjs
// kPerPodFamilies: sockets, kernel limits, bind failures, services, listeners) also exist per
// pod: every query of them selects the node's own (pod="") or the pods of $namespace and $pod, and
// then aggregates and matches on namespace and pod. A misspelled copy of each dashboard must fail.
//   node dashboards_test.mjs    (PORTWATCH_SOURCE_DIR, PORTWATCH_ALERTS_NODE_DIR)
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import test from "node:test";

import { perPodSelectors } from "./sync.mjs";

const sourceDir = process.env.PORTWATCH_SOURCE_DIR;
const nodeDir = process.env.PORTWATCH_ALERTS_NODE_DIR;
assert.ok(sourceDir && nodeDir, "PORTWATCH_SOURCE_DIR and PORTWATCH_ALERTS_NODE_DIR must be set");
const ts = createRequire(path.join(nodeDir, "package.json"))("typescript");
const dashboardsDir = path.join(sourceDir, "dashboards");
const files = fs.readdirSync(dashboardsDir).filter((name) => name.endsWith(".json")).sort();

const kPanelTypes = {
  timeseries: "TimeSeriesPanelCfg", stat: "StatPanelCfg", table: "TablePanelCfg",
  "state-timeline": "StateTimelinePanelCfg",
};
const panelModule = (cfg) => {
  const dir = cfg.replace(/PanelCfg$/, "").toLowerCase();
  return `@grafana/schema/dist/esm/raw/composable/${dir}/panelcfg/x/${cfg}_types.gen`;
};

// JSON carries enum values as plain strings and numbers: J<T> turns the schema's enums into their
// literal values and keeps every object's exact keys (excess-property checks still apply).
const kPrelude = `
import type { Dashboard, Panel } from "@grafana/schema";
${Object.values(kPanelTypes).map((cfg) => `import type * as ${cfg} from "${panelModule(cfg)}";`).join("\n")}
type J<T> = T extends string ? \`\${T}\` : T extends number ? number : T extends boolean ? boolean
  : T extends Array<infer U> ? Array<J<U>> : T extends object ? { [K in keyof T]: J<T[K]> } : T;
type PrometheusTarget = {
  refId: string; expr: string; legendFormat?: string; instant?: boolean; range?: boolean;
  format?: "time_series" | "table" | "heatmap"; interval?: string; hide?: boolean;
  exemplar?: boolean; editorMode?: "code" | "builder";
  datasource: { type: "prometheus"; uid: string };
};
type Typed<O, F> = Omit<J<Panel>, "options" | "fieldConfig" | "targets" | "type"> & {
  options: J<O>; targets: PrometheusTarget[];
  fieldConfig: {
    // The panel plugin's own field config, without the open index signature of the generic one.
    defaults: Omit<J<NonNullable<Panel["fieldConfig"]>["defaults"]>, "custom"> & { custom?: J<F> };
    overrides: J<NonNullable<Panel["fieldConfig"]>["overrides"]>;
  };
};
// The schema leaves a data source's annotation fields open (AnnotationQuery<TQuery>): these are
// the ones Grafana's Prometheus annotation support reads.
type PrometheusAnnotation = Omit<J<NonNullable<NonNullable<Dashboard["annotations"]>["list"]>[number]>, "target"> & {
  target?: { refId: string; expr: string; interval?: string };
  titleFormat?: string; textFormat?: string; tagKeys?: string; useValueForTime?: boolean;
};
type TopLevel = Omit<J<Dashboard>, "panels" | "annotations"> & {
  panels: unknown[]; annotations: { list: PrometheusAnnotation[] };
};
`;

function typedSource(dashboard) {
  const lines = [kPrelude];
  const { panels, ...top } = dashboard;
  lines.push(`export const dashboard: TopLevel = ${JSON.stringify({ ...top, panels: [] }, null, 1)};`);
  panels.forEach((panel, i) => {
    const cfg = kPanelTypes[panel.type];
    const { type, ...rest } = panel;
    const typeName = cfg
      ? `Typed<${cfg}.Options, ${cfg === "StatPanelCfg" ? "{}" : `${cfg}.FieldConfig`}> & { type: "${type}" }`
      : "never";
    lines.push(`// panel ${i}: ${JSON.stringify(panel.title)}`);
    lines.push(`export const panel${i}: ${typeName} = ${JSON.stringify({ type, ...rest }, null, 1)};`);
  });
  return lines.join("\n") + "\n";
}

/// TypeScript's errors for the dashboard, "panel N: message" each.
function typeErrors(dashboard, name) {
  const file = path.join(nodeDir, `dashboard-check-${process.pid}-${name}.ts`);
  const text = typedSource(dashboard);
  fs.writeFileSync(file, text);
  try {
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: true, types: [], noUncheckedIndexedAccess: true,
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2020,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const owner = text.split("\n").slice(0, line + 1).reverse().find((l) => l.startsWith("// panel "));
      return `${owner ?? "dashboard"}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n").slice(0, 3).join(" / ")}`;
    });
  } finally {
    fs.rmSync(file, { force: true });
  }
}

const allPanels = (dashboard) => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

// Panels a dashboard must keep (issue 12: per-pod panels against each pod's own limits).
const kRequiredPanels = {
  "portwatch-overview.json": ["TIME_WAIT by pod and local port (top 10)", "TIME_WAIT by pod and peer port (top 10)",
    "Pods closest to ephemeral port exhaustion (top 10)", "TIME_WAIT by pod vs its tcp_max_tw_buckets",
    "Bind failures by port and process", "Bind failures by pod", "Pod series and folded series"],
  "portwatch-services.json": ["Services", "Owners and holders of service ports", "Listeners (netstat -tulpn)"],
};

function structureProblems(dashboard, name) {
  const problems = [];
  const problem = (text) => problems.push(`${name}: ${text}`);
  const variables = dashboard.templating.list.map((v) => v.name);
  const services = name.includes("services");
  const wanted = ["datasource", "job", "instance", "namespace", "pod", ...(services ? ["service"] : [])];
  if (JSON.stringify(variables) !== JSON.stringify(wanted)) problem(`variables ${variables}, want ${wanted}`);
  const ds = dashboard.templating.list.find((v) => v.name === "datasource");
  if (ds?.type !== "datasource" || ds?.query !== "prometheus") problem("datasource variable is not a Prometheus data source picker");
  // namespace: every pod's (a pod the kubelet's log directory does not name has none: All is .*);
  // pod: on the overview All is .+, which leaves the node's own series (pod="") out of the pod
  // panels; on the services view .*, which keeps the node's services and listeners. service: of
  // the pods picked.
  for (const [variable, allValue, query] of [
    ["namespace", ".*", /^label_values\(portwatch_sockets\{job=~"\$job", instance=~"\$instance", pod!=""\}, namespace\)$/],
    ["pod", services ? ".*" : ".+", /^label_values\(portwatch_sockets\{job=~"\$job", instance=~"\$instance", namespace=~"\$namespace", pod!=""\}, pod\)$/],
    ["service", ".+", /^label_values\(portwatch_service_info\{job=~"\$job", instance=~"\$instance", namespace=~"\$namespace", pod=~"\$pod"\}, service\)$/]]) {
    const v = dashboard.templating.list.find((x) => x.name === variable);
    if (v && (v.type !== "query" || !v.multi || !v.includeAll || v.allValue !== allValue || !query.test(v.query?.query ?? ""))) {
      problem(`variable ${variable}: a multi-value query variable with All = ${allValue} from ${query}`);
    }
  }
  for (const title of kRequiredPanels[name] ?? []) {
    if (!allPanels(dashboard).some((p) => p.title === title)) problem(`no panel "${title}"`);
  }
  if (!dashboard.uid || !/^[a-z0-9-]{1,40}$/.test(dashboard.uid)) problem(`uid "${dashboard.uid}"`);
  const alerts = dashboard.annotations?.list?.find((a) => /ALERTS\{/.test(a.target?.expr ?? ""));
  if (!alerts || alerts.datasource?.uid !== "${datasource}") problem("no alert annotation on ${datasource}");
  const ids = new Set();
  const cells = new Set();
  for (const panel of allPanels(dashboard)) {
    const where = `panel "${panel.title}"`;
    if (ids.has(panel.id)) problem(`${where}: duplicate id ${panel.id}`);
    ids.add(panel.id);
    if (!panel.description) problem(`${where}: no description`);
    const { x, y, w, h } = panel.gridPos;
    if (x < 0 || w < 1 || x + w > 24 || h < 1) problem(`${where}: gridPos outside 24 columns`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        if (cells.has(`${i},${j}`)) problem(`${where}: overlaps another panel at ${i},${j}`);
        cells.add(`${i},${j}`);
      }
    }
    if (panel.datasource?.uid !== "${datasource}") problem(`${where}: datasource is not \${datasource}`);
    if (!panel.targets?.length) problem(`${where}: no query`);
    const refIds = new Set();
    for (const target of panel.targets ?? []) {
      if (refIds.has(target.refId)) problem(`${where}: duplicate refId ${target.refId}`);
      refIds.add(target.refId);
      for (const variable of ["job", "instance"]) {
        if (!target.expr.includes(`${variable}=~"$${variable}"`)) problem(`${where} ${target.refId}: ignores $${variable}`);
      }
      if (name.includes("services") && /portwatch_service_/.test(target.expr) && !target.expr.includes('service=~"$service"')) {
        problem(`${where} ${target.refId}: ignores $service`);
      }
      const podSelector = (matchers) => matchers.includes('namespace=~"$namespace"') && matchers.includes('pod=~"$pod"');
      for (const { name: family, matchers } of perPodSelectors(target.expr)) {
        if (!/\bpod=""/.test(matchers) && !podSelector(matchers)) {
          problem(`${where} ${target.refId}: ${family} adds pods' sockets to the node's: select pod="" or namespace=~"$namespace", pod=~"$pod"`);
        }
      }
      // A query of pods aggregates and matches per pod: every by (...) and on (...) keeps
      // namespace and pod (without/ignoring never drop them), else two pods add up, or two pods'
      // series meet in one match group (an error for the whole query).
      if (target.expr.includes('pod=~"$pod"')) {
        for (const [, how, labels] of target.expr.matchAll(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
          const list = labels.split(",").map((l) => l.trim());
          const keeps = ["without", "ignoring"].includes(how)
            ? !list.includes("namespace") && !list.includes("pod")
            : list.includes("namespace") && list.includes("pod");
          if (!keeps) problem(`${where} ${target.refId}: ${how} (${labels}) merges pods`);
        }
      }
      for (const [, matchers] of target.expr.matchAll(/portwatch_pod_sockets_age_seconds(\{[^}]*\})?/g)) {
        if (!podSelector(matchers ?? "")) problem(`${where} ${target.refId}: ignores $namespace or $pod`);
      }
      if (panel.type === "timeseries" || panel.type === "state-timeline") {
        if (!target.legendFormat || target.legendFormat === "__auto") problem(`${where} ${target.refId}: no legend`);
      }
      if (panel.type === "table" && (!target.instant || target.format !== "table")) problem(`${where}: table query must be an instant table`);
    }
    if (["timeseries", "stat"].includes(panel.type) && !panel.fieldConfig?.defaults?.unit) problem(`${where}: no unit`);
    if (panel.type === "timeseries" && panel.options?.legend?.showLegend !== true) problem(`${where}: legend hidden`);
  }
  return problems;
}

for (const name of files) {
  const dashboard = JSON.parse(fs.readFileSync(path.join(dashboardsDir, name), "utf8"));
  test(`${name} matches Grafana's dashboard schema (tsc, strict)`, () => {
    assert.deepEqual(typeErrors(dashboard, name), []);
  });
  test(`${name}: structure, variables, units, legends, alert annotations`, () => {
    assert.deepEqual(structureProblems(dashboard, name), []);
    assert.ok(allPanels(dashboard).length >= 8, "a real dashboard");
  });
}

test("the dashboards are the overview and the services view", () => {
  assert.deepEqual(files, ["portwatch-overview.json", "portwatch-services.json"]);
});

// Deliberately broken copies: [edit, what the check must say].
const kBroken = [
  [(d) => { d.panels[0].gridPoss = d.panels[0].gridPos; }, /gridPoss/],
  [(d) => { d.panels.find((p) => p.type === "timeseries").options.legend.displayMode = "tabel"; }, /"tabel"/],
  [(d) => { d.panels.find((p) => p.type === "timeseries").targets[0].legendFromat = "x"; }, /legendFromat/],
  [(d) => { d.panels.find((p) => p.type === "table").fieldConfig.defaults.custom.allign = "auto"; }, /allign/],
  [(d) => { d.refresh = 30; }, /number.*not assignable|not assignable.*number/],
  [(d) => { d.templating.list[0].type = "datasourse"; }, /datasourse/],
];
for (const [index, [edit, failure]] of kBroken.entries()) {
  test(`a broken copy of portwatch-overview.json (${failure}) fails the schema check`, () => {
    const copy = JSON.parse(fs.readFileSync(path.join(dashboardsDir, "portwatch-overview.json"), "utf8"));
    edit(copy);
    const errors = typeErrors(copy, `broken-${index}`);
    assert.ok(errors.length > 0, "accepted");
    assert.match(errors.join("\n"), failure);
  });
}

test("a copy with a panel ignoring $instance and an overlapping panel fails the structure check", () => {
  const copy = JSON.parse(fs.readFileSync(path.join(dashboardsDir, "portwatch-overview.json"), "utf8"));
  copy.panels[1].targets[0].expr = "sum(portwatch_sockets)";
  copy.panels[2].gridPos = { ...copy.panels[1].gridPos };
  const problems = structureProblems(copy, "portwatch-overview.json").join("\n");
  assert.match(problems, /ignores \$instance/);
  assert.match(problems, /overlaps/);
  assert.match(problems, /portwatch_sockets adds pods' sockets to the node's/);
});

test("a copy whose per-pod panel ignores $pod, or whose pod variable keeps the node, fails", () => {
  const copy = JSON.parse(fs.readFileSync(path.join(dashboardsDir, "portwatch-overview.json"), "utf8"));
  const perPod = copy.panels.find((p) => p.targets.some((t) => t.expr.includes('pod=~"$pod"')));
  perPod.targets[0].expr = perPod.targets[0].expr.replace(', pod=~"$pod"', "");
  copy.templating.list.find((v) => v.name === "pod").allValue = ".*";
  const problems = structureProblems(copy, "portwatch-overview.json").join("\n");
  assert.ok(problems.includes(`panel "${perPod.title}" A: portwatch_`) && problems.includes("adds pods' sockets"), problems);
  assert.match(problems, /variable pod: /);
});

test("a copy that divides pods by one pod's limit, or lost a pod panel, fails", () => {
  const copy = JSON.parse(fs.readFileSync(path.join(dashboardsDir, "portwatch-overview.json"), "utf8"));
  const ratio = copy.panels.find((p) => p.title === "TIME_WAIT by pod vs its tcp_max_tw_buckets");
  ratio.targets[0].expr = ratio.targets[0].expr.replaceAll("(job, instance, namespace, pod)", "(job, instance)");
  copy.panels = copy.panels.filter((p) => p.title !== "Bind failures by pod");
  const problems = structureProblems(copy, "portwatch-overview.json").join("\n");
  assert.match(problems, /TIME_WAIT by pod vs its tcp_max_tw_buckets" A: by \(job, instance\) merges pods/);
  assert.match(problems, /TIME_WAIT by pod vs its tcp_max_tw_buckets" A: on \(job, instance\) merges pods/);
  assert.match(problems, /no panel "Bind failures by pod"/);
});

test("a services copy whose join ignores the pod, or whose pod variable drops the node's services, fails", () => {
  const copy = JSON.parse(fs.readFileSync(path.join(dashboardsDir, "portwatch-services.json"), "utf8"));
  const owners = copy.panels.find((p) => p.title === "Owners and holders of service ports");
  owners.targets[0].expr = owners.targets[0].expr.replace("on (job, instance, namespace, pod, port, protocol)", "on (job, instance, port, protocol)");
  const listeners = copy.panels.find((p) => p.title === "Listeners (netstat -tulpn)");
  listeners.targets[0].expr = 'portwatch_listener_info{job=~"$job", instance=~"$instance"}';
  copy.templating.list.find((v) => v.name === "pod").allValue = ".+";
  const problems = structureProblems(copy, "portwatch-services.json").join("\n");
  assert.match(problems, /Owners and holders of service ports" A: on \(job, instance, port, protocol\) merges pods/);
  assert.match(problems, /Listeners \(netstat -tulpn\)" A: portwatch_listener_info adds pods' sockets/);
  assert.match(problems, /variable pod: .*All = \.\*/);
});
