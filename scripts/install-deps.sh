#!/usr/bin/env bash
# Installs what MPIM needs to build and test, from Debian 12 packages.
# Idempotent: checks each package and installs only what is missing, running
# `apt-get update` once, and only when something must be installed. Quiet when
# nothing is missing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache
  # libraries (Boost 1.81, not libboost-all-dev which is 1.74)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libabsl-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  libsqlite3-dev libsodium-dev libssl-dev
  # offline push: HTTP/2 to APNs (and the tests' APNs stand-in)
  libnghttp2-dev
  # cluster engines: MariaDB Connector/C and hiredis to build; the servers
  # themselves for the tests, which start their own on loopback ports
  libmariadb-dev libhiredis-dev mariadb-server redis-server
  # roles over gRPC (protoc + grpc_cpp_plugin generate proto/ at build time),
  # c-ares for DNS SRV discovery, and etcd for discovery and the config centre
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libc-ares-dev
  etcd-server etcd-client
  # a DNS server with SRV records for the tests of discovery engine dns
  dnsmasq-base
  # the edge's TLS tests ask `openssl s_client` what the edge serves
  openssl
  # the edge's GeoIP zones read MaxMind DB files
  libmaxminddb-dev
  # make bench: the edge beside HAProxy and nginx (bench/edge_bench.cc),
  # over HTTP/2 with h2load (nghttp2's load generator)
  haproxy nginx-light nghttp2-client
  # deploy/prometheus: promtool checks and unit-tests the alert rules, and a
  # real Prometheus scrapes mpim in prometheus_e2e_test
  prometheus
  # make package: CPack's DEB generator finds shared-library dependencies
  # with dpkg-shlibdeps; the package test verifies the unit with systemd-analyze
  dpkg-dev systemd
  # deploy/compose and deploy/docker, checked offline (tests/deploy/check_deploy.py)
  docker-compose python3-yaml
  # the backup runbook's tools, run by backup_e2e_test (mariadb-dump comes
  # with mariadb-client, a dependency of mariadb-server)
  sqlite3
  # tests, benchmarks and fuzzing (clang's libFuzzer)
  googletest libgtest-dev libbenchmark-dev clang libclang-rt-14-dev
  # browser tests of the web client (tests/browser)
  nodejs npm chromium
)

# Names that installed packages provide also count (NodeSource's nodejs
# provides npm and conflicts with Debian's).
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | grep '^install ok installed|' |
  cut -d'|' -f2 | tr ',' '\n' | sed 's/(.*//; s/ //g' | sort -u || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || grep -qxF "$pkg" <<<"$provided" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
