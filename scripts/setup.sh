#!/usr/bin/env bash
# Installs everything Flotilla's tests and local cluster need on a fresh Debian machine (as root):
# apt packages, npm dependencies, then the TypeScript build. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in etcd:etcd-server etcdctl:etcd-client dockerd:docker.io busybox:busybox-static ip:iproute2 \
  dig:dnsutils iptables:iptables dnsperf:dnsperf dnsmasq:dnsmasq-base systemd-analyze:systemd ruby:ruby \
  chromium:chromium; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` honours the lock; `npm ci` refuses it because msgpackr's optional darwin/win32
  # native builds are not served by this machine's registry, so the lock cannot list them.
  npm install --no-audit --no-fund --loglevel=error
  touch node_modules/.package-lock.json
fi
npx tsc -p tsconfig.json
