// What the deploy artefacts grant and how they fit together: the DaemonSet and the systemd unit
// ask exactly for the privileges their enabled collectors need (the table below, checked against
// the collectors the binary has), the hardening is there, the Service, ServiceMonitor and scrape
// example select the DaemonSet's pods, the ConfigMap's config passes --config.check, the
// PrometheusRule carries exactly the rules of deploy/prometheus/, and the binary serves the
// tls-auth overlay's web config as docs/deploy.md sets it up.
//   node policy_test.mjs PORTWATCH_EXPORTER_BINARY PROJECT_VERSION
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import test from "node:test";

import { buildKustomization, kubernetesDir, readYaml, relative, sourceDir, YAML } from "./lib.mjs";

const [exporterBinary, projectVersion] = process.argv.slice(2);
assert.ok(exporterBinary && projectVersion, "usage: policy_test.mjs EXPORTER_BINARY VERSION");

// What each collector needs beyond running in the node's network namespace. A collector the
// binary has and this table lacks fails the first test: add it here, to the DaemonSet, to the
// systemd unit and to docs/deploy.md.
const kCollectors = {
  sockets: { capabilities: [], hostPID: false },        // sock_diag dumps of the node's namespace
  kernel_limits: { capabilities: [], hostPID: false },  // /proc/sys/net
  netstat: { capabilities: [], hostPID: false },        // /proc/net/netstat
  // Names the processes holding sockets: lists /proc/<pid>/fd of other users (DAC_READ_SEARCH),
  // reads the fd links and duplicates sockets with pidfd_getfd (SYS_PTRACE), on the node's PIDs.
  services: { capabilities: ["DAC_READ_SEARCH", "SYS_PTRACE"], hostPID: true },
  // Loads a tracing eBPF program (BPF) that reads kernel memory (PERFMON) and attaches it to
  // the raw tracepoint sys_exit. It sees every network namespace from the host kernel: no
  // hostPID needed (the process name comes from the kernel).
  bind_events: { capabilities: ["BPF", "PERFMON"], hostPID: false },
};
// With pods (collectors.sockets.pods, on by default) on a node that runs them, the sockets
// collector also finds every pod's network namespace in the node's /proc (hostPID), opens other
// users' /proc/<pid>/ns/net (SYS_PTRACE) and enters each (setns: SYS_ADMIN). The systemd unit is
// for plain hosts, which have no pods; the DaemonSet runs on Kubernetes nodes.
const kPods = { collector: "sockets", capabilities: ["SYS_ADMIN", "SYS_PTRACE"], hostPID: true };

