// Shared by the deploy tests: YAML documents of deploy/, kustomizations, Kubernetes API schema
// validation (kubernetes-models) and a strict check for unknown fields (TypeScript's checker on
// the same models' types), with the npm packages that npm_setup.sh installed in
// $PORTWATCH_NODE_DIR.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export const sourceDir = process.env.PORTWATCH_SOURCE_DIR;
export const nodeDir = process.env.PORTWATCH_NODE_DIR;
if (!sourceDir || !nodeDir) {
  throw new Error("PORTWATCH_SOURCE_DIR and PORTWATCH_NODE_DIR must be set (ctest sets them)");
}
export const kubernetesDir = path.join(sourceDir, "deploy/kubernetes");
const require = createRequire(path.join(nodeDir, "package.json"));
export const YAML = require("yaml");
const ts = require("typescript");

/// The non-empty YAML documents of `file` (or of `text`, read as `file`), parsed like Kubernetes
/// does (YAML 1.1: `on`/`yes` are booleans), duplicate keys rejected.
export function readDocuments(file, text = fs.readFileSync(file, "utf8")) {
  const out = [];
  YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true }).forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) {
      throw new Error(`${file}: ${problems.map((p) => p.message).join("; ")}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) {
      out.push({ file, index, value });
    }
  });
  return out;
}

export function readYaml(file) {
  const documents = readDocuments(file);
  if (documents.length !== 1) {
    throw new Error(`${file}: expected one YAML document, found ${documents.length}`);
  }
  return documents[0].value;
}

export const relative = (file) => path.relative(sourceDir, file);

// Every field of kustomize's Kustomization (v1beta1); the resolver below implements the ones in
// kSupported. Others are known but need kubectl kustomize (deploy.kubernetes.kustomize_build).
const kKustomizationFields = new Set([
  "apiVersion", "kind", "metadata", "resources", "components", "namespace", "namePrefix",
  "nameSuffix", "labels", "commonLabels", "commonAnnotations", "images", "replicas", "patches",
  "patchesStrategicMerge", "patchesJson6902", "configMapGenerator", "secretGenerator",
  "generatorOptions", "crds", "openapi", "buildMetadata", "replacements", "vars", "helmCharts",
  "helmGlobals", "transformers", "generators", "validators", "sortOptions", "configurations",
]);
const kSupported = new Set(["apiVersion", "kind", "resources", "namespace", "images", "patches",
  "secretGenerator", "generatorOptions"]);
const kClusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding",
  "CustomResourceDefinition", "PriorityClass", "StorageClass"]);

/// Throws unless `object`'s keys are all in `allowed` (what this resolver implements).
function onlyKeys(object, allowed, what) {
  for (const key of Object.keys(object ?? {})) {
    if (!allowed.includes(key)) {
      throw new Error(`${what}: "${key}" is not implemented by tests/deploy/lib.mjs`);
    }
  }
}

/// The Secrets of a kustomization's secretGenerator: files ("KEY=PATH" or "PATH", the key being
/// the file's name) and literals ("KEY=VALUE"), type Opaque unless given. Only with
/// disableNameSuffixHash: kustomize's content hash is not reproduced here.
function generateSecrets(dir, kustomization, file) {
  const defaults = kustomization.generatorOptions ?? {};
  onlyKeys(defaults, ["disableNameSuffixHash", "labels", "annotations"],
           `${relative(file)} generatorOptions`);
  return (kustomization.secretGenerator ?? []).map((generator) => {
    const what = `${relative(file)} secretGenerator ${generator.name}`;
    onlyKeys(generator, ["name", "namespace", "type", "files", "literals", "options"], what);
    const options = { ...defaults, ...generator.options };
    onlyKeys(options, ["disableNameSuffixHash", "labels", "annotations"], `${what} options`);
    if (options.disableNameSuffixHash !== true) {
      throw new Error(`${what}: set options.disableNameSuffixHash (lib.mjs does not compute ` +
                      "kustomize's name hash)");
    }
    const data = {};
    for (const entry of generator.files ?? []) {
      const [key, source] = entry.includes("=") ? entry.split(/=(.*)/s) : [path.basename(entry), entry];
      data[key] = kustomizeBase64(fs.readFileSync(path.resolve(dir, source)));
    }
    for (const entry of generator.literals ?? []) {
      const [key, value] = entry.split(/=(.*)/s);
      data[key] = kustomizeBase64(Buffer.from(value));
    }
    const metadata = { name: generator.name };
    if (generator.namespace) metadata.namespace = generator.namespace;
    const labels = { ...defaults.labels, ...generator.options?.labels };
    const annotations = { ...defaults.annotations, ...generator.options?.annotations };
    if (Object.keys(labels).length > 0) metadata.labels = labels;
    if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
    return { file, index: 0, value: { apiVersion: "v1", kind: "Secret", metadata,
                                      type: generator.type ?? "Opaque", data } };
  });
}

/// Base64 as kustomize writes a generated Secret's data: in lines of 70 characters, each ended
/// by a newline, once the text takes 70 or more (Kubernetes' decoder skips the newlines).
function kustomizeBase64(bytes) {
  const encoded = Buffer.from(bytes).toString("base64");
  if (encoded.length < 70) {
    return encoded;
  }
  return encoded.match(/.{1,70}/g).map((line) => `${line}\n`).join("");
}

/// RFC 6901: the reference tokens of a JSON pointer.
function pointer(text) {
  if (!text.startsWith("/")) {
    throw new Error(`JSON pointer "${text}" must start with /`);
  }
  return text.slice(1).split("/").map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/// Applies RFC 6902 operations (add, remove, replace, test) to `target` in place.
function applyJsonPatch(target, operations, what) {
  for (const operation of operations) {
    onlyKeys(operation, ["op", "path", "value"], what);
    const tokens = pointer(operation.path);
    const last = tokens.pop();
    let parent = target;
    for (const token of tokens) {
      parent = parent?.[Array.isArray(parent) ? Number(token) : token];
      if (parent === undefined || parent === null || typeof parent !== "object") {
        throw new Error(`${what}: ${operation.op} ${operation.path}: no such path`);
      }
    }
    const isArray = Array.isArray(parent);
    const index = isArray ? (last === "-" ? parent.length : Number(last)) : undefined;
    if (isArray && !(Number.isInteger(index) && index >= 0 && index <= parent.length)) {
      throw new Error(`${what}: ${operation.op} ${operation.path}: bad array index`);
    }
    const exists = isArray ? index < parent.length : Object.hasOwn(parent, last);
    switch (operation.op) {
      case "add":
        if (isArray) parent.splice(index, 0, structuredClone(operation.value));
        else parent[last] = structuredClone(operation.value);
        break;
      case "remove":
      case "replace":
        if (!exists) {
          throw new Error(`${what}: ${operation.op} ${operation.path}: nothing there`);
        }
        if (operation.op === "remove") {
          if (isArray) parent.splice(index, 1);
          else delete parent[last];
        } else {
          parent[isArray ? index : last] = structuredClone(operation.value);
        }
        break;
      case "test": {
        const actual = isArray ? parent[index] : parent[last];
        if (JSON.stringify(actual) !== JSON.stringify(operation.value)) {
          throw new Error(`${what}: test ${operation.path} failed: ${JSON.stringify(actual)}`);
        }
        break;
      }
      default:
        throw new Error(`${what}: op "${operation.op}" is not implemented by tests/deploy/lib.mjs`);
    }
  }
}

/// Applies a kustomization's `patches` to `documents` in place: JSON 6902 patches (a list of
/// operations, from `path` or inline `patch`) on the objects their target's kind and name select.
/// Strategic merge patches are left to kubectl kustomize.
function applyPatches(dir, kustomization, documents, file) {
  for (const entry of kustomization.patches ?? []) {
    const what = `${file} patch ${entry.path ?? "(inline)"}`;
    onlyKeys(entry, ["path", "patch", "target"], what);
    onlyKeys(entry.target, ["kind", "name"], `${what} target`);
    const text = entry.path ? fs.readFileSync(path.resolve(dir, entry.path), "utf8") : entry.patch;
    const operations = YAML.parse(text, { version: "1.1", uniqueKeys: true });
    if (!Array.isArray(operations) || !entry.target) {
      throw new Error(`${what}: only JSON 6902 patches with a target are implemented by lib.mjs`);
    }
    const selected = documents.filter(({ value }) =>
      (!entry.target.kind || value.kind === entry.target.kind) &&
      (!entry.target.name || value.metadata?.name === entry.target.name));
    if (selected.length === 0) {
      throw new Error(`${what}: the target selects no object`);
    }
    for (const { value } of selected) {
      applyJsonPatch(value, operations, what);
    }
  }
}

/// The files a kustomization reads beside its resources: patches and generator inputs.
export function kustomizationInputs(kustomization) {
  const files = (kustomization.patches ?? []).map((p) => p.path).filter(Boolean);
  for (const generator of [...(kustomization.secretGenerator ?? []),
    ...(kustomization.configMapGenerator ?? [])]) {
    for (const entry of generator.files ?? []) {
      files.push(entry.includes("=") ? entry.split(/=(.*)/s)[1] : entry);
    }
  }
  return files;
}

/// The objects kustomize builds from the kustomization in `dir`: resources (files and
/// directories) and generated Secrets, then patches, namespace and images applied. Throws on an
/// unknown or unsupported field.
export function buildKustomization(dir) {
  const file = path.join(dir, "kustomization.yaml");
  const kustomization = readYaml(file);
  for (const key of Object.keys(kustomization)) {
    if (!kKustomizationFields.has(key)) {
      throw new Error(`${relative(file)}: unknown Kustomization field "${key}"`);
    }
    if (!kSupported.has(key)) {
      throw new Error(`${relative(file)}: "${key}" is not implemented by tests/deploy/lib.mjs`);
    }
  }
  if (kustomization.apiVersion !== "kustomize.config.k8s.io/v1beta1" ||
      kustomization.kind !== "Kustomization") {
    throw new Error(`${relative(file)}: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  let documents = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(dir, resource);
    if (!fs.existsSync(target)) {
      throw new Error(`${relative(file)}: resource ${resource} does not exist`);
    }
    documents = documents.concat(fs.statSync(target).isDirectory() ? buildKustomization(target)
                                                                   : readDocuments(target));
  }
  documents = structuredClone(documents).concat(generateSecrets(dir, kustomization, file));
  applyPatches(dir, kustomization, documents, relative(file));
  for (const { value } of documents) {
    if (kustomization.namespace && !kClusterScoped.has(value.kind)) {
      value.metadata = { ...value.metadata, namespace: kustomization.namespace };
    }
    for (const container of value.spec?.template?.spec?.containers ?? []) {
      for (const image of kustomization.images ?? []) {
        const name = container.image.split(":")[0];
        if (name === image.name) {
          container.image = `${image.newName ?? name}:${image.newTag}`;
        }
      }
    }
  }
  return documents;
}

/// The kubernetes-models module and class for an object.
function model(value) {
  const { apiVersion, kind } = value;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    throw new Error("apiVersion and kind must be strings");
  }
  const module = apiVersion.startsWith("monitoring.coreos.com/")
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  let exported;
  try {
    exported = require(module);
  } catch {
    throw new Error(`no Kubernetes API schema for ${apiVersion} ${kind}`);
  }
  return { module, Model: exported[kind], typeName: `I${kind}` };
}

