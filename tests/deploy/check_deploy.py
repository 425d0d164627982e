#!/usr/bin/env python3
"""Offline checks of deploy/docker and deploy/compose (issue 24).

No image can be pulled or built here, so this checks what can be checked
without them: the compose file passes docker-compose's own schema check
(`docker-compose config`); its topology is `mpim cluster up`'s (the same
number of gateways, logic and task nodes as its defaults, and the engines);
every MPIM node's command and environment make a configuration the binary
accepts (`mpim config show` with them exits 0) with the role its name says;
Prometheus scrapes every node and loads the alert rules; the Dockerfile
builds with `make package`, runs the package as a non-root user, and its
health check asks /readyz on the port it exposes, the default config's.

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

if failures:
    print("\n".join("check_deploy: " + f for f in failures))
    sys.exit(1)
print(f"check_deploy: ok ({len(nodes)} nodes, {len(services)} services)")