/// The binary's collectors and whether each is on by default, from --help.
function binaryCollectors() {
  const help = spawnSync(exporterBinary, ["--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  const collectors = {};
  const lines = help.stdout.split("\n");
  lines.forEach((line, i) => {
    const flag = /^\s*--collector\.([a-z_]+),--no-collector\./.exec(line);
    if (flag) {
      let text = line;
      for (let j = i + 1; j < lines.length && !/^\s*-/.test(lines[j]); j++) {
        text += lines[j];
      }
      const state = /\(default: (enabled|disabled)\)/.exec(text);
      assert.ok(state, `--help does not say whether ${flag[1]} is on by default:\n${text}`);
      collectors[flag[1]] = state[1] === "enabled";
    }
  });
  assert.ok(Object.keys(collectors).length >= 3, `no collectors found in --help:\n${help.stdout}`);
  return collectors;
}

/// Collectors enabled by `args` (--collector.X / --no-collector.X over the defaults).
function enabledCollectors(args) {
  const enabled = binaryCollectors();
  for (const arg of args) {
    const match = /^--(no-)?collector\.([a-z_]+)$/.exec(arg);
    if (match) {
      enabled[match[2]] = !match[1];
    }
  }
  return Object.keys(enabled).filter((name) => enabled[name]).sort();
}

function needs(collectors, { pods }) {
  const all = collectors.map((name) => kCollectors[name]);
  if (pods && collectors.includes(kPods.collector)) {
    all.push(kPods);
  }
  const capabilities = new Set(all.flatMap((need) => need.capabilities));
  return { capabilities: [...capabilities].sort(), hostPID: all.some((need) => need.hostPID) };
}

/// Who may ask for `capability`: the collectors that need it, sockets for the pods' needs.
function usersOf(capability) {
  const users = Object.keys(kCollectors).filter((n) => kCollectors[n].capabilities.includes(capability));
  return kPods.capabilities.includes(capability) ? [...users, kPods.collector] : users;
}

const exporterObjects = buildKustomization(path.join(kubernetesDir, "exporter"));
const object = (kind) => {
  const found = exporterObjects.filter(({ value }) => value.kind === kind);
  assert.equal(found.length, 1, `one ${kind} expected`);
  return found[0].value;
};
const daemonset = object("DaemonSet");
const pod = daemonset.spec.template.spec;
const container = pod.containers[0];
const daemonsetText = fs.readFileSync(path.join(kubernetesDir, "exporter/daemonset.yaml"), "utf8");
const unitFile = path.join(sourceDir, "deploy/systemd/portwatch_exporter.service");

/// `Key=value` settings of a systemd unit's [Service] section, values of repeated keys joined.
function serviceSettings(text) {
  const settings = {};
  let section = "";
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
    } else if (section === "Service" && /^[A-Za-z]+=/.test(line)) {
      const [key, ...value] = line.split("=");
      settings[key] = settings[key] === undefined ? value.join("=") : `${settings[key]} ${value.join("=")}`;
    }
  }
  return settings;
}

test("every collector of the binary has its privileges listed here", () => {
  for (const name of Object.keys(binaryCollectors())) {
    assert.ok(kCollectors[name], `collector "${name}" is new: add what it needs to ` +
      "tests/deploy/policy_test.mjs, deploy/kubernetes, deploy/systemd and docs/deploy.md");
  }
});

test("DaemonSet asks exactly for what its enabled collectors need, each with a reason", () => {
  const need = needs(enabledCollectors(container.args ?? []), { pods: true });
  const security = container.securityContext;
  assert.deepEqual(security.capabilities.drop, ["ALL"]);
  assert.deepEqual([...(security.capabilities.add ?? [])].sort(), need.capabilities);
  assert.equal(pod.hostPID ?? false, need.hostPID);
  assert.equal(pod.hostNetwork, true, "every collector reads the node's network namespace");
  for (const capability of need.capabilities) {
    const users = usersOf(capability);
    const line = daemonsetText.split("\n").find((l) => new RegExp(`^\\s*- ${capability}\\s*#`).test(l));
    assert.ok(line, `daemonset.yaml: "- ${capability}" has no comment naming its collector`);
    assert.ok(users.some((name) => line.includes(name)), `${line}: name one of ${users}`);
  }
  // Root only so that added capabilities take effect (Kubernetes gives them to uid 0 only).
  const user = security.runAsUser ?? pod.securityContext?.runAsUser;
  if (need.capabilities.length === 0) {
    assert.notEqual(user, 0, "no capability needed: run as the image's non-root user");
  }
});

