// deploy/kubernetes validates offline: every kustomization lists its manifests, every object
// matches the Kubernetes API schema (kubernetes-models) and has no unknown field (strict check),
// and the strict check does catch misspelled fields that the schema lets through. The TLS and
// basic auth overlay (tls-auth/) fits together: the web config it generates is mounted where
// --web.config.file points and has only exporter-toolkit keys, its certificate files come from a
// mounted Secret, probes need no credentials, and the ServiceMonitor scrapes over verified TLS with
// basic auth; every Secret it does not make is documented in docs/deploy.md.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "node:test";

import { buildKustomization, kubernetesDir, kustomizationInputs, readDocuments, readYaml, relative,
  schemaErrors, sourceDir, strictErrors, YAML } from "./lib.mjs";

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
    const kustomization = readYaml(path.join(dir, "kustomization.yaml"));
    // Resources, and the patches and generator inputs it reads.
    const listed = new Set([...(kustomization.resources ?? []), ...kustomizationInputs(kustomization)]);
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
  const operator = [...exporter, "PrometheusRule/portwatch/portwatch-rules",
    "ServiceMonitor/portwatch/portwatch-exporter"];
  assert.deepEqual(names("prometheus-operator"), operator.sort());
  // The Secrets portwatch-tls and portwatch-scrape-auth are the user's (see below).
  assert.deepEqual(names("tls-auth"), [...operator, "Secret/portwatch/portwatch-web-config"].sort());
});

// --- tls-auth: TLS and basic authentication ------------------------------------------------

// The exporter-toolkit web config keys (github.com/prometheus/exporter-toolkit web/tls_config.go:
// Config, TLSConfig, HTTPConfig; the headers its web.go allows).
const kWebConfigKeys = {
  "": ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"],
  tls_server_config: ["cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type",
    "client_ca_file", "client_allowed_sans", "cipher_suites", "curve_preferences", "min_version",
    "max_version", "prefer_server_cipher_suites"],
  http_server_config: ["http2", "headers"],
  "http_server_config.headers": ["Content-Security-Policy", "X-Frame-Options",
    "X-Content-Type-Options", "X-XSS-Protection", "Strict-Transport-Security"],
};
const kBcrypt = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

const tlsAuthDir = path.join(kubernetesDir, "tls-auth");
const tlsAuth = () => {
  const objects = buildKustomization(tlsAuthDir).map(({ value }) => value);
  const one = (kind, name) => {
    const found = objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
    assert.equal(found.length, 1, `one ${kind} ${name ?? ""} expected`);
    return found[0];
  };
  const daemonset = one("DaemonSet");
  const pod = daemonset.spec.template.spec;
  const container = pod.containers.find((c) => c.name === "portwatch-exporter");
  /// The Secret volume mounted at the directory of `file`, and the file's key in it.
  const secretOf = (file) => {
    const mount = container.volumeMounts.find((m) => m.mountPath === path.posix.dirname(file));
    assert.ok(mount, `no volume is mounted at ${path.posix.dirname(file)} (for ${file})`);
    assert.equal(mount.readOnly, true, `${mount.mountPath} must be mounted read-only`);
    assert.equal(mount.subPath, undefined, "subPath mounts do not see the kubelet's updates");
    const volume = pod.volumes.find((v) => v.name === mount.name);
    assert.ok(volume.secret?.secretName, `${mount.mountPath}: volume ${volume.name} is no Secret`);
    // Owner-readable only: the container runs as root.
    assert.equal((volume.secret.defaultMode ?? 0o644) & 0o077, 0,
      `${volume.name}: defaultMode lets others read the Secret's files`);
    return { name: volume.secret.secretName, key: path.posix.basename(file) };
  };
  const webConfigFlag = container.args.find((a) => a.startsWith("--web.config.file="));
  assert.ok(webConfigFlag, "the container has no --web.config.file");
  const webConfigFile = webConfigFlag.split("=")[1];
  const webConfigSecret = secretOf(webConfigFile);
  const generated = one("Secret", webConfigSecret.name);
  const text = Buffer.from(generated.data?.[webConfigSecret.key] ?? "", "base64").toString();
  assert.ok(text, `Secret ${generated.metadata.name} has no ${webConfigSecret.key}`);
  const webConfig = YAML.parse(text, { version: "1.1", uniqueKeys: true });
  return { objects, one, daemonset, pod, container, secretOf, webConfigFile, generated, text,
    webConfig, monitor: one("ServiceMonitor") };
};

const docs = () => fs.readFileSync(path.join(sourceDir, "docs/deploy.md"), "utf8");
/// The shell commands of docs/deploy.md's code blocks, continuation lines joined.
const docCommands = () => docs().replace(/\\\n\s*/g, " ").split("\n");