const where = ({ file, index }) => `${relative(file)} (document ${index + 1})`;

/// Schema errors of the documents, one string each; empty when all validate.
export function schemaErrors(documents) {
  const errors = [];
  for (const document of documents) {
    let value = document.value;
    if (value.apiVersion === "v1" && value.kind === "Secret" && value.data) {
      // kustomize writes generated data as base64 in lines (kustomizeBase64): the API server's
      // decoder (Go's encoding/base64) skips the newlines, the schema's "byte" format does not.
      value = { ...value, data: Object.fromEntries(Object.entries(value.data)
        .map(([key, data]) => [key, typeof data === "string" ? data.replace(/[\r\n]/g, "") : data])) };
    }
    try {
      new (model(value).Model)(value).validate();
    } catch (error) {
      errors.push(`${where(document)}: ${error.message}`);
    }
  }
  return errors;
}

/// Fields the Kubernetes API does not know, and type errors, found by TypeScript: each document
/// becomes an object literal typed with its kubernetes-models interface; every property of every
/// nested literal must exist in its contextual type (or the type must be a map). One string per
/// problem, "<file> (document N): <path>: <message>".
export function strictErrors(documents) {
  const lines = [];
  documents.forEach((document, i) => {
    const { module, typeName } = model(document.value);
    lines.push(`import type { ${typeName} as T${i} } from "${module}";`);
  });
  documents.forEach((document, i) => {
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(document.value, null, 1)};`);
  });
  const generated = path.join(nodeDir, `strict-check-${process.pid}.ts`);
  fs.writeFileSync(generated, lines.join("\n") + "\n");
  try {
    const program = ts.createProgram([generated], {
      strict: true, noEmit: true, skipLibCheck: true, types: [],
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2020,
    });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(generated);
    const errors = [];
    const documentOf = (node) => {
      let pathText = "";
      for (let n = node; n; n = n.parent) {
        if (ts.isPropertyAssignment(n)) {
          pathText = `.${n.name.text}${pathText}`;
        } else if (ts.isArrayLiteralExpression(n.parent ?? {}) && n.parent.elements) {
          pathText = `[${n.parent.elements.indexOf(n)}]${pathText}`;
        } else if (ts.isVariableDeclaration(n)) {
          const index = Number(n.name.text.slice(3));
          return `${where(documents[index])}: ${pathText.slice(1) || "(top)"}`;
        }
      }
      return relative(generated);
    };
    const hasField = (type, name) => {
      const members = type.isUnion() ? type.types : [type];
      let objects = 0;
      for (const member of members) {
        if (!(member.flags & ts.TypeFlags.Object)) {
          continue;
        }
        objects++;
        if (checker.getPropertyOfType(member, name) ||
            checker.getIndexInfosOfType(member).length > 0) {
          return true;
        }
      }
      return objects === 0;  // any, unknown: nothing to check against
    };
    const walk = (node) => {
      if (ts.isObjectLiteralExpression(node)) {
        const type = checker.getContextualType(node);
        for (const property of node.properties) {
          if (type && !hasField(checker.getNonNullableType(type), property.name.text)) {
            errors.push(`${documentOf(property)}: unknown field "${property.name.text}" in ` +
                        `${checker.typeToString(type).slice(0, 80)}`);
          } else {
            walk(property.initializer);
          }
        }
      } else if (ts.isArrayLiteralExpression(node)) {
        node.elements.forEach(walk);
      }
    };
    for (const statement of source.statements) {
      if (ts.isVariableStatement(statement)) {
        walk(statement.declarationList.declarations[0].initializer);
      }
    }
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
      if (message.includes("may only specify known properties")) {
        continue;  // reported above, with the path
      }
      let node = diagnostic.file && diagnostic.start !== undefined
        ? findNode(diagnostic.file, diagnostic.start) : undefined;
      errors.push(`${node ? documentOf(node) : "?"}: ${message.split("\n")[0].slice(0, 300)}`);
    }
    return errors;
  } finally {
    fs.rmSync(generated, { force: true });
  }
}

function findNode(sourceFile, position) {
  let found;
  const visit = (node) => {
    if (node.getStart(sourceFile) <= position && position < node.getEnd()) {
      found = node;
      ts.forEachChild(node, visit);
    }
  };
  ts.forEachChild(sourceFile, visit);
  return found;
}
