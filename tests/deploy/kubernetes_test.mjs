// deploy/kubernetes validates offline: every kustomization lists its manifests, every object
// matches the Kubernetes API schema (kubernetes-models) and has no unknown field (strict check),
// and the strict check does catch misspelled fields that the schema lets through.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "node:test";

import { buildKustomization, kubernetesDir, readDocuments, readYaml, relative, schemaErrors,
  strictErrors } from "./lib.mjs";

const kustomizationDirs = () => {
  const dirs = [];
  const visit = (dir) => {
    if (fs.existsSync(path.join(dir, "kustomization.yaml"))) {
      dirs.push(dir);
    }
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        visit(path.join(dir, entry.name));
      }
    }
  };
  visit(kubernetesDir);
  return dirs;
};

test("every manifest is listed by its directory's kustomization", () => {
  const dirs = kustomizationDirs();
  assert.ok(dirs.length >= 3, `kustomizations: ${dirs.map(relative)}`);
  for (const dir of dirs) {
    const listed = new Set(readYaml(path.join(dir, "kustomization.yaml")).resources ?? []);
    for (const name of fs.readdirSync(dir)) {
      if (/\.ya?ml$/.test(name) && name !== "kustomization.yaml") {
        assert.ok(listed.has(name), `${relative(path.join(dir, name))} is not in its kustomization`);
      }
    }
  }
});

for (const dir of kustomizationDirs()) {
  test(`${relative(dir)}: objects match the Kubernetes API schema, no unknown field`, () => {
    const documents = buildKustomization(dir);
    assert.ok(documents.length > 0);
    assert.deepEqual(schemaErrors(documents), []);
    assert.deepEqual(strictErrors(documents), []);
  });
}

test("the overlays build the expected objects", () => {
  const names = (dir) => buildKustomization(path.join(kubernetesDir, dir))
    .map(({ value }) => `${value.kind}/${value.metadata.namespace ?? ""}/${value.metadata.name}`)
    .sort();
  const exporter = ["ConfigMap/portwatch/portwatch-config", "DaemonSet/portwatch/portwatch-exporter",
    "Namespace//portwatch", "Service/portwatch/portwatch-exporter",
    "ServiceAccount/portwatch/portwatch-exporter"];
  assert.deepEqual(names("."), exporter);
  assert.deepEqual(names("exporter"), exporter);
  assert.deepEqual(names("prometheus-operator"),
    [...exporter, "PrometheusRule/portwatch/portwatch-rules",
      "ServiceMonitor/portwatch/portwatch-exporter"].sort());
});

// Deliberately misspelled copies: [file, text, misspelling, field the error must name].
const kMisspellings = [
  ["exporter/daemonset.yaml", "hostNetwork: true", "hostNetwrok: true", "hostNetwrok"],
  ["exporter/daemonset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true",
    "readOnlyRootFilesytem"],
  ["exporter/daemonset.yaml", "maxSurge: 0", "maxSurgee: 0", "maxSurgee"],
  ["exporter/daemonset.yaml", "      tolerations:", "      toleration:", "toleration"],
  ["exporter/daemonset.yaml", "timeoutSeconds: 5", "timeoutSecond: 5", "timeoutSecond"],
  ["exporter/service.yaml", "clusterIP: None", "clusterIp: None", "clusterIp"],
  ["exporter/configmap.yaml", "\ndata:", "\ndatas:", "datas"],
  ["exporter/serviceaccount.yaml", "automountServiceAccountToken: false",
    "automountServiceAcountToken: false", "automountServiceAcountToken"],
  ["exporter/namespace.yaml", "  labels:", "  label:", "label"],
  ["prometheus-operator/servicemonitor.yaml", "interval: 30s", "intervall: 30s", "intervall"],
  ["prometheus-operator/servicemonitor.yaml", "targetLabel: node", "targetLabels: node",
    "targetLabels"],
];

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "portwatch-misspelled-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));

for (const [file, text, misspelling, field] of kMisspellings) {
  test(`strict check rejects a copy of ${file} with ${field}`, () => {
    const original = fs.readFileSync(path.join(kubernetesDir, file), "utf8");
    assert.ok(original.includes(text), `${file} no longer contains "${text}": update this test`);
    const copy = path.join(scratch, path.basename(file));
    fs.writeFileSync(copy, original.replace(text, misspelling));
    const documents = readDocuments(copy);
    // The schema alone lets unknown fields through...
    assert.deepEqual(schemaErrors(documents), []);
    // ...the strict check names them.
    const errors = strictErrors(documents);
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], new RegExp(`\\.?${field}: unknown field "${field}"`));
  });
}

test("schema check rejects a copy with a wrongly typed value", () => {
  const original = fs.readFileSync(path.join(kubernetesDir, "exporter/daemonset.yaml"), "utf8");
  const copy = path.join(scratch, "daemonset-typed.yaml");
  fs.writeFileSync(copy, original.replace("containerPort: 9792", "containerPort: nine"));
  const documents = readDocuments(copy);
  assert.match(schemaErrors(documents).join("\n"), /containerPort must be integer/);
  assert.match(strictErrors(documents).join("\n"), /containerPort: Type 'string' is not assignable/);
});
