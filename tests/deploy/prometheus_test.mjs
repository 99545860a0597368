// The Prometheus scrape examples under deploy/prometheus/ pass `promtool check config`.
// Debian's Prometheus is built without Kubernetes service discovery, so for
// kubernetes-scrape.yml promtool checks everything but the kubernetes_sd_configs block (replaced
// by a static target), and that block is checked here against Prometheus' field list, with the
// __meta_kubernetes_pod_* labels the relabelling reads.
//   node prometheus_test.mjs PROMTOOL
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "node:test";

import { readYaml, sourceDir, YAML } from "./lib.mjs";

const [promtool] = process.argv.slice(2);
assert.ok(promtool, "usage: prometheus_test.mjs PROMTOOL");
const dir = path.join(sourceDir, "deploy/prometheus");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "portwatch-prometheus-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));

// Prometheus' kubernetes_sd_config (v2.4x): its own fields and the HTTP client's.
const kSdFields = new Set(["api_server", "role", "kubeconfig_file", "namespaces", "selectors",
  "attach_metadata", "basic_auth", "authorization", "oauth2", "bearer_token", "bearer_token_file",
  "tls_config", "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header",
  "follow_redirects", "enable_http2"]);
const kRoles = new Set(["node", "service", "pod", "endpoints", "endpointslice", "ingress"]);
const kPodMeta = new Set(["namespace", "pod_name", "pod_ip", "pod_container_init",
  "pod_container_name", "pod_container_id", "pod_container_image", "pod_container_port_name",
  "pod_container_port_number", "pod_container_port_protocol", "pod_ready", "pod_phase",
  "pod_node_name", "pod_host_ip", "pod_uid", "pod_controller_kind", "pod_controller_name"]);
const kPodMetaPrefixes = ["pod_label_", "pod_labelpresent_", "pod_annotation_",
  "pod_annotationpresent_"];

function promtoolCheck(file) {
  const result = spawnSync(promtool, ["check", "config", file], { encoding: "utf8" });
  return { status: result.status, output: result.stdout + result.stderr };
}

/// Problems of a kubernetes_sd_configs job, and the job with a static target in its place.
function kubernetesSdProblems(job) {
  const problems = [];
  for (const sd of job.kubernetes_sd_configs) {
    for (const key of Object.keys(sd)) {
      if (!kSdFields.has(key)) problems.push(`unknown kubernetes_sd_configs field "${key}"`);
    }
    if (!kRoles.has(sd.role)) problems.push(`unknown role "${sd.role}"`);
    for (const key of Object.keys(sd.namespaces ?? {})) {
      if (!["names", "own_namespace"].includes(key)) problems.push(`unknown namespaces field "${key}"`);
    }
    for (const selector of sd.selectors ?? []) {
      for (const key of Object.keys(selector)) {
        if (!["role", "label", "field"].includes(key)) problems.push(`unknown selectors field "${key}"`);
      }
      if (!kRoles.has(selector.role)) problems.push(`unknown selector role "${selector.role}"`);
    }
    if (sd.role === "pod") {
      for (const relabel of job.relabel_configs ?? []) {
        for (const label of relabel.source_labels ?? []) {
          const meta = /^__meta_kubernetes_(.*)$/.exec(label)?.[1];
          if (meta !== undefined && !kPodMeta.has(meta) &&
              !kPodMetaPrefixes.some((prefix) => meta.startsWith(prefix))) {
            problems.push(`role pod has no label ${label}`);
          }
        }
      }
    }
  }
  const { kubernetes_sd_configs: _, ...rest } = job;
  return { problems, standIn: { ...rest, static_configs: [{ targets: ["node-1.invalid:9792"] }] } };
}

/// promtool's verdict and the Kubernetes SD problems for a config file's text.
function check(name, text) {
  const config = YAML.parse(text);
  const problems = [];
  for (const job of config.scrape_configs ?? []) {
    if (job.kubernetes_sd_configs) {
      const checked = kubernetesSdProblems(job);
      problems.push(...checked.problems);
      Object.keys(job).forEach((key) => delete job[key]);
      Object.assign(job, checked.standIn);
    }
  }
  const file = path.join(scratch, name);
  fs.writeFileSync(file, YAML.stringify(config));
  return { ...promtoolCheck(file), problems };
}

const examples = fs.readdirSync(dir).filter((name) => /-scrape\.ya?ml$/.test(name));

test("the scrape examples are there", () => {
  assert.deepEqual(examples.sort(), ["kubernetes-scrape.yml", "static-scrape.yml"]);
});

for (const name of examples) {
  test(`${name} passes promtool check config`, () => {
    const result = check(name, fs.readFileSync(path.join(dir, name), "utf8"));
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /SUCCESS/);
    assert.deepEqual(result.problems, []);
    assert.equal(readYaml(path.join(dir, name)).scrape_configs[0].job_name, "portwatch");
  });
}

// Deliberately broken copies: [file, text, replacement, what the failure must say].
const kBroken = [
  ["static-scrape.yml", "scrape_timeout: 10s", "scrape_timout: 10s", /field scrape_timout not found/],
  ["static-scrape.yml", "target_label: instance", "target_labels: instance", /field target_labels not found/],
  ["kubernetes-scrape.yml", "action: keep", "action: kep", /unknown relabel action "kep"/],
  ["kubernetes-scrape.yml", "        namespaces:", "        namespace:", /unknown kubernetes_sd_configs field "namespace"/],
  ["kubernetes-scrape.yml", "- role: pod", "- role: pods", /unknown role "pods"/],
  ["kubernetes-scrape.yml", "__meta_kubernetes_pod_node_name]", "__meta_kubernetes_node_name]",
    /role pod has no label __meta_kubernetes_node_name/],
];

for (const [name, text, replacement, failure] of kBroken) {
  test(`a copy of ${name} with "${replacement}" fails`, () => {
    const original = fs.readFileSync(path.join(dir, name), "utf8");
    assert.ok(original.includes(text), `${name} no longer contains "${text}": update this test`);
    const result = check(name, original.replace(text, replacement));
    assert.ok(result.status !== 0 || result.problems.length > 0, "accepted");
    assert.match(result.output + result.problems.join("\n"), failure);
  });
}
