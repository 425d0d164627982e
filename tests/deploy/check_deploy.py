#!/usr/bin/env python3
"""Offline checks of deploy/docker, deploy/compose and deploy/kubernetes (issue 24).

No image can be pulled or built here, so this checks what can be checked
without them: the compose file passes docker-compose's own schema check
(`docker-compose config`); its topology is `mpim cluster up`'s (the same
number of gateways, logic and task nodes as its defaults, and the engines);
every MPIM node's command and environment make a configuration the binary
accepts (`mpim config show` with them exits 0) with the role its name says;
Prometheus scrapes every node and loads the alert rules; the Dockerfile
builds with `make package`, runs the package as a non-root user, and its
health check asks /readyz on the port it exposes, the default config's.
The Kubernetes manifests: each Deployment's role, its configuration (the
ConfigMap's file, the Secret's and its own environment) accepted by the
binary, readiness on /readyz and liveness on /healthz at the port it
listens on, a grace period longer than its drain, resource requests, a
non-root user; every Service and PodDisruptionBudget selects pods that
exist, on ports they name; the SRV names discovery reads are headless
Services' ports.

Usage: check_deploy.py SOURCE_DIR MPIM_BINARY
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

src, mpim = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=env)


# --- the Dockerfile
dockerfile = open(os.path.join(src, "deploy/docker/Dockerfile")).read()
stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
check(stages and stages[0].startswith("debian:bookworm"), "Dockerfile: the build stage is Debian 12")
check(stages and stages[-1] == "debian:bookworm-slim", "Dockerfile: the image is debian:bookworm-slim")
check(re.search(r"^RUN make package$", dockerfile, re.M), "Dockerfile: builds with `make package`")
check(re.search(r"apt-get install .*/tmp/mpim_\*_amd64\.deb", dockerfile),
      "Dockerfile: installs the package")
user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
check(user and user[-1] not in ("root", "0"), "Dockerfile: runs as a non-root user")
default_config = open(os.path.join(src, "deploy/debian/mpim.toml")).read()
listen_port = re.search(r'^listen = "[^"]*:(\d+)"', default_config, re.M).group(1)
check(re.search(rf"^EXPOSE {listen_port}$", dockerfile, re.M),
      f"Dockerfile: exposes the default config's port {listen_port}")
check(re.search(rf"HEALTHCHECK[\s\S]*http://127\.0\.0\.1:{listen_port}/readyz", dockerfile),
      "Dockerfile: the health check asks /readyz")
check('CMD ["serve", "--config", "/etc/mpim/mpim.toml"]' in dockerfile,
      "Dockerfile: runs mpim serve on the packaged config")

# --- the compose file
compose_path = os.path.join(src, "deploy/compose/docker-compose.yml")
env = dict(os.environ, MPIM_TOKEN_KEY="k" * 43, MPIM_DB_PASSWORD="secret")
r = run(["docker-compose", "-f", compose_path, "config", "-q"], env)
check(r.returncode == 0, "docker-compose config: " + r.stderr.strip())
compose = yaml.safe_load(open(compose_path))
services = compose["services"]
for engine in ("mariadb", "redis", "etcd", "prometheus"):
    check(engine in services, f"compose: no {engine} service")

# `mpim cluster up`'s default topology, from its own help.
help_text = run([mpim, "cluster", "up", "--help"]).stdout
defaults = {role: int(n) for role, n in re.findall(r"--(gateways|logic|task) INT=(\d+)", help_text)}
check(defaults.keys() == {"gateways", "logic", "task"}, "cluster up --help: no defaults found")
nodes = {k: v for k, v in services.items() if v.get("image") == "mpim:latest"}
count = {"gateway": 0, "logic": 0, "task": 0}
for name, svc in nodes.items():
    cmd = svc["command"]
    role = cmd[cmd.index("--role") + 1] if "--role" in cmd else "all"
    check(name.startswith(role + "-"), f"compose: {name} runs role {role}")
    count[role] = count.get(role, 0) + 1
    check(cmd[0] == "serve", f"compose: {name} does not run `mpim serve`")
    check(svc.get("build", {}).get("dockerfile") == "deploy/docker/Dockerfile",
          f"compose: {name} is not built from deploy/docker/Dockerfile")
    # The configuration the binary makes of it (the packaged config file,
    # the service's command and environment) must be valid, with its role.
    node_env = {k: v for k, v in os.environ.items() if not k.startswith("MPIM_")}
    for k, v in svc["environment"].items():
        node_env[k] = re.sub(r"\$\{(\w+)[^}]*\}", lambda m: env.get(m.group(1), "x"), str(v))
    with tempfile.TemporaryDirectory() as tmp:
        args = list(cmd[1:])
        args[args.index("--config") + 1] = os.path.join(src, "deploy/debian/mpim.toml")
        args = [a for a in args if a not in ("--role", role)]
        shown = run([mpim, "config", "show", "--set", f"server.role={role}",
                     "--set", f"server.data_dir={tmp}"] + args, node_env)
    check(shown.returncode == 0, f"compose: {name}: mpim config show: {shown.stderr.strip()}")
    check(f'role = "{role}"' in shown.stdout, f"compose: {name}: role not {role}")
    port = re.search(r"--listen [^:]+:(\d+)", " ".join(cmd))
    check(port and svc.get("healthcheck") is None, f"compose: {name}: the image's health check applies")
    check(port and port.group(1) == listen_port, f"compose: {name} listens on the image's port")
check(count["gateway"] == defaults.get("gateways"), f"compose: {count['gateway']} gateways, cluster up has {defaults.get('gateways')}")
check(count["logic"] == defaults.get("logic"), f"compose: {count['logic']} logic nodes, cluster up has {defaults.get('logic')}")
check(count["task"] == defaults.get("task"), f"compose: {count['task']} task nodes, cluster up has {defaults.get('task')}")

# Prometheus scrapes every node and loads the rules.
prom = yaml.safe_load(open(os.path.join(src, "deploy/compose/prometheus.yml")))
targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
check(targets == {f"{n}:{listen_port}" for n in nodes}, f"compose prometheus: targets {sorted(targets)}")
mounts = " ".join(services["prometheus"].get("volumes", []))
check("../prometheus/mpim-alerts.yml:/etc/prometheus/mpim-alerts.yml" in mounts,
      "compose prometheus: the alert rules are not mounted")

# --- Kubernetes
k8s = [d for d in yaml.safe_load_all(open(os.path.join(src, "deploy/kubernetes/mpim.yaml"))) if d]
by_kind = {}
for d in k8s:
    check({"apiVersion", "kind", "metadata"} <= d.keys(), f"k8s: a document without apiVersion/kind/metadata")
    by_kind.setdefault(d["kind"], []).append(d)
configmap = by_kind["ConfigMap"][0]["data"]
secret = by_kind["Secret"][0]["stringData"]
deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
check(set(deployments) == {"mpim-gateway", "mpim-logic", "mpim-task", "mpim-edge"},
      f"k8s: deployments {sorted(deployments)}")
pod_labels = {}
pod_ports = {}
for name, d in deployments.items():
    spec = d["spec"]
    check(spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items(),
          f"k8s: {name}'s selector does not match its pods")
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    args = c["args"]
    role = args[args.index("--role") + 1]
    check(name == f"mpim-{role}", f"k8s: {name} runs role {role}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    pod_labels[name] = spec["template"]["metadata"]["labels"]
    pod_ports[name] = ports
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ports,
              f"k8s: {name}: {probe} is not GET {path} on a port it names")
    check("requests" in c.get("resources", {}), f"k8s: {name}: no resource requests")
    check(pod.get("securityContext", {}).get("runAsUser", 0) != 0
          and c.get("securityContext", {}).get("runAsNonRoot"), f"k8s: {name}: not non-root")
    # The configuration the binary makes of it.
    config_name = args[args.index("--config") + 1]
    check(any(m["mountPath"] == os.path.dirname(config_name) for m in c["volumeMounts"]),
          f"k8s: {name}: {config_name} is not mounted")
    node_env = {k: v for k, v in os.environ.items() if not k.startswith("MPIM_")}
    if any(e.get("secretRef", {}).get("name") == "mpim-secrets" for e in c.get("envFrom", [])):
        node_env.update({k: ("k" * 43 if k == "MPIM_AUTH_TOKEN_KEY" else v) for k, v in secret.items()})
    pod_ip = "10.0.0.7"
    for e in c["env"]:
        if "value" in e:
            node_env[e["name"]] = e["value"].replace("$(POD_IP)", pod_ip)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, os.path.basename(config_name))
        with open(path, "w") as f:
            f.write(configmap[os.path.basename(config_name)])
        shown = run([mpim, "config", "show", "--config", path, "--set", f"server.role={role}",
                     "--set", f"server.data_dir={tmp}"], node_env)
    check(shown.returncode == 0, f"k8s: {name}: mpim config show: {shown.stderr.strip()}")
    listen = re.search(r'^listen = "([^"]*)"', shown.stdout, re.M)
    check(listen and listen.group(1) == f"{pod_ip}:{ports.get('http')}",
          f"k8s: {name} listens on {listen and listen.group(1)}, not its http port")
    if role == "logic":
        check(f'listen = "{pod_ip}:{ports.get("grpc")}"' in shown.stdout,
              f"k8s: {name}: rpc.listen is not its grpc port on the pod's address")
    drain = re.search(r"^drain_timeout_ms = (\d+)", shown.stdout, re.M)
    check(drain and pod["terminationGracePeriodSeconds"] * 1000 > int(drain.group(1)),
          f"k8s: {name}: the grace period does not cover the drain")


def selects(selector, name):
    return selector.items() <= pod_labels[name].items()


headless_srv = set()
for svc in by_kind.get("Service", []):
    sname = svc["metadata"]["name"]
    targets = [n for n in deployments if selects(svc["spec"]["selector"], n)]
    check(len(targets) == 1, f"k8s: Service {sname} selects {targets}")
    for p in svc["spec"]["ports"]:
        check(targets and p["targetPort"] in pod_ports[targets[0]],
              f"k8s: Service {sname}: port {p['name']} targets what its pods do not name")
        if svc["spec"].get("clusterIP") == "None":
            headless_srv.add(f"_{p['name']}._tcp.{sname}.")
for p in by_kind.get("PodDisruptionBudget", []):
    check(any(selects(p["spec"]["selector"]["matchLabels"], n) for n in deployments),
          f"k8s: PodDisruptionBudget {p['metadata']['name']} selects no pods")
check({p["metadata"]["name"] for p in by_kind.get("PodDisruptionBudget", [])} >=
      {"mpim-gateway", "mpim-logic", "mpim-edge"}, "k8s: PodDisruptionBudgets missing")
check(any(s["spec"].get("type") == "LoadBalancer" and selects(s["spec"]["selector"], "mpim-edge")
          for s in by_kind["Service"]), "k8s: the edge has no LoadBalancer Service")
for srv in re.findall(r"=(_[a-z]+\._tcp\.[a-z0-9-]+\.)", "\n".join(configmap.values())):
    check(srv in headless_srv, f"k8s: discovery reads {srv}*, which no headless Service publishes")

if failures:
    print("\n".join("check_deploy: " + f for f in failures))
    sys.exit(1)
print(f"check_deploy: ok (compose: {len(nodes)} nodes, {len(services)} services; "
      f"kubernetes: {len(k8s)} objects)")
