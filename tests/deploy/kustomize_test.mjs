// `kubectl kustomize` (kustomize itself) builds from each kustomization under deploy/kubernetes
// exactly the objects the tests' own resolver (lib.mjs) builds, and they validate.
//   node kustomize_test.mjs KUBECTL
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";

import { buildKustomization, kubernetesDir, readDocuments, relative, schemaErrors,
  strictErrors } from "./lib.mjs";

const [kubectl] = process.argv.slice(2);
assert.ok(kubectl, "usage: kustomize_test.mjs KUBECTL");
const key = ({ value }) => `${value.kind}/${value.metadata.namespace ?? ""}/${value.metadata.name}`;
const sorted = (documents) => [...documents].sort((a, b) => key(a).localeCompare(key(b)))
  .map(({ value }) => value);

const dirs = [];
const visit = (dir) => {
  if (fs.existsSync(path.join(dir, "kustomization.yaml"))) dirs.push(dir);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) visit(path.join(dir, entry.name));
  }
};
visit(kubernetesDir);

for (const dir of dirs) {
  test(`kubectl kustomize ${relative(dir)}`, () => {
    const result = spawnSync(kubectl, ["kustomize", dir], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    const rendered = readDocuments(`kubectl kustomize ${relative(dir)}`, result.stdout);
    assert.deepEqual(sorted(rendered), sorted(buildKustomization(dir)));
    assert.deepEqual(schemaErrors(rendered), []);
    assert.deepEqual(strictErrors(rendered), []);
  });
}
