#!/usr/bin/env bash
# The Debian package (issue 24), on this machine as root: built with CPack
# from the build directory ($1), installed with dpkg (the mpim user, its
# state directory, the config's owner and mode), its systemd unit verified
# by systemd-analyze, `mpim serve` run from the installed files as the mpim
# user (ready, the web client served, its store in /var/lib/mpim), then
# removed (the conffile and the state stay) and purged (nothing stays).
# Skipped (77) when not root or when an mpim package is installed already.
set -euo pipefail
BUILD=$1
[ "$(id -u)" = 0 ] || { echo "package_test: needs root for dpkg; skipped"; exit 77; }
if dpkg-query -W -f='${Status}' mpim 2>/dev/null | grep -q installed; then
  echo "package_test: an mpim package is installed here already; not touching it"
  exit 77
fi
TMP=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  dpkg --purge mpim >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "package_test: $*" >&2; [ -f "$TMP/run.log" ] && tail -20 "$TMP/run.log" >&2; exit 1; }
# The status of GET $2 on 127.0.0.1:$1 (bash's /dev/tcp; no curl needed).
http_status() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || { echo 0; return; }
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >&3
  local line
  read -r line <&3 || line=""
  exec 3<&-
  echo "$line" | awk '{print $2}'
}

cpack -G DEB -B "$TMP" --config "$BUILD/CPackConfig.cmake" >"$TMP/cpack.log" 2>&1 ||
  { cat "$TMP/cpack.log"; fail "cpack failed"; }
DEB=$(ls "$TMP"/mpim_*_amd64.deb)
[ "$(dpkg-deb -f "$DEB" Package)" = mpim ] || fail "package name"
dpkg-deb -f "$DEB" Depends >"$TMP/depends"
grep -q libsqlite3 "$TMP/depends" || fail "no shared-library dependencies"
dpkg-deb -c "$DEB" >"$TMP/contents"
grep -q ' ./usr/share/mpim/web/index.html$' "$TMP/contents" || fail "no web client"
dpkg-deb -e "$DEB" "$TMP/control"
grep -qx /etc/mpim/mpim.toml "$TMP/control/conffiles" || fail "the config is not a conffile"

dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log"; fail "dpkg -i failed"; }
grep -q Warning "$TMP/dpkg.log" && { cat "$TMP/dpkg.log"; fail "dpkg -i warned"; }
[[ "$(getent passwd mpim)" == *:/var/lib/mpim:/usr/sbin/nologin ]] || fail "no mpim system user"
[ "$(stat -c %U:%G:%a /var/lib/mpim)" = mpim:mpim:750 ] || fail "/var/lib/mpim: $(stat -c %U:%G:%a /var/lib/mpim)"
[ "$(stat -c %U:%G:%a /etc/mpim/mpim.toml)" = root:mpim:640 ] || fail "config owner/mode"
systemd-analyze verify /lib/systemd/system/mpim.service || fail "systemd-analyze verify"
grep -q '^ExecStart=/usr/bin/mpim serve --config /etc/mpim/mpim.toml$' /lib/systemd/system/mpim.service

# What the unit runs, as its user, on a free port.
cd /var/lib/mpim
setpriv --reuid=mpim --regid=mpim --init-groups /usr/bin/mpim serve --config /etc/mpim/mpim.toml \
  --set server.listen=127.0.0.1:0 >"$TMP/run.log" 2>&1 &
SERVER=$!
cd /
PORT=
for _ in $(seq 100); do
  PORT=$(grep -o 'serving on http://[0-9.]*:[0-9]*' "$TMP/run.log" | head -1 | sed 's/.*://') || true
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || fail "mpim serve did not start"
for _ in $(seq 100); do [ "$(http_status "$PORT" /readyz)" = 200 ] && break; sleep 0.1; done
[ "$(http_status "$PORT" /readyz)" = 200 ] || fail "/readyz is not 200"
[ "$(http_status "$PORT" /)" = 200 ] || fail "the web client is not served from /usr/share/mpim/web"
[ "$(stat -c %U /var/lib/mpim/mpim.db)" = mpim ] || fail "the store is not in /var/lib/mpim"
kill -TERM "$SERVER"
wait "$SERVER" || fail "mpim serve exited $? on SIGTERM"
SERVER=

dpkg -r mpim >/dev/null
[ ! -e /usr/bin/mpim ] || fail "/usr/bin/mpim left after remove"
[ -e /etc/mpim/mpim.toml ] || fail "remove took the conffile"
[ -e /var/lib/mpim/mpim.db ] || fail "remove took the state"
dpkg --purge mpim >/dev/null
for f in /etc/mpim /var/lib/mpim /lib/systemd/system/mpim.service /usr/share/mpim; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
echo "package_test: ok ($(basename "$DEB"))"