test("tls-auth: --web.config.file points into the mounted, generated web config Secret", () => {
  const { container, generated, webConfigFile } = tlsAuth();
  assert.match(webConfigFile, /^\//, "an absolute path");
  assert.equal(generated.type, "Opaque");
  // Only the web config file in it: hashes, no certificates inline.
  assert.deepEqual(Object.keys(generated.data), [path.posix.basename(webConfigFile)]);
  // The base's arguments are all still there.
  const base = buildKustomization(path.join(kubernetesDir, "exporter"))
    .find(({ value }) => value.kind === "DaemonSet").value.spec.template.spec.containers[0];
  assert.deepEqual(container.args, [...base.args, `--web.config.file=${webConfigFile}`]);
});

test("tls-auth: the web config has only exporter-toolkit keys, TLS from mounted files, bcrypt users", () => {
  const { webConfig, secretOf, generated } = tlsAuth();
  const check = (value, at) => {
    const allowed = kWebConfigKeys[at];
    for (const [key, child] of Object.entries(value ?? {})) {
      assert.ok(allowed.includes(key), `web config: unknown key ${at ? `${at}.` : ""}${key}`);
      const nested = at ? `${at}.${key}` : key;
      if (kWebConfigKeys[nested]) {
        check(child, nested);
      }
    }
  };
  check(webConfig, "");
  assert.equal(webConfig.rate_limit, undefined, "portwatch refuses rate_limit");
  const tls = webConfig.tls_server_config;
  assert.ok(tls?.cert_file && tls?.key_file, "tls_server_config needs cert_file and key_file");
  assert.equal(tls.cert, undefined, "no inline certificate: it comes from the Secret");
  assert.equal(tls.key, undefined, "no inline key: it comes from the Secret");
  assert.ok(!["TLS10", "TLS11"].includes(tls.min_version ?? "TLS12"));
  for (const file of [tls.cert_file, tls.key_file, tls.client_ca_file].filter(Boolean)) {
    assert.match(file, /^\//, `${file}: an absolute path`);
    const { name } = secretOf(file);
    assert.notEqual(name, generated.metadata.name, `${file} must not come from the web config Secret`);
  }
  const users = Object.entries(webConfig.basic_auth_users ?? {});
  assert.ok(users.length > 0, "basic_auth_users is empty");
  for (const [user, hash] of users) {
    assert.match(hash, kBcrypt, `basic_auth_users.${user} is no bcrypt hash`);
  }
});

test("tls-auth: probes are tcpSocket on the metrics port (every path asks for credentials)", () => {
  const { container } = tlsAuth();
  const portNames = container.ports.map((p) => p.name);
  for (const probe of ["livenessProbe", "readinessProbe"]) {
    const handlers = ["httpGet", "tcpSocket", "exec", "grpc"].filter((h) => container[probe]?.[h]);
    assert.deepEqual(handlers, ["tcpSocket"], `${probe}: handlers ${handlers}`);
    assert.equal(container[probe].tcpSocket.port, "metrics");
    assert.ok(portNames.includes(container[probe].tcpSocket.port));
  }
  const startup = container.startupProbe;
  assert.ok(!startup || !startup.httpGet, "startupProbe must not be httpGet either");
});

test("tls-auth: privileges are the base DaemonSet's", () => {
  const { daemonset, container } = tlsAuth();
  const base = buildKustomization(path.join(kubernetesDir, "exporter"))
    .find(({ value }) => value.kind === "DaemonSet").value;
  assert.deepEqual(container.securityContext, base.spec.template.spec.containers[0].securityContext);
  for (const key of ["securityContext", "hostNetwork", "hostPID", "serviceAccountName",
    "automountServiceAccountToken"]) {
    assert.deepEqual(daemonset.spec.template.spec[key], base.spec.template.spec[key], key);
  }
});

test("tls-auth: the ServiceMonitor scrapes with scheme https, verified TLS and basic auth", () => {
  const { monitor, daemonset, secretOf, webConfig } = tlsAuth();
  assert.equal(monitor.metadata.namespace, daemonset.metadata.namespace,
    "the operator reads a ServiceMonitor's Secrets from its own namespace");
  assert.ok(monitor.spec.endpoints.length > 0);
  for (const endpoint of monitor.spec.endpoints) {
    assert.equal(endpoint.scheme, "https");
    const tls = endpoint.tlsConfig;
    assert.ok(tls, "tlsConfig is missing");
    assert.notEqual(tls.insecureSkipVerify, true);
    assert.ok(tls.ca?.secret?.name || tls.ca?.configMap?.name, "tlsConfig.ca names no Secret or ConfigMap");
    assert.ok(tls.ca.secret?.key || tls.ca.configMap?.key, "tlsConfig.ca has no key");
    // Node IPs are not in the certificate: a DNS name is checked instead.
    assert.match(tls.serverName ?? "", /^[a-z0-9.-]+$/);
    // A client certificate is all or nothing.
    assert.equal(Boolean(tls.cert), Boolean(tls.keySecret), "tlsConfig.cert and keySecret go together");
    for (const field of ["username", "password"]) {
      assert.ok(endpoint.basicAuth?.[field]?.name && endpoint.basicAuth[field].key,
        `basicAuth.${field} needs a Secret name and key`);
    }
    // Mutual TLS on one side only would lock Prometheus out or leave it unused.
    const required = ["RequireAndVerifyClientCert", "RequireAnyClientCert"]
      .includes(webConfig.tls_server_config.client_auth_type);
    assert.ok(!required || tls.cert, "the exporter requires a client certificate: set tlsConfig.cert");
  }
  // The CA comes from the certificate's own Secret (cert-manager's ca.crt) or one named elsewhere.
  const certSecret = secretOf(webConfig.tls_server_config.cert_file).name;
  assert.equal(monitor.spec.endpoints[0].tlsConfig.ca.secret?.name, certSecret);
});

test("tls-auth: the Secrets it does not make are documented: names, keys, type, serverName", () => {
  const { objects, monitor, daemonset, secretOf, webConfig } = tlsAuth();
  const made = new Set(objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name));
  // Secret name -> keys read from it.
  const wanted = new Map();
  const want = (name, key) => wanted.set(name, new Set([...(wanted.get(name) ?? []), key]));
  const tls = webConfig.tls_server_config;
  for (const file of [tls.cert_file, tls.key_file, tls.client_ca_file].filter(Boolean)) {
    const { name, key } = secretOf(file);
    want(name, key);
  }
  for (const volume of daemonset.spec.template.spec.volumes) {
    if (volume.secret) want(volume.secret.secretName, undefined);
  }
  for (const endpoint of monitor.spec.endpoints) {
    const t = endpoint.tlsConfig ?? {};
    for (const ref of [t.ca?.secret, t.cert?.secret, t.keySecret, endpoint.basicAuth?.username,
      endpoint.basicAuth?.password].filter(Boolean)) {
      want(ref.name, ref.key);
    }
  }
  const kustomizationText = fs.readFileSync(path.join(tlsAuthDir, "kustomization.yaml"), "utf8");
  const commands = docCommands();
  const userProvided = [...wanted.keys()].filter((name) => !made.has(name)).sort();
  assert.deepEqual(userProvided, ["portwatch-scrape-auth", "portwatch-tls"]);
  for (const name of userProvided) {
    assert.match(kustomizationText, new RegExp(`#\\s+${name}\\s+USER-PROVIDED`),
      `tls-auth/kustomization.yaml does not say that ${name} is the user's`);
    const create = commands.find((c) => new RegExp(`kubectl .*create secret \\S+ ${name}\\b`).test(c));
    assert.ok(create, `docs/deploy.md has no "kubectl create secret ... ${name}"`);
    for (const key of [...wanted.get(name)].filter(Boolean)) {
      assert.match(create, new RegExp(`--from-(?:file|literal)=${key.replaceAll(".", "\\.")}=`),
        `docs/deploy.md: ${create.trim()} makes no key ${key}`);
    }
  }
  const tlsSecret = secretOf(tls.cert_file).name;
  assert.match(commands.find((c) => c.includes(`create secret generic ${tlsSecret}`)) ?? "",
    /--type=kubernetes\.io\/tls/, `${tlsSecret} must be of type kubernetes.io/tls`);
  assert.match(docs(), new RegExp(`secretName: ${tlsSecret}\\b`), "the cert-manager example");
  // The certificate is made for the name Prometheus checks.
  const serverName = monitor.spec.endpoints[0].tlsConfig.serverName;
  assert.ok(docs().includes(`DNS:${serverName}`), `docs/deploy.md: no certificate for DNS:${serverName}`);
  assert.match(docs(), new RegExp(`- ${serverName.replaceAll(".", "\\.")}\\b`), "cert-manager dnsNames");
  // The documented scrape user is one of the web config's users.
  const auth = commands.find((c) => /create secret generic portwatch-scrape-auth/.test(c));
  const user = /--from-literal=username=([^\s"']+)/.exec(auth)?.[1];
  assert.ok(user && webConfig.basic_auth_users[user], `docs: username ${user} is not in basic_auth_users`);
});

test("tls-auth: the strict check covers the patched ServiceMonitor's tlsConfig and basicAuth", () => {
  const documents = buildKustomization(tlsAuthDir).filter(({ value }) => value.kind === "ServiceMonitor");
  assert.deepEqual(strictErrors(documents), []);
  // Misspelled copies of the built object: [change, the field the error must name].
  const kChanges = [
    [(e) => { e.tlsConfig.servername = e.tlsConfig.serverName; delete e.tlsConfig.serverName; },
      "tlsConfig.servername"],
    [(e) => { e.tlsConfig.keyFileSecret = { name: "portwatch-scrape-tls", key: "tls.key" }; },
      "tlsConfig.keyFileSecret"],
    [(e) => { e.tlsConfig.ca.secretRef = e.tlsConfig.ca.secret; delete e.tlsConfig.ca.secret; },
      "tlsConfig.ca.secretRef"],
    [(e) => { e.basicAuth.user = e.basicAuth.username; delete e.basicAuth.username; }, "basicAuth.user"],
  ];
  for (const [change, field] of kChanges) {
    const copy = structuredClone(documents);
    change(copy[0].value.spec.endpoints[0]);
    const errors = strictErrors(copy);
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.ok(errors[0].includes(`${field}: unknown field`), errors[0]);
  }
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