test("DaemonSet is hardened", () => {
  const security = container.securityContext;
  assert.equal(security.allowPrivilegeEscalation, false);
  assert.equal(security.readOnlyRootFilesystem, true);
  assert.notEqual(security.privileged, true);
  assert.equal((security.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, "RuntimeDefault");
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(object("ServiceAccount").automountServiceAccountToken, false);
  assert.equal(pod.serviceAccountName, object("ServiceAccount").metadata.name);
  // Sized from the benchmark: < 30 MiB RSS with 1M sockets.
  const mebibytes = (quantity) => Number(/^(\d+)Mi$/.exec(quantity)?.[1]);
  assert.ok(mebibytes(container.resources.requests.memory) >= 30, "memory request below the benchmark");
  assert.ok(mebibytes(container.resources.limits.memory) >= 2 * mebibytes(container.resources.requests.memory));
  assert.ok(container.resources.requests.cpu && container.resources.limits.cpu);
});

test("DaemonSet runs everywhere, updates in place, probes the health endpoints", () => {
  assert.ok(pod.tolerations.some((t) => t.operator === "Exists" && !t.key && !t.effect),
    "tolerate every taint, to run on every node");
  assert.equal(daemonset.spec.updateStrategy.type, "RollingUpdate");
  // The new pod needs the old pod's host port: no surge.
  assert.equal(daemonset.spec.updateStrategy.rollingUpdate.maxSurge, 0);
  const port = container.ports.find((p) => p.name === "metrics");
  assert.equal(port.containerPort, 9792);
  assert.equal(port.hostPort, 9792);
  assert.ok(container.args.includes(`--web.listen-address=:${port.containerPort}`));
  assert.deepEqual(container.livenessProbe.httpGet, { path: "/-/healthy", port: "metrics" });
  assert.deepEqual(container.readinessProbe.httpGet, { path: "/-/ready", port: "metrics" });
  assert.match(container.image, new RegExp(`^portwatch_exporter:${projectVersion.replaceAll(".", "\\.")}$`),
    "the kustomization's image tag is the project's version");
  for (const [key, value] of Object.entries(daemonset.spec.selector.matchLabels)) {
    assert.equal(daemonset.spec.template.metadata.labels[key], value);
  }
});

test("ConfigMap is mounted where --config.file points, and its config passes --config.check", () => {
  const mount = container.volumeMounts.find((m) => m.readOnly);
  const volume = pod.volumes.find((v) => v.name === mount.name);
  const configMap = object("ConfigMap");
  assert.equal(volume.configMap.name, configMap.metadata.name);
  const configFile = container.args.find((a) => a.startsWith("--config.file=")).split("=")[1];
  assert.equal(path.dirname(configFile), mount.mountPath);
  const text = configMap.data[path.basename(configFile)];
  assert.ok(text, `the ConfigMap has no ${path.basename(configFile)}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portwatch-configmap-"));
  try {
    const file = path.join(dir, "portwatch.yaml");
    fs.writeFileSync(file, text);
    let check = spawnSync(exporterBinary, ["--config.check", `--config.file=${file}`], { encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout + check.stderr, /config OK/);
    // The same check fails on a broken copy.
    fs.writeFileSync(file, text.replace("max_port_series: 1000", "max_port_series: lots"));
    check = spawnSync(exporterBinary, ["--config.check", `--config.file=${file}`], { encoding: "utf8" });
    assert.equal(check.status, 1, check.stdout + check.stderr);
    assert.match(check.stdout + check.stderr, /max_port_series must be an integer/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("Service, ServiceMonitor and the scrape example select the DaemonSet's pods", () => {
  const labels = daemonset.spec.template.metadata.labels;
  const service = object("Service");
  assert.equal(service.spec.clusterIP, "None");
  for (const [key, value] of Object.entries(service.spec.selector)) {
    assert.equal(labels[key], value, `Service selector ${key}`);
  }
  assert.deepEqual(service.spec.ports.map((p) => [p.name, p.targetPort]), [["metrics", "metrics"]]);

  const monitor = buildKustomization(path.join(kubernetesDir, "prometheus-operator"))
    .find(({ value }) => value.kind === "ServiceMonitor").value;
  assert.equal(monitor.metadata.namespace, service.metadata.namespace);
  for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
    assert.equal(service.metadata.labels[key], value, `ServiceMonitor selector ${key}`);
  }
  assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.path]), [["metrics", "/metrics"]]);

  const job = readYaml(path.join(sourceDir, "deploy/prometheus/kubernetes-scrape.yml")).scrape_configs[0];
  const sd = job.kubernetes_sd_configs[0];
  assert.equal(sd.role, "pod");
  assert.deepEqual(sd.namespaces.names, [daemonset.metadata.namespace]);
  const [key, value] = sd.selectors[0].label.split("=");
  assert.equal(labels[key], value);
  const keep = job.relabel_configs.find((r) => r.action === "keep" &&
    r.source_labels[0] === "__meta_kubernetes_pod_container_port_name");
  assert.ok(new RegExp(`^(?:${keep.regex})$`).test("metrics"));
});

test("Namespace admits the pod: privileged Pod Security level for host namespaces", () => {
  const namespace = object("Namespace");
  assert.equal(namespace.metadata.name, daemonset.metadata.namespace);
  if (pod.hostNetwork || pod.hostPID) {
    assert.equal(namespace.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
  }
});

test("systemd unit grants what its collectors need, hardened", () => {
  const settings = serviceSettings(fs.readFileSync(unitFile, "utf8"));
  const args = settings.ExecStart.split(/\s+/);
  assert.equal(args[0], "/usr/local/bin/portwatch_exporter");
  const configFile = args.find((a) => a.startsWith("--config.file=")).split("=")[1];
  assert.match(configFile, /^\/etc\/portwatch\//);
  const need = needs(enabledCollectors(args.slice(1)), { pods: false });
  const capabilities = (key) => (settings[key] ?? "").split(/\s+/).filter(Boolean).sort();
  const wanted = need.capabilities.map((c) => `CAP_${c}`);
  assert.deepEqual(capabilities("AmbientCapabilities"), wanted);
  assert.deepEqual(capabilities("CapabilityBoundingSet"), wanted);
  assert.ok(settings.DynamicUser === "yes" || (settings.User && settings.User !== "root"));
  assert.equal(settings.User, "portwatch");
  for (const [key, value] of Object.entries({ NoNewPrivileges: "yes", ProtectSystem: "strict",
    ProtectHome: "yes", PrivateTmp: "yes", ProtectKernelTunables: "yes" })) {
    assert.equal(settings[key], value, key);
  }
  // These would blind the collectors: another network namespace, user namespace, or hidden
  // processes.
  assert.notEqual(settings.PrivateNetwork, "yes");
  assert.notEqual(settings.PrivateUsers, "yes");
  assert.ok(!["invisible", "noaccess", "ptraceable"].includes(settings.ProtectProc));
  assert.notEqual(settings.ProcSubset, "pid");
  assert.match(settings.RestrictAddressFamilies, /AF_NETLINK/);
  assert.match(settings.RestrictAddressFamilies, /AF_INET6/);
});

test("PrometheusRule carries exactly the rules of deploy/prometheus/", () => {
  // Rules files: YAML under deploy/prometheus/ with a top-level `groups`.
  const groups = [];
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        visit(file);
      } else if (/\.ya?ml$/.test(entry.name)) {
        const value = readYaml(file);
        if (value && Array.isArray(value.groups)) {
          groups.push(...value.groups);
        }
      }
    }
  };
  visit(path.join(sourceDir, "deploy/prometheus"));
  const rules = [];
  const find = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        find(file);
      } else if (fs.readFileSync(file, "utf8").match(/^kind:\s*PrometheusRule\s*$/m)) {
        rules.push(file);
      }
    }
  };
  find(kubernetesDir);
  if (groups.length === 0) {
    // No alert rules yet: no PrometheusRule either (no stand-in rules).
    assert.deepEqual(rules.map(relative), []);
    return;
  }
  const objects = buildKustomization(path.join(kubernetesDir, "prometheus-operator"))
    .filter(({ value }) => value.kind === "PrometheusRule");
  assert.equal(objects.length, 1, "the prometheus-operator kustomization lists one PrometheusRule");
  assert.deepEqual(objects[0].value.spec.groups, groups);
});

test("DaemonSet (base and tls-auth) and systemd unit name the same capabilities, pods aside", () => {
  const unit = serviceSettings(fs.readFileSync(unitFile, "utf8"));
  const list = (key) => (unit[key] ?? "").split(/\s+/).filter(Boolean).sort();
  const ambient = list("AmbientCapabilities");
  const onKubernetes = [...new Set([...ambient, ...kPods.capabilities.map((c) => `CAP_${c}`)])].sort();
  assert.ok(ambient.length > 0);
  assert.deepEqual(list("CapabilityBoundingSet"), ambient, "CapabilityBoundingSet = AmbientCapabilities");
  for (const dir of ["exporter", "tls-auth"]) {
    const ds = buildKustomization(path.join(kubernetesDir, dir))
      .find(({ value }) => value.kind === "DaemonSet").value;
    const capabilities = ds.spec.template.spec.containers[0].securityContext.capabilities;
    assert.deepEqual(capabilities.drop, ["ALL"], dir);
    assert.deepEqual(capabilities.add.map((c) => `CAP_${c}`).sort(), onKubernetes,
      `${dir}: the DaemonSet's capabilities.add differ from the unit's AmbientCapabilities plus pods'`);
  }
});

// --- tls-auth: the binary serves the overlay's web config ------------------------------------

// bcrypt (cost 10) of "portwatch-deploy-test", made with libcrypt (perl's crypt).
const kTestPassword = "portwatch-deploy-test";
const kTestHash = "$2y$10$cG9ydHdhdGNoLWRlcGxveOSW1.P9n/WpJPfQZkjTeVr/6ZAnb/eHy";

/// The shell commands of docs/deploy.md, continuation lines joined.
const docCommands = () => fs.readFileSync(path.join(sourceDir, "docs/deploy.md"), "utf8")
  .replace(/\\\n\s*/g, " ").split("\n").map((line) => line.trim());

/// GET over TLS, trusting `ca` and checking the certificate against `servername` (what
/// Prometheus' tlsConfig.ca and serverName do): the status and body.
function get(port, urlPath, { ca, servername, auth }) {
  return new Promise((resolve, reject) => {
    const request = https.get({ host: "127.0.0.1", port, path: urlPath, ca, servername, auth,
      agent: false, timeout: 10000 }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => { body += chunk; });
      response.on("end", () => resolve({ status: response.statusCode, body }));
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${urlPath}: timeout`)));
    request.on("error", reject);
  });
}

test("tls-auth: the binary serves the overlay's web config, set up as docs/deploy.md says", async () => {
  const objects = buildKustomization(path.join(kubernetesDir, "tls-auth")).map(({ value }) => value);
  const pod = objects.find((o) => o.kind === "DaemonSet").spec.template.spec;
  const tlsContainer = pod.containers[0];
  const monitor = objects.find((o) => o.kind === "ServiceMonitor");
  const serverName = monitor.spec.endpoints[0].tlsConfig.serverName;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portwatch-tls-auth-"));
  let exporter;
  try {
    // 1b of docs/deploy.md: the CA and the exporter's certificate, with its openssl commands.
    const caDir = path.join(dir, "ca");
    fs.mkdirSync(caDir);
    const openssl = docCommands().filter((c) => c.startsWith("openssl req "));
    assert.equal(openssl.length, 2, "docs/deploy.md: the two openssl commands of step 1b");
    for (const command of openssl) {
      const run = spawnSync("bash", ["-c", command], { cwd: caDir, encoding: "utf8" });
      assert.equal(run.status, 0, `${command}\n${run.stderr}`);
    }
    // The pod's mounts as directories: ConfigMaps and Secrets of the overlay with their data,
    // portwatch-tls (the user's) with the certificate made above.
    const mounts = tlsContainer.volumeMounts.map((mount) => {
      const volume = pod.volumes.find((v) => v.name === mount.name);
      const local = path.join(dir, "mnt", mount.name);
      fs.mkdirSync(local, { recursive: true });
      if (volume.hostPath) {
        return { mountPath: mount.mountPath, local };  // the node's directory: empty here
      }
      const name = volume.configMap?.name ?? volume.secret?.secretName;
      const source = objects.find((o) => ["ConfigMap", "Secret"].includes(o.kind) &&
                                          o.metadata.name === name);
      if (source) {
        for (const [key, value] of Object.entries(source.data)) {
          fs.writeFileSync(path.join(local, key),
            source.kind === "Secret" ? Buffer.from(value, "base64") : value);
        }
      } else {
        assert.equal(name, "portwatch-tls", `volume ${mount.name}: Secret ${name} is made by nobody`);
        for (const key of ["tls.crt", "tls.key", "ca.crt"]) {
          fs.copyFileSync(path.join(caDir, key), path.join(local, key));
        }
      }
      return { mountPath: mount.mountPath, local };
    });
    const localize = (text) => mounts.reduce((out, { mountPath, local }) =>
      out.replaceAll(`${mountPath}/`, `${local}/`), text);
    const webConfigFile = localize(tlsContainer.args.find((a) => a.startsWith("--web.config.file=")))
      .split("=")[1];
    fs.writeFileSync(webConfigFile, localize(fs.readFileSync(webConfigFile, "utf8")));
    const users = Object.keys(YAML.parse(fs.readFileSync(webConfigFile, "utf8")).basic_auth_users);
    const auth = `${users[0]}:${kTestPassword}`;

    const args = tlsContainer.args.map((arg) => arg.startsWith("--web.listen-address=")
      ? "--web.listen-address=127.0.0.1:0" : localize(arg));
    // bind_events would load its eBPF program: not what this test is about.
    exporter = spawn(exporterBinary, [...args, "--no-collector.bind_events"],
                     { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the exporter did not listen:\n${log}`)), 20000);
      exporter.stderr.on("data", (chunk) => {
        log += chunk;
        const line = log.split("\n").find((l) => /msg="?listening/.test(l));
        const found = line && /\bport=(\d+)/.exec(line);
        if (found) {
          clearTimeout(timer);
          resolve(Number(found[1]));
        }
      });
      exporter.on("exit", (code) => reject(new Error(`the exporter exited (${code}):\n${log}`)));
    });

    // What the tcpSocket probes check: the port accepts connections.
    await new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => { socket.destroy(); resolve(); });
      socket.on("error", reject);
    });
    const ca = fs.readFileSync(path.join(caDir, "ca.crt"));
    const tls = { ca, servername: serverName };
    // Every path asks for credentials, /-/healthy too (hence no httpGet probes); the placeholder
    // hash lets no password in.
    assert.equal((await get(port, "/-/healthy", tls)).status, 401);
    assert.equal((await get(port, "/-/ready", tls)).status, 401);
    assert.equal((await get(port, "/metrics", { ...tls, auth })).status, 401);
    // A client that checks another name refuses the certificate: it is made for serverName.
    await assert.rejects(get(port, "/-/healthy", { ca, servername: "localhost" }),
      /altnames|does not match|Hostname/i);

    // Step 2: docs/deploy.md's sed puts the hash in; the exporter re-reads the file, no restart.
    const sed = docCommands().find((c) => c.startsWith("sed -i ") && c.includes("web-config.yml"));
    const repositoryFile = "deploy/kubernetes/tls-auth/web-config.yml";
    assert.ok(sed?.includes(repositoryFile), `docs/deploy.md: the sed command of step 2 on ${repositoryFile}`);
    // On the copy, never on the repository's file.
    const edit = spawnSync("bash", ["-c", sed.replace(repositoryFile, webConfigFile)],
      { cwd: dir, encoding: "utf8", env: { ...process.env, HASH: kTestHash } });
    assert.equal(edit.status, 0, edit.stderr);
    assert.ok(fs.readFileSync(webConfigFile, "utf8").includes(`"${kTestHash}"`),
      "sed did not put the hash in");
    const scrape = await get(port, "/metrics", { ...tls, auth });
    assert.equal(scrape.status, 200, log);
    assert.match(scrape.body, /^portwatch_web_config_last_reload_successful 1$/m);
    assert.match(scrape.body, /^portwatch_web_config_reloads_total\{result="success"\} 1$/m);
    assert.equal((await get(port, "/-/healthy", { ...tls, auth })).status, 200);
    assert.equal((await get(port, "/-/healthy", tls)).status, 401);
    assert.equal((await get(port, "/metrics", { ...tls, auth: `${users[0]}:wrong` })).status, 401);
  } finally {
    if (exporter && exporter.exitCode === null && exporter.signalCode === null) {
      const exited = new Promise((resolve) => exporter.on("exit", resolve));
      exporter.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
